package docstore_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

func TestFindCompletedBySHA(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	insert := func(tenant, agent, sha string, kind job.Kind) *docstore.Document {
		t.Helper()
		d := &docstore.Document{TenantID: tenant, AgentID: agent, Kind: kind, Filename: "a.pdf", SHA256: sha,
			TaskID: fmt.Sprintf("sha-task-%d", taskSeq.Add(1)), Priority: "high"}
		if err := s.InsertDocument(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	complete := func(d *docstore.Document) {
		t.Helper()
		if err := s.Complete(ctx, d.ID, docstore.Completion{EmbeddingModel: "m", Chunks: []docstore.Chunk{{Content: "x", TokenCount: 1}}}); err != nil {
			t.Fatal(err)
		}
	}

	queued := insert("acme", "7", sha, job.KindDocument)
	if _, err := s.FindCompletedBySHA(ctx, "acme", "7", sha); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("queued document matched: %v", err)
	}
	failed := insert("acme", "7", sha, job.KindDocument)
	if err := s.Fail(ctx, failed.ID, "corrupt"); err != nil {
		t.Fatal(err)
	}
	page := insert("acme", "7", sha, job.KindWebpage)
	complete(page)
	other := insert("other", "7", sha, job.KindDocument)
	complete(other)
	otherAgent := insert("acme", "8", sha, job.KindDocument)
	complete(otherAgent)
	if _, err := s.FindCompletedBySHA(ctx, "acme", "7", sha); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("a failed document, a web page, another tenant's or agent's matched: %v", err)
	}

	complete(queued)
	newer := insert("acme", "7", sha, job.KindDocument)
	complete(newer)
	got, err := s.FindCompletedBySHA(ctx, "acme", "7", sha)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != newer.ID || got.Status != job.DocCompleted || got.ChunkCount != 1 || got.SHA256 != sha {
		t.Fatalf("found %+v, want the newest completed document %d", got, newer.ID)
	}
	if _, err := s.FindCompletedBySHA(ctx, "acme", "7", ""); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("empty sha256 matched: %v", err)
	}
	if _, err := s.FindCompletedBySHA(ctx, "other", "7", sha); err != nil {
		t.Fatalf("other tenant's own document: %v", err)
	}
}

func TestInsertUnlessDuplicate(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	const sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	upload := func(agent, model string) (*docstore.Document, int64) {
		t.Helper()
		d := &docstore.Document{TenantID: "acme", AgentID: agent, Kind: job.KindDocument, Filename: "a.txt", SHA256: sha,
			TaskID: fmt.Sprintf("dup-task-%d", taskSeq.Add(1)), Priority: "high", Job: []byte(`{"task_id":"x"}`)}
		dup, err := s.InsertUnlessDuplicate(ctx, d, model)
		if err != nil {
			t.Fatal(err)
		}
		return d, dup
	}
	first, dup := upload("7", "m1")
	if dup != 0 || first.ID == 0 || first.CreatedAt.IsZero() {
		t.Fatalf("first upload: duplicate of %d, row %+v; want inserted", dup, first)
	}
	stored, err := s.GetDocument(ctx, "acme", first.ID)
	if err != nil || stored.SHA256 != sha || stored.Status != job.DocQueued || stored.TaskID != first.TaskID || string(stored.Job) != `{"task_id": "x"}` {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	// A queued document with the same bytes is no duplicate.
	if second, dup := upload("7", "m1"); dup != 0 || second.ID == 0 {
		t.Fatalf("second upload while the first is queued: duplicate of %d", dup)
	}
	if err := s.Complete(ctx, first.ID, docstore.Completion{EmbeddingModel: "m1", Chunks: []docstore.Chunk{{Content: "x", TokenCount: 1}}}); err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{"m1", ""} {
		d, dup := upload("7", model)
		if dup != first.ID || d.ID != 0 {
			t.Fatalf("model %q: duplicate of %d, inserted %d; want the completed document %d and no row", model, dup, d.ID, first.ID)
		}
	}
	if d, dup := upload("7", "m2"); dup != 0 || d.ID == 0 {
		t.Fatalf("another model: duplicate of %d; want inserted", dup)
	}
	if d, dup := upload("8", "m1"); dup != 0 || d.ID == 0 {
		t.Fatalf("another agent: duplicate of %d; want inserted", dup)
	}
}
