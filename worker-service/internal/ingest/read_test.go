package ingest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// Uploads are read by direct get when they are one chunk and through the object store
// otherwise, with the same results: the bytes, a permanent error for missing or oversized
// uploads, and a retried one for bytes that do not match their digest.
func TestReadObject(t *testing.T) {
	ns := natstest.Run(t)
	_, js := natstest.Connect(t, ns)
	top, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	small := bytes.Repeat([]byte("Quire reads uploads. "), 500) // 10 KB: one chunk
	large := bytes.Repeat([]byte("0123456789abcdef"), 20_000)   // 320 KB: three chunks
	for name, data := range map[string][]byte{"small": small, "large": large, "empty": {}} {
		if _, err := top.Uploads.PutBytes(ctx, name, data); err != nil {
			t.Fatal(err)
		}
	}
	for _, direct := range []bool{true, false} {
		p := &Pipeline{Uploads: top.Uploads, Logger: slog.New(slog.DiscardHandler), MaxObjectBytes: 100_000}
		lookups := &countingStreams{StreamManager: js}
		if direct {
			p.Streams = lookups
		}
		for name, want := range map[string][]byte{"small": small, "empty": {}} {
			got, info, err := p.readObject(ctx, name)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("direct %v: %s: %d bytes, %v; want %d bytes", direct, name, len(got), err, len(want))
			}
			if info == nil || info.Name != name || info.NUID == "" || info.Size != uint64(len(want)) {
				t.Fatalf("direct %v: %s: description %+v", direct, name, info)
			}
		}
		if _, _, err := p.readObject(ctx, "large"); !worker.IsPermanent(err) {
			t.Fatalf("direct %v: upload over MaxObjectBytes: %v, want a permanent error", direct, err)
		}
		if _, _, err := p.readObject(ctx, "missing"); !worker.IsPermanent(err) || !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Fatalf("direct %v: missing upload: %v, want a permanent ErrObjectNotFound", direct, err)
		}
		p.MaxObjectBytes = 0
		if got, _, err := p.readObject(ctx, "large"); err != nil || !bytes.Equal(got, large) {
			t.Fatalf("direct %v: large: %d bytes, %v", direct, len(got), err)
		}
		if want := map[bool]int{true: 1, false: 0}[direct]; lookups.n != want {
			t.Fatalf("direct %v: %d look-ups of the uploads stream, want %d", direct, lookups.n, want)
		}
	}

	// A chunk that does not match the description's digest is refused (and retried).
	info, err := top.Uploads.GetInfo(ctx, "small")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "$O."+info.Bucket+".C."+info.NUID, bytes.ToUpper(small)); err != nil {
		t.Fatal(err)
	}
	p := &Pipeline{Uploads: top.Uploads, Logger: slog.New(slog.DiscardHandler), Streams: js}
	if _, _, err := p.readObject(ctx, "small"); err == nil || worker.IsPermanent(err) || !errors.Is(err, jetstream.ErrDigestMismatch) {
		t.Fatalf("tampered upload: %v, want a retried digest mismatch", err)
	}
}

// An upload read by direct get is deleted with the description the read returned, one read
// through the object store by its own: either way nothing of it is left, and other uploads stay.
func TestDeleteUploadAfterRead(t *testing.T) {
	ns := natstest.Run(t)
	_, js := natstest.Connect(t, ns)
	top, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	data := bytes.Repeat([]byte("Quire deletes uploads. "), 400)
	for _, name := range []string{"direct", "through-get", "kept"} {
		if _, err := top.Uploads.PutBytes(ctx, name, data); err != nil {
			t.Fatal(err)
		}
	}
	for name, streams := range map[string]jetstream.StreamManager{"direct": js, "through-get": nil} {
		p := &Pipeline{Uploads: top.Uploads, Logger: slog.New(slog.DiscardHandler), Streams: streams, Jobs: js}
		_, info, err := p.readObject(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.deleteUpload(ctx, name, info); err != nil {
			t.Fatalf("%s: delete: %v", name, err)
		}
		if _, err := top.Uploads.GetInfo(ctx, name); !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Errorf("%s: after delete: %v, want ErrObjectNotFound", name, err)
		}
		// As ObjectStore.Delete, deleting again (a redelivered job) is not an error.
		if err := p.deleteUpload(ctx, name, nil); err != nil {
			t.Errorf("%s: second delete: %v", name, err)
		}
	}
	si, err := js.Stream(ctx, "OBJ_"+job.UploadsBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := si.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Left: the kept upload (chunk and description) and the two delete markers.
	if info.State.Msgs != 4 {
		t.Errorf("%d messages left in the uploads stream, want 4", info.State.Msgs)
	}
	if got, err := top.Uploads.GetBytes(ctx, "kept"); err != nil || !bytes.Equal(got, data) {
		t.Errorf("kept upload: %d bytes, %v", len(got), err)
	}
}

// countingStreams counts the look-ups of streams.
type countingStreams struct {
	jetstream.StreamManager
	n int
}

func (c *countingStreams) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	c.n++
	return c.StreamManager.Stream(ctx, name)
}
