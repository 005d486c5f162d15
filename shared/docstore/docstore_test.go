package docstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t testing.TB) (*docstore.Store, string) {
	t.Helper()
	url := pgtest.NewDB(t)
	s, err := docstore.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, url
}

func TestConcurrentMigrationsTakeTheLock(t *testing.T) {
	url := pgtest.NewDB(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := docstore.Open(t.Context(), url)
			if err == nil {
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
}

func newDoc(tenant string) *docstore.Document {
	return &docstore.Document{TenantID: tenant, AgentID: "7", Kind: job.KindDocument, Filename: "a.txt", TaskID: tenant + "-task", Priority: "high"}
}

func TestCompleteReplacesChunksInOneTransaction(t *testing.T) {
	s, url := open(t)
	ctx := t.Context()
	d := newDoc("acme")
	if err := s.InsertDocument(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.StartProcessing(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	chunks := func(n int) []docstore.Chunk {
		var out []docstore.Chunk
		for i := range n {
			out = append(out, docstore.Chunk{Ordinal: i, Content: "hello world", TokenCount: 2, Embedding: []float32{0.5, 0.5}})
		}
		return out
	}
	// A redelivered job completes the same document twice: chunks are replaced, not duplicated.
	for range 2 {
		if err := s.Complete(ctx, d.ID, docstore.Completion{EmbeddingModel: "m", Chunks: chunks(3)}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n, dims int
	if err := conn.QueryRow(ctx, `SELECT count(*), max(array_length(embedding,1)) FROM chunks WHERE document_id = $1`, d.ID).Scan(&n, &dims); err != nil {
		t.Fatal(err)
	}
	if n != 3 || dims != 2 {
		t.Fatalf("chunks = %d with %d dims, want 3 with 2", n, dims)
	}
	got, err := s.GetDocument(ctx, "acme", d.ID)
	if err != nil || got.Status != job.DocCompleted || got.ChunkCount != 3 || got.CompletedAt == nil {
		t.Fatalf("document = %+v, %v", got, err)
	}
	// Another tenant sees nothing.
	if _, err := s.GetDocument(ctx, "other", d.ID); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("other tenant's GetDocument error = %v, want ErrNotFound", err)
	}
}

func TestCancelledDocumentIsNeverCompleted(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	d := newDoc("acme")
	if err := s.InsertDocument(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.Cancel(ctx, "acme", d.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.StartProcessing(ctx, d.ID); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("StartProcessing after cancel = %v, want ErrConflict", err)
	}
	err := s.Complete(ctx, d.ID, docstore.Completion{Chunks: []docstore.Chunk{{Content: "x", TokenCount: 1}}})
	if !errors.Is(err, job.ErrConflict) {
		t.Fatalf("Complete after cancel = %v, want ErrConflict", err)
	}
	if err := s.Cancel(ctx, "acme", d.ID); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("second Cancel = %v, want ErrConflict", err)
	}
	if err := s.Cancel(ctx, "other", d.ID); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("other tenant's Cancel = %v, want ErrNotFound", err)
	}
	rows, err := s.Chunks(ctx, "acme", d.ID, -1, 10)
	if err != nil || len(rows) != 0 {
		t.Fatalf("chunks of cancelled document = %v, %v", rows, err)
	}
}

func TestUnpublishedAndListing(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	a, b := newDoc("acme"), newDoc("acme")
	b.TaskID = "acme-task-2"
	for _, d := range []*docstore.Document{a, b} {
		if err := s.InsertDocument(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkPublished(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	un, err := s.Unpublished(ctx, 0, 10)
	if err != nil || len(un) != 1 || un[0].ID != b.ID {
		t.Fatalf("Unpublished = %v, %v; want only document %d", un, err, b.ID)
	}
	list, err := s.ListDocuments(ctx, docstore.ListFilter{TenantID: "acme", AgentID: "7", Limit: 1})
	if err != nil || len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("first page = %v, %v", list, err)
	}
	list, err = s.ListDocuments(ctx, docstore.ListFilter{TenantID: "acme", AgentID: "7", Before: b.ID})
	if err != nil || len(list) != 1 || list[0].ID != a.ID {
		t.Fatalf("second page = %v, %v", list, err)
	}
}

func TestStartProcessingOfACompletedDocumentReportsItsResults(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	d := newDoc("acme")
	if err := s.InsertDocument(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.StartProcessing(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, d.ID, docstore.Completion{Chunks: []docstore.Chunk{{Content: "a", TokenCount: 1}, {Ordinal: 1, Content: "b", TokenCount: 1}}}); err != nil {
		t.Fatal(err)
	}
	// A redelivery of the finished job.
	var done *docstore.CompletedError
	if err := s.StartProcessing(ctx, d.ID); !errors.As(err, &done) || done.ChunkCount != 2 {
		t.Fatalf("StartProcessing of a completed document = %v, want CompletedError with 2 chunks", err)
	}
	if got, _ := s.GetDocument(ctx, "acme", d.ID); got.Status != job.DocCompleted {
		t.Fatalf("status after the redelivery = %s, want completed", got.Status)
	}
	// A new task for the row (re-queued) processes it again.
	if err := s.SetStatus(ctx, d.ID, job.DocQueued, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.StartProcessing(ctx, d.ID); err != nil {
		t.Fatalf("StartProcessing after re-queueing = %v", err)
	}
}

func TestReindexReplacesEmbeddingsOnly(t *testing.T) {
	s, url := open(t)
	ctx := t.Context()
	d := newDoc("acme")
	if err := s.InsertDocument(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.StartProcessing(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, d.ID, docstore.Completion{EmbeddingModel: "old-model", Chunks: []docstore.Chunk{
		{Ordinal: 0, Content: "first", TokenCount: 1, Embedding: []float32{1, 0}},
		{Ordinal: 1, Content: "second", TokenCount: 1, Embedding: []float32{0, 1}},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Requeue(ctx, "other", d.ID, "re-1", "high"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("another tenant's Requeue = %v, want ErrNotFound", err)
	}
	if err := s.Requeue(ctx, "acme", d.ID, "re-1", "high"); err != nil {
		t.Fatal(err)
	}
	if err := s.Requeue(ctx, "acme", d.ID, "re-2", "high"); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("Requeue of a queued document = %v, want ErrConflict", err)
	}
	if err := s.StartProcessing(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	texts, err := s.ChunkTexts(ctx, d.ID)
	if err != nil || len(texts) != 2 || texts[1].Content != "second" {
		t.Fatalf("ChunkTexts = %v, %v", texts, err)
	}
	if err := s.ReplaceEmbeddings(ctx, d.ID, "new-model", []int{0, 1}, [][]float32{{0.5, 0.25, 1}, {0.125, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetDocument(ctx, "acme", d.ID)
	if got.Status != job.DocCompleted || got.EmbeddingModel != "new-model" || got.ChunkCount != 2 || got.TaskID != "re-1" {
		t.Fatalf("document after reindex = %+v", got)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var emb []float32
	if err := conn.QueryRow(ctx, `SELECT embedding FROM chunks WHERE document_id = $1 AND ordinal = 1`, d.ID).Scan(&emb); err != nil {
		t.Fatal(err)
	}
	if len(emb) != 3 || emb[0] != 0.125 || emb[2] != 3 {
		t.Fatalf("embedding of chunk 1 = %v", emb)
	}
	// A stale reindex (chunks changed) is refused.
	if err := s.ReplaceEmbeddings(ctx, d.ID, "m", []int{0}, [][]float32{{1}}); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("ReplaceEmbeddings with too few vectors = %v, want ErrConflict", err)
	}
}
