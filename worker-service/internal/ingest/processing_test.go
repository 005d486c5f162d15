package ingest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/upload"
)

// blockingEmbedder holds every Embed call until release is closed, after announcing it on
// started.
type blockingEmbedder struct {
	embed.Embedder
	started chan<- string
	release <-chan struct{}
}

func (b blockingEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	b.started <- texts[0]
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.Embedder.Embed(ctx, texts)
}

// With batched processing marks, a document on its first run shows processing while it runs
// (its mark written with the next batch) and completed once it is done: a mark written late
// never takes a finished document back to processing.
func TestBatchedProcessingMarksAndUploadDeletes(t *testing.T) {
	e := newEnv(t, envOptions{batchedMarks: true})
	started, release := make(chan string, 8), make(chan struct{})
	e.indexer.Embedder = blockingEmbedder{Embedder: e.indexer.Embedder, started: started, release: release}

	var jobs []*job.Job
	for i, text := range []string{"Quire marks documents it works on.", "Marks are written in batches."} {
		j := &job.Job{Kind: job.KindDocument, Filename: "notes.txt", ContentType: "text/plain", TaskID: "mark-" + string(rune('a'+i))}
		j.Object = j.TaskID
		if _, err := e.documents.Uploads.Objects().PutBytes(t.Context(), j.Object, []byte(text)); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, e.submit(t, j))
	}
	for range jobs {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("the documents were not embedded")
		}
	}
	for _, j := range jobs {
		deadline := time.Now().Add(2 * time.Second)
		for d := e.doc(t, j.DocumentID); d.Status != job.DocProcessing; d = e.doc(t, j.DocumentID) {
			if time.Now().After(deadline) {
				t.Fatalf("document %d is %s while its job runs, want processing", j.DocumentID, d.Status)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	close(release)
	for _, j := range jobs {
		e.waitState(t, j.TaskID, job.StateSuccess)
	}
	// Past a few batch periods: nothing moved them back.
	time.Sleep(100 * time.Millisecond)
	for _, j := range jobs {
		if d := e.doc(t, j.DocumentID); d.Status != job.DocCompleted || d.ChunkCount < 1 {
			t.Errorf("document %d after its job = %s with %d chunks, want completed", j.DocumentID, d.Status, d.ChunkCount)
		}
	}
	// Their uploads were deleted in a batch, as ObjectStore.Delete does: only the delete
	// markers are left in the uploads stream.
	for _, j := range jobs {
		deadline := time.Now().Add(2 * time.Second)
		for {
			_, err := e.documents.Uploads.Objects().GetInfo(t.Context(), j.Object)
			if errors.Is(err, jetstream.ErrObjectNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("upload %s after its job: %v, want it deleted", j.Object, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if si := streamInfo(t, e.js, upload.StreamName(job.UploadsBucket)); si.State.Msgs != uint64(len(jobs)) {
		t.Errorf("%d messages in the uploads stream, want the %d delete markers", si.State.Msgs, len(jobs))
	}
}
