package docstore_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

func getTask(t *testing.T, s *docstore.Store, taskID string) *docstore.Task {
	t.Helper()
	task, _, err := s.GetTask(t.Context(), "acme", taskID)
	if err != nil {
		t.Fatalf("GetTask(%s): %v", taskID, err)
	}
	return task
}

// A task without a document is recorded, found by the sweeper's scan until it is marked
// published, and keeps the stream position of its job.
func TestTaskWithoutDocumentIsTheOutbox(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	j := &job.Job{TaskID: "free-task", Kind: job.KindWebpage, TenantID: "acme", AgentID: "7", Priority: job.PriorityMedium, URL: "https://example.com/"}
	if err := s.InsertTask(ctx, j); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertTask(ctx, j); err == nil {
		t.Fatal("the same task was recorded twice")
	}
	un, err := s.UnpublishedTasks(ctx, 0, 10)
	if err != nil || len(un) != 1 || un[0].TaskID != "free-task" || un[0].DocumentID != 0 {
		t.Fatalf("UnpublishedTasks = %+v, %v; want the free task", un, err)
	}
	got, err := un[0].Job()
	if err != nil || got.URL != j.URL || got.Kind != job.KindWebpage || got.Priority != job.PriorityMedium {
		t.Fatalf("payload = %+v, %v", got, err)
	}
	if err := s.MarkTaskPublished(ctx, "free-task", "JOBS_MEDIUM", 42); err != nil {
		t.Fatal(err)
	}
	if un, _ := s.UnpublishedTasks(ctx, 0, 10); len(un) != 0 {
		t.Fatalf("a published task is still unpublished: %+v", un)
	}
	task := getTask(t, s, "free-task")
	if task.Stream != "JOBS_MEDIUM" || task.StreamSeq != 42 || task.PublishedAt == nil || task.State != job.StatePending {
		t.Fatalf("published task = %+v", task)
	}
	// Published, it is no longer removed as an undone enqueue.
	if err := s.DeleteTask(ctx, "free-task"); err != nil {
		t.Fatal(err)
	}
	getTask(t, s, "free-task")
}

