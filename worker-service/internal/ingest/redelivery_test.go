package ingest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// A job redelivered after its results were committed (its ack was lost, or its worker died
// between the commit and the ack) ends SUCCESS with those results, not FAILURE on bytes that
// were removed with the commit.
func TestRedeliveryOfACompletedDocumentSucceeds(t *testing.T) {
	for _, attempt := range []int{2, 1} {
		// A delivery that counts as a first run (attempt 1) has its processing mark batched,
		// and learns that the results are committed when it finds the bytes gone.
		t.Run(fmt.Sprintf("attempt %d", attempt), func(t *testing.T) { testRedeliveryOfACompletedDocument(t, attempt) })
	}
}

func testRedeliveryOfACompletedDocument(t *testing.T, attempt int) {
	e := newEnv(t, envOptions{batchedMarks: attempt == 1})
	obs := e.documents.Uploads.Objects()
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
	ctx := worker.WithReporter(t.Context(), resultReporter{attempt: attempt, fn: func(fn func(*job.Status)) {
		var st job.Status
		fn(&st)
		chunks = st.ChunkCount
	}})
	if err := e.documents.Handle(ctx, j); err != nil {
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
	attempt int
	fn      func(func(*job.Status))
}

func (r resultReporter) Progress(ctx context.Context, current int, message string) error { return nil }
func (r resultReporter) Result(fn func(*job.Status))                                     { r.fn(fn) }
func (r resultReporter) Attempt() int                                                    { return r.attempt }

// A reindex job re-embeds a completed document's chunks with the current model without its
// upload (which is gone) and without changing the chunks.
func TestReindexReEmbedsStoredChunks(t *testing.T) {
	e := newEnv(t, envOptions{})
	j := &job.Job{Kind: job.KindDocument, Filename: "notes.txt", ContentType: "text/plain", TaskID: "first-run"}
	j.Object = j.TaskID
	if _, err := e.documents.Uploads.Objects().PutBytes(t.Context(), j.Object, []byte("Chunks stay. Embeddings change with the model.")); err != nil {
		t.Fatal(err)
	}
	e.submit(t, j)
	first := e.waitState(t, j.TaskID, job.StateSuccess)
	before := e.chunks(t, j.DocumentID)
	// What POST /api/v1/documents/{id}/reindex does.
	if err := e.docs.Requeue(t.Context(), "acme", j.DocumentID, "reindex-1", "high"); err != nil {
		t.Fatal(err)
	}
	re := &job.Job{Kind: job.KindDocument, TaskID: "reindex-1", TenantID: "acme", AgentID: j.AgentID, DocumentID: j.DocumentID,
		Priority: job.PriorityHigh, Reindex: true, EnqueuedAt: j.EnqueuedAt}
	e.queue(t, re)
	st := e.waitState(t, re.TaskID, job.StateSuccess)
	if st.ChunkCount != first.ChunkCount {
		t.Fatalf("reindex reported %d chunks, want %d", st.ChunkCount, first.ChunkCount)
	}
	after := e.chunks(t, j.DocumentID)
	if chunkText(after) != chunkText(before) {
		t.Fatalf("reindex changed the chunks:\n%q\n%q", chunkText(before), chunkText(after))
	}
	if d := e.doc(t, j.DocumentID); d.Status != "completed" || d.TaskID != "reindex-1" || d.EmbeddingModel != e.indexer.Embedder.Model() {
		t.Fatalf("document after reindex = %+v", d)
	}
}
