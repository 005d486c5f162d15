package ingest_test

import (
	"context"
	"testing"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// A job redelivered after its results were committed (its ack was lost, or its worker died
// between the commit and the ack) ends SUCCESS with those results, not FAILURE on bytes that
// were removed with the commit.
func TestRedeliveryOfACompletedDocumentSucceeds(t *testing.T) {
	e := newEnv(t, envOptions{})
	obs := e.pipeline.Uploads
	j := &job.Job{Kind: job.KindDocument, Filename: "notes.txt", ContentType: "text/plain"}
	j.TaskID = "redelivered-1"
	j.Object = j.TaskID
	if _, err := obs.PutBytes(t.Context(), j.Object, []byte("Quire keeps results once. A redelivery changes nothing.")); err != nil {
		t.Fatal(err)
	}
	e.submit(t, j)
	first := e.waitState(t, j.TaskID, job.StateSuccess)
	if first.ChunkCount < 1 {
		t.Fatalf("first run = %+v", first)
	}
	// Run the same job again, as a redelivery would: the upload is gone by now.
	var chunks int
	ctx := worker.WithReporter(t.Context(), resultReporter{fn: func(fn func(*job.Status)) {
		var st job.Status
		fn(&st)
		chunks = st.ChunkCount
	}})
	if err := e.pipeline.Document(ctx, j); err != nil {
		t.Fatalf("redelivered job = %v, want nil", err)
	}
	if chunks != first.ChunkCount {
		t.Fatalf("redelivered job reported %d chunks, want %d", chunks, first.ChunkCount)
	}
	if d := e.doc(t, j.DocumentID); d.Status != job.DocCompleted || d.ChunkCount != first.ChunkCount {
		t.Fatalf("document after the redelivery = %s with %d chunks", d.Status, d.ChunkCount)
	}
}

// resultReporter records the results a handler reports.
type resultReporter struct {
	fn func(func(*job.Status))
}

func (r resultReporter) Progress(ctx context.Context, current int, message string) error { return nil }
func (r resultReporter) Result(fn func(*job.Status))                                     { r.fn(fn) }
func (r resultReporter) Attempt() int                                                    { return 2 }