// Inserting a document records its task in the same statement, its payload the document's
// job with the document's id; deleting the document removes its task while unpublished.
func TestDocumentInsertRecordsItsTask(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	d := newDoc("acme")
	d.Job, _ = json.Marshal(&job.Job{TaskID: d.TaskID, Kind: job.KindDocument, TenantID: "acme", AgentID: "7",
		Priority: job.PriorityHigh, Object: d.TaskID, Filename: "a.txt", Force: true})
	if err := s.InsertDocument(ctx, d); err != nil {
		t.Fatal(err)
	}
	task, doc, err := s.GetTask(ctx, "acme", d.TaskID)
	if err != nil || doc == nil || doc.ID != d.ID || task.DocumentID != d.ID || task.Kind != job.KindDocument {
		t.Fatalf("GetTask = %+v, %+v, %v", task, doc, err)
	}
	j, err := task.Job()
	if err != nil || j.DocumentID != d.ID || !j.Force || j.Object != d.TaskID {
		t.Fatalf("payload = %+v, %v; want the recorded job with document %d", j, err, d.ID)
	}
	// An undone enqueue: the row goes and its task with it.
	if err := s.DeleteDocument(ctx, "acme", d.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetTask(ctx, "acme", d.TaskID); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("task of a deleted unpublished document = %v, want ErrNotFound", err)
	}
	// A published task outlives its document, without it.
	d2 := newDoc("acme")
	d2.TaskID = "published-task"
	if err := s.InsertDocument(ctx, d2); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkTaskPublished(ctx, d2.TaskID, "JOBS_HIGH", 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetDocument(ctx, "acme", d2.ID); got.PublishedAt == nil {
		t.Fatal("MarkTaskPublished left the document unmarked")
	}
	if err := s.DeleteDocument(ctx, "acme", d2.ID); err != nil {
		t.Fatal(err)
	}
	if task := getTask(t, s, d2.TaskID); task.DocumentID != 0 {
		t.Fatalf("task of a deleted document still points at it: %+v", task)
	}
}

// A document's outcome reaches its task in the transaction that writes it; the worker's
// FinishTask adds the runs; a cancellation is never overwritten.
func TestDocumentOutcomesReachTheirTask(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	done, failed, cancelled := newDoc("acme"), newDoc("acme"), newDoc("acme")
	done.TaskID, failed.TaskID, cancelled.TaskID = "done", "failed", "cancelled"
	for _, d := range []*docstore.Document{done, failed, cancelled} {
		if err := s.InsertDocument(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Complete(ctx, done.ID, docstore.Completion{Chunks: []docstore.Chunk{{Content: "x", TokenCount: 1}}}); err != nil {
		t.Fatal(err)
	}
	if task := getTask(t, s, "done"); task.State != job.StateSuccess || task.FinishedAt == nil {
		t.Fatalf("task of a completed document = %+v", task)
	}
	if err := s.FinishTask(ctx, "done", job.StateSuccess, 2, ""); err != nil {
		t.Fatal(err)
	}
	if task := getTask(t, s, "done"); task.Attempts != 2 {
		t.Fatalf("FinishTask did not record the runs: %+v", task)
	}
	if err := s.Fail(ctx, failed.ID, "corrupt"); err != nil {
		t.Fatal(err)
	}
	if task := getTask(t, s, "failed"); task.State != job.StateFailure || task.Error != "corrupt" {
		t.Fatalf("task of a failed document = %+v", task)
	}
	if err := s.CancelTask(ctx, "acme", "cancelled"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishTask(ctx, "cancelled", job.StateSuccess, 1, ""); err != nil {
		t.Fatal(err)
	}
	if task := getTask(t, s, "cancelled"); task.State != job.StateRevoked {
		t.Fatalf("a late success overwrote the cancellation: %+v", task)
	}
	if err := s.FinishTask(ctx, "done", job.StateRetry, 1, ""); err == nil {
		t.Fatal("FinishTask accepted a state that is not final")
	}
}

// CancelTask revokes a task and its document together, once; a finished task or another
// tenant's is left as it is.
func TestCancelTask(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	d := newDoc("acme")
	if err := s.InsertDocument(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelTask(ctx, "other", d.TaskID); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("another tenant's cancel = %v, want ErrNotFound", err)
	}
	if err := s.CancelTask(ctx, "acme", d.TaskID); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetDocument(ctx, "acme", d.ID)
	if task := getTask(t, s, d.TaskID); task.State != job.StateRevoked || got.Status != job.DocCancelled {
		t.Fatalf("after cancel: task %s, document %s", task.State, got.Status)
	}
	if err := s.CancelTask(ctx, "acme", d.TaskID); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("second cancel = %v, want ErrConflict", err)
	}
	// A task whose document completed behind its record's back is not revoked either.
	d2 := newDoc("acme")
	d2.TaskID = "completed-doc"
	if err := s.InsertDocument(ctx, d2); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(ctx, d2.ID, job.DocCompleted, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelTask(ctx, "acme", d2.TaskID); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("cancel of a completed document's task = %v, want ErrConflict", err)
	}
	if task := getTask(t, s, d2.TaskID); task.State != job.StatePending {
		t.Fatalf("a refused cancel wrote the task: %+v", task)
	}
}

// A dead-lettered task re-queued: PENDING and unpublished again, its document queued.
func TestRequeueTask(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	d := newDoc("acme")
	if err := s.InsertDocument(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkTaskPublished(ctx, d.TaskID, "JOBS_HIGH", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Fail(ctx, d.ID, "boom"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishTask(ctx, d.TaskID, job.StateFailure, 4, "boom"); err != nil {
		t.Fatal(err)
	}
	if err := s.RequeueTask(ctx, "other", d.TaskID); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("another tenant's requeue = %v, want ErrNotFound", err)
	}
	if err := s.RequeueTask(ctx, "acme", d.TaskID); err != nil {
		t.Fatal(err)
	}
	task := getTask(t, s, d.TaskID)
	got, _ := s.GetDocument(ctx, "acme", d.ID)
	if task.State != job.StatePending || task.Attempts != 0 || task.Error != "" || task.PublishedAt != nil || task.FinishedAt != nil || got.Status != job.DocQueued {
		t.Fatalf("re-queued task %+v, document %s", task, got.Status)
	}
	// A published task whose document was deleted cannot be re-queued.
	if err := s.MarkTaskPublished(ctx, d.TaskID, "JOBS_HIGH", 4); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDocument(ctx, "acme", d.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RequeueTask(ctx, "acme", d.TaskID); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("requeue of a task whose document was deleted = %v, want ErrConflict", err)
	}
}

// A re-index records its task with the re-embedding job; a re-crawled page its webpage job.
func TestRequeueRecordsTheNewTask(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	d := newDoc("acme")
	if err := s.InsertDocument(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(ctx, d.ID, job.DocCompleted, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Requeue(ctx, "acme", d.ID, "reindex-task", "high"); err != nil {
		t.Fatal(err)
	}
	j, err := getTask(t, s, "reindex-task").Job()
	if err != nil || j.DocumentID != d.ID || j.Kind != job.KindReindex || getTask(t, s, "reindex-task").Kind != job.KindReindex {
		t.Fatalf("re-index payload = %+v, %v", j, err)
	}
	// The document's earlier task stays, answered without the document.
	if task, doc, err := s.GetTask(ctx, "acme", d.TaskID); err != nil || doc != nil || task.DocumentID != d.ID {
		t.Fatalf("earlier task = %+v, %+v, %v", task, doc, err)
	}

	page := &docstore.Document{TenantID: "acme", AgentID: "7", Kind: job.KindWebpage, URL: "https://example.com/a", TaskID: "page-1", Priority: "low"}
	if err := s.InsertDocument(ctx, page); err != nil {
		t.Fatal(err)
	}
	if err := s.KeepPage(ctx, page.ID, "A"); err != nil {
		t.Fatal(err)
	}
	if task := getTask(t, s, "page-1"); task.State != job.StateSuccess {
		t.Fatalf("kept page's task = %+v", task)
	}
	prev, _ := s.GetDocument(ctx, "acme", page.ID)
	child := &job.Job{TaskID: "page-2", Kind: job.KindWebpage, TenantID: "acme", AgentID: "7", Priority: job.PriorityLow,
		URL: page.URL, Depth: 2, ParentTaskID: "crawl-1"}
	if err := s.RequeuePageJob(ctx, prev, child); err != nil {
		t.Fatal(err)
	}
	j, err = getTask(t, s, "page-2").Job()
	if err != nil || j.Depth != 2 || j.ParentTaskID != "crawl-1" || j.DocumentID != page.ID {
		t.Fatalf("re-crawled page payload = %+v, %v", j, err)
	}
	// Given back, the page holds its earlier task again and the new one is gone.
	if err := s.RestorePage(ctx, prev, "page-2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetTask(ctx, "acme", "page-2"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("task of a restored page = %v, want ErrNotFound", err)
	}
}

// A document inserted in a final state (an import, a test) records its task in that state:
// the sweeper never publishes it.
func TestDocumentInsertedFinishedIsNotSwept(t *testing.T) {
	s, _ := open(t)
	d := newDoc("acme")
	d.Status = job.DocCompleted
	if err := s.InsertDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if task := getTask(t, s, d.TaskID); task.State != job.StateSuccess {
		t.Fatalf("task of a completed document = %s, want SUCCESS", task.State)
	}
	if un, err := s.UnpublishedTasks(t.Context(), 0, 10); err != nil || len(un) != 0 {
		t.Fatalf("UnpublishedTasks = %+v, %v; want none", un, err)
	}
}
