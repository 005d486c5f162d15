package docstore

import (
	"errors"
	"testing"

	"github.com/quirehq/quire/shared/job"
)

// A database made by the release before tasks (migration 00006) upgrades in place: every
// documents row gets its tasks row, with the job it recorded (or one rebuilt from its
// columns), its state derived from its status; the sweeper finds the unpublished ones and the
// late-status lookup, cancellation and outcomes work on the moved rows.
func TestTasksMigrationMovesEveryDocument(t *testing.T) {
	ctx := t.Context()
	pool, p := migratedTo(t, 6)
	type row struct {
		task, status, job, errText string
		published                  bool
	}
	rows := []row{
		{task: "t-orphan-crawl", status: "queued", job: `{"v":1,"task_id":"t-orphan-crawl","kind":"crawl","tenant_id":"acme","agent_id":"7","priority":"low","url":"https://example.com/","max_pages":7,"max_depth":3,"enqueued_at":"2026-01-01T00:00:00Z"}`},
		{task: "t-orphan-old", status: "queued"},
		{task: "t-queued", status: "queued", published: true},
		{task: "t-processing", status: "processing", published: true},
		{task: "t-completed", status: "completed", published: true},
		{task: "t-failed", status: "failed", errText: "corrupt pdf", published: true},
		{task: "t-cancelled", status: "cancelled", published: true},
	}
	ids := map[string]int64{}
	for _, r := range rows {
		kind, url, prio := "document", "", "high"
		if r.task == "t-orphan-crawl" {
			kind, url, prio = "crawl", "https://example.com/", "low"
		}
		var jobArg any
		if r.job != "" {
			jobArg = r.job
		}
		var id int64
		err := pool.QueryRow(ctx, `INSERT INTO documents (tenant_id, agent_id, kind, filename, url, status, task_id, priority, error, job,
				published_at, created_at, completed_at)
			VALUES ('acme', '7', $1, 'a.pdf', $2, $3, $4, $5, $6, $7::jsonb,
				CASE WHEN $8 THEN now() - interval '59 minutes' END, now() - interval '1 hour',
				CASE WHEN $3 IN ('completed', 'failed', 'cancelled') THEN now() - interval '58 minutes' END)
			RETURNING id`, kind, url, r.status, r.task, prio, r.errText, jobArg, r.published).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		ids[r.task] = id
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	s := &Store{pool: pool}

	// The sweeper's scan finds exactly the two rows never published, with their jobs.
	un, err := s.UnpublishedTasks(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 2 {
		t.Fatalf("UnpublishedTasks = %d tasks, want 2 (the orphans)", len(un))
	}
	for _, task := range un {
		j, err := task.Job()
		if err != nil {
			t.Fatalf("moved task %s: %v", task.TaskID, err)
		}
		if j.DocumentID != ids[task.TaskID] || j.TenantID != "acme" || j.AgentID != "7" {
			t.Errorf("moved task %s: job %+v, want document %d of acme/7", task.TaskID, j, ids[task.TaskID])
		}
		switch task.TaskID {
		case "t-orphan-crawl":
			if j.Kind != job.KindCrawl || j.MaxPages != 7 || j.MaxDepth != 3 || j.Priority != job.PriorityLow {
				t.Errorf("recorded crawl job moved as %+v", j)
			}
		case "t-orphan-old":
			if j.Kind != job.KindDocument || j.Object != "t-orphan-old" || j.Filename != "a.pdf" || j.Priority != job.PriorityHigh {
				t.Errorf("job rebuilt from the columns as %+v", j)
			}
		default:
			t.Errorf("unexpected unpublished task %s", task.TaskID)
		}
	}

	// The late-status lookup answers every moved task, state from the document's status.
	want := map[string]job.State{
		"t-queued": job.StatePending, "t-processing": job.StateProgress, "t-completed": job.StateSuccess,
		"t-failed": job.StateFailure, "t-cancelled": job.StateRevoked,
	}
	for taskID, state := range want {
		task, doc, err := s.GetTask(ctx, "acme", taskID)
		if err != nil {
			t.Fatalf("GetTask(%s): %v", taskID, err)
		}
		if task.State != state || doc == nil || doc.ID != ids[taskID] || task.PublishedAt == nil || task.Stream != "JOBS_HIGH" {
			t.Errorf("moved task %s = %+v (document %v), want %s, published on JOBS_HIGH, with its document", taskID, task, doc, state)
		}
		if state.Terminal() != (task.FinishedAt != nil) {
			t.Errorf("moved task %s: finished_at %v in state %s", taskID, task.FinishedAt, state)
		}
	}
	if task, _, _ := s.GetTask(ctx, "acme", "t-failed"); task.Error != "corrupt pdf" {
		t.Errorf("failed task's error = %q", task.Error)
	}
	if _, _, err := s.GetTask(ctx, "other", "t-queued"); !errors.Is(err, job.ErrNotFound) {
		t.Errorf("another tenant's GetTask = %v, want ErrNotFound", err)
	}

	// Cancellation and outcomes work on the moved rows.
	if err := s.CancelTask(ctx, "acme", "t-queued"); err != nil {
		t.Fatalf("cancel a moved queued task: %v", err)
	}
	if d, _ := s.GetDocument(ctx, "acme", ids["t-queued"]); d.Status != job.DocCancelled {
		t.Errorf("document of the cancelled task is %s", d.Status)
	}
	if err := s.CancelTask(ctx, "acme", "t-completed"); !errors.Is(err, job.ErrConflict) {
		t.Errorf("cancel a moved completed task = %v, want ErrConflict", err)
	}
	if err := s.Fail(ctx, ids["t-processing"], "worker lost"); err != nil {
		t.Fatal(err)
	}
	if task, _, _ := s.GetTask(ctx, "acme", "t-processing"); task.State != job.StateFailure || task.Error != "worker lost" {
		t.Errorf("moved processing task after Fail = %+v", task)
	}

	// A document cannot point at a task that does not exist.
	if _, err := pool.Exec(ctx, `INSERT INTO documents (tenant_id, agent_id, kind, task_id) VALUES ('acme', '7', 'document', 'no-task')`); err == nil {
		t.Error("a document without its task was inserted")
	}
	// And the migration goes back down.
	if _, err := p.DownTo(ctx, 6); err != nil {
		t.Fatalf("down: %v", err)
	}
}
