package ingest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/quiretest"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// A document job is metered in the transaction that commits it: its pages, the bytes
// uploaded, its chunks and their tokens, once. Running the handler again for the same task, as
// a redelivery does, counts nothing more.
func TestDocumentUsageCountsOnceAcrossARedelivery(t *testing.T) {
	e := newEnv(t, envOptions{})
	var pages []string
	for i := range 3 {
		pages = append(pages, fmt.Sprintf("Page %d of the pump manual explains how the cooling pump is inspected, cleaned and restarted after maintenance.", i+1))
	}
	pdf := quiretest.PDF(onePerPage(pages)...)
	j := &job.Job{Kind: job.KindDocument, Filename: "manual.pdf", ContentType: "application/pdf", TaskID: "metered-1"}
	j.Object = j.TaskID
	if _, err := e.documents.Uploads.Objects().PutBytes(t.Context(), j.Object, pdf); err != nil {
		t.Fatal(err)
	}
	e.submit(t, j)
	st := e.waitState(t, j.TaskID, job.StateSuccess)
	chunks := e.chunks(t, j.DocumentID)
	tokens := 0
	for _, c := range chunks {
		tokens += c.TokenCount
	}
	if len(chunks) == 0 || st.ChunkCount != len(chunks) || tokens == 0 {
		t.Fatalf("stored %d chunks (%d tokens), status %+v", len(chunks), tokens, st)
	}
	want := map[string]int64{"documents": 1, "pages": 3, "bytes_ingested": int64(len(pdf)), "chunks": int64(len(chunks)), "embedding_tokens": int64(tokens)}
	usage := func() map[string]int64 {
		rows, err := e.docs.Usage(t.Context(), docstore.UsageQuery{TenantID: "acme", From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour), Granularity: docstore.GranularityMonth})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, r := range rows {
			if r.Metric != docstore.MetricStorageBytes {
				out[r.Metric] += r.Quantity
			}
		}
		return out
	}
	if got := usage(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("usage after the job = %v, want %v", got, want)
	}
	// The same task again, as a redelivery: its results are committed, it counts nothing more.
	ctx := worker.WithReporter(t.Context(), resultReporter{attempt: 2, fn: func(func(*job.Status)) {}})
	if err := e.documents.Handle(ctx, j); err != nil {
		t.Fatalf("redelivered job = %v", err)
	}
	if got := usage(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("usage after a redelivery = %v, want %v", got, want)
	}
}

// onePerPage makes each text a page of its own.
func onePerPage(texts []string) [][]string {
	pages := make([][]string, len(texts))
	for i, t := range texts {
		pages[i] = []string{t}
	}
	return pages
}
