package ingest

import (
	"bytes"
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/quiretest"
	"github.com/quirehq/quire/shared/upload"
)

// An upload prefetched while the job's status is read is read once: the run takes what the
// prefetch read. A prefetch whose job never runs is dropped by its discard.
func TestPrefetchedUploadIsReadOnce(t *testing.T) {
	js, top := uploadsServer(t)
	ctx := t.Context()
	data := bytes.Repeat([]byte("Quire reads ahead. "), 400)
	for _, name := range []string{"ran", "dropped"} {
		if _, err := top.Uploads.PutBytes(ctx, name, data); err != nil {
			t.Fatal(err)
		}
	}
	objects := &countingObjects{ObjectStore: top.Uploads}
	p := &DocumentHandler{Indexer: &Indexer{Records: &Records{Logger: slog.New(slog.DiscardHandler)}},
		Uploads: upload.New(upload.Config{}, upload.Deps{Objects: objects, JetStream: js})}

	ran := &job.Job{Kind: job.KindDocument, TaskID: "ran", Object: "ran"}
	discard := p.Prefetch(ctx, ran)
	got, info, err := p.upload(ctx, ran)
	discard()
	if err != nil || !bytes.Equal(got, data) || info == nil || info.Name != "ran" {
		t.Fatalf("prefetched upload: %d bytes, %+v, %v", len(got), info, err)
	}
	if objects.n.Load() != 1 {
		t.Fatalf("%d look-ups of the upload's description, want 1 (the prefetch's)", objects.n.Load())
	}

	p.Prefetch(ctx, &job.Job{Kind: job.KindWebpage, TaskID: "page", URL: "https://example.com/"})()
	dropped := p.Prefetch(ctx, &job.Job{Kind: job.KindDocument, TaskID: "dropped", Object: "dropped"})
	dropped()
	p.prefetchMu.Lock()
	left := len(p.prefetches)
	p.prefetchMu.Unlock()
	if left != 0 {
		t.Fatalf("%d prefetches left after their discards, want 0", left)
	}
	// A run without a prefetch reads by itself.
	if got, _, err := p.upload(ctx, &job.Job{Kind: job.KindDocument, TaskID: "dropped", Object: "dropped"}); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("upload without a prefetch: %d bytes, %v", len(got), err)
	}
}

// uploadsServer starts a JetStream server with Quire's streams and buckets.
func uploadsServer(t *testing.T) (jetstream.JetStream, *jobqueue.Topology) {
	t.Helper()
	q := quiretest.Queue(t, jobqueue.Config{})
	return q.JS, q.Top
}

// countingObjects counts the look-ups of object descriptions.
type countingObjects struct {
	jetstream.ObjectStore
	n atomic.Int32
}

func (c *countingObjects) GetInfo(ctx context.Context, name string, opts ...jetstream.GetObjectInfoOpt) (*jetstream.ObjectInfo, error) {
	c.n.Add(1)
	return c.ObjectStore.GetInfo(ctx, name, opts...)
}
