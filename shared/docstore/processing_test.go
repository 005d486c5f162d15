package docstore_test

import (
	"fmt"
	"testing"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

// MarkProcessingMany moves only queued documents: one completed, failed or cancelled before
// its mark was written keeps its state, and ids of other rows or of no row change nothing.
func TestMarkProcessingManyMovesOnlyQueuedDocuments(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	ids := map[string]int64{}
	for _, name := range []string{"queued", "other-queued", "completed", "failed", "cancelled", "untouched"} {
		d := &docstore.Document{TenantID: "acme", AgentID: "7", Kind: job.KindDocument, Filename: name + ".txt",
			TaskID: fmt.Sprintf("task-%s", name), Priority: "high"}
		if err := s.InsertDocument(ctx, d); err != nil {
			t.Fatal(err)
		}
		ids[name] = d.ID
	}
	if err := s.Complete(ctx, ids["completed"], docstore.Completion{Title: "t", EmbeddingModel: "m",
		Chunks: []docstore.Chunk{{Ordinal: 0, Content: "done", TokenCount: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Fail(ctx, ids["failed"], "broken"); err != nil {
		t.Fatal(err)
	}
	if err := s.Cancel(ctx, "acme", ids["cancelled"]); err != nil {
		t.Fatal(err)
	}
	marked := []int64{ids["queued"], ids["other-queued"], ids["completed"], ids["failed"], ids["cancelled"], 1 << 40}
	if err := s.MarkProcessingMany(ctx, marked); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"queued": job.DocProcessing, "other-queued": job.DocProcessing, "completed": job.DocCompleted,
		"failed": job.DocFailed, "cancelled": job.DocCancelled, "untouched": job.DocQueued}
	for name, status := range want {
		d, err := s.GetDocument(ctx, "acme", ids[name])
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != status {
			t.Errorf("%s document after MarkProcessingMany: %s, want %s", name, d.Status, status)
		}
	}
}
