package docstore_test

import (
	"errors"
	"testing"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

func TestPagesAreFoundRequeuedAndRestored(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	const u = "https://example.com/tides"
	if _, err := s.LatestPage(ctx, "acme", "7", u); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("LatestPage with no page: %v, want ErrNotFound", err)
	}
	insert := func(tenant, agent string, kind job.Kind, taskID string) *docstore.Document {
		d := &docstore.Document{TenantID: tenant, AgentID: agent, Kind: kind, URL: u, TaskID: taskID, Priority: "low"}
		if err := s.InsertDocument(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	insert("acme", "7", job.KindWebpage, "old-task")
	page := insert("acme", "7", job.KindWebpage, "page-task")
	insert("acme", "8", job.KindWebpage, "other-agent")
	insert("other", "7", job.KindWebpage, "other-tenant")
	insert("acme", "7", job.KindCrawl, "a-crawl")
	got, err := s.LatestPage(ctx, "acme", "7", u)
	if err != nil || got.ID != page.ID {
		t.Fatalf("LatestPage = %+v, %v; want the newest webpage row %d", got, err, page.ID)
	}

	// Queued (or processing): a job is on it.
	if err := s.RequeuePage(ctx, got, "new-task", "low"); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("RequeuePage of a queued page: %v, want ErrConflict", err)
	}
	if err := s.MarkPublished(ctx, page.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, page.ID, docstore.Completion{Title: "Tides", Chunks: []docstore.Chunk{{Ordinal: 0, Content: "tides", TokenCount: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordPageContent(ctx, page.ID, "abc123", "text/html", 42); err != nil {
		t.Fatal(err)
	}
	done, err := s.LatestPage(ctx, "acme", "7", u)
	if err != nil {
		t.Fatal(err)
	}
	if done.SHA256 != "abc123" || done.ContentType != "text/html" || done.SizeBytes != 42 || done.PublishedAt == nil {
		t.Fatalf("completed page = %+v", done)
	}
	if err := s.RequeuePage(ctx, done, "new-task", "medium"); err != nil {
		t.Fatalf("RequeuePage of a completed page: %v", err)
	}
	requeued, _ := s.GetDocument(ctx, "acme", page.ID)
	if requeued.TaskID != "new-task" || requeued.Status != job.DocQueued || requeued.Priority != "medium" ||
		requeued.PublishedAt != nil || requeued.ChunkCount != 1 || requeued.SHA256 != "abc123" {
		t.Fatalf("requeued page = %+v", requeued)
	}
	// A stale read cannot requeue it again.
	if err := s.RequeuePage(ctx, done, "third-task", "low"); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("RequeuePage with a stale row: %v, want ErrConflict", err)
	}
	if err := s.RestorePage(ctx, done, "new-task"); err != nil {
		t.Fatal(err)
	}
	restored, _ := s.GetDocument(ctx, "acme", page.ID)
	if restored.TaskID != "page-task" || restored.Status != job.DocCompleted || restored.Priority != "low" || restored.PublishedAt == nil {
		t.Fatalf("restored page = %+v", restored)
	}
}

func TestKeepPage(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	d := &docstore.Document{TenantID: "acme", AgentID: "7", Kind: job.KindWebpage, URL: "https://example.com/", TaskID: "keep", Priority: "high"}
	if err := s.InsertDocument(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.KeepPage(ctx, d.ID, "Kept"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetDocument(ctx, "acme", d.ID); got.Status != job.DocCompleted || got.Title != "Kept" || got.CompletedAt == nil {
		t.Fatalf("kept page = %+v", got)
	}
	if err := s.SetStatus(ctx, d.ID, job.DocCancelled, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.KeepPage(ctx, d.ID, "Kept"); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("KeepPage of a cancelled page: %v, want ErrConflict", err)
	}
	if err := s.KeepPage(ctx, d.ID+1000, "Kept"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("KeepPage of a missing page: %v, want ErrNotFound", err)
	}
}
