package ingest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

// waitTask polls a task's record until it reaches a final state.
func (e *env) waitTask(t *testing.T, taskID string) *docstore.Task {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		task, _, err := e.docs.GetTask(t.Context(), "acme", taskID)
		if err == nil && task.State.Terminal() && task.Attempts > 0 {
			return task
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: record %+v (err %v), want a final outcome", taskID, task, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// The pages a crawl fans out are recorded and published through the enqueue path (their
// record keeps the job with its parent crawl, and its stream position), and every outcome,
// the crawl's, the pages' and the dead-lettered page's, lands in the task records.
func TestCrawlPagesAndOutcomesAreRecorded(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	var h hits
	srv := site(t, &h)
	crawl := e.submit(t, &job.Job{Kind: job.KindCrawl, Priority: job.PriorityLow, URL: srv.URL + "/", MaxPages: 8, MaxDepth: 2})
	e.wait(t, crawl.TaskID, 30*time.Second, "every page done or failed", func(st *job.Status) bool {
		return st.Crawl != nil && st.Crawl.Done+st.Crawl.Failed == 8
	})
	if task := e.waitTask(t, crawl.TaskID); task.State != job.StateSuccess || task.Attempts != 1 {
		t.Errorf("crawl record = %+v, want SUCCESS after 1 run", task)
	}
	got := pages(t, e, "7")
	if len(got) != 8 {
		t.Fatalf("%d pages, want 8", len(got))
	}
	seqs := map[uint64]bool{}
	for u, d := range got {
		task := e.waitTask(t, d.TaskID)
		j, err := task.Job()
		if err != nil || j.ParentTaskID != crawl.TaskID || j.URL != u || j.DocumentID != d.ID {
			t.Errorf("page %s: recorded job %+v, %v; want the page's job of crawl %s", u, j, err, crawl.TaskID)
		}
		if task.Stream != "JOBS_LOW" || task.StreamSeq < 2 || task.PublishedAt == nil || seqs[task.StreamSeq] {
			t.Errorf("page %s: published at %s %d (%v), want its own sequence of JOBS_LOW", u, task.Stream, task.StreamSeq, task.PublishedAt)
		}
		seqs[task.StreamSeq] = true
		wantState := job.StateSuccess
		if u == srv.URL+"/c" {
			wantState = job.StateFailure
		}
		if task.State != wantState || task.Attempts != 1 || task.FinishedAt == nil {
			t.Errorf("page %s: record %s after %d runs, want %s after 1", u, task.State, task.Attempts, wantState)
		}
		if wantState == job.StateFailure && !strings.Contains(task.Error, "410 Gone") {
			t.Errorf("page %s: recorded error %q, want the 410", u, task.Error)
		}
	}
}
