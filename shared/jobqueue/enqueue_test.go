package jobqueue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/pgtest"
	"github.com/quirehq/quire/shared/quiretest"
	"github.com/quirehq/quire/shared/taskstatus"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type enqueueEnv struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	docs     *docstore.Store
	statuses *taskstatus.Store
	enq      *jobqueue.Enqueuer
}

func newEnqueueEnv(t *testing.T) *enqueueEnv {
	t.Helper()
	q := quiretest.Queue(t, jobqueue.Config{})
	nc, js, docs, statuses := q.NC, q.JS, quiretest.Store(t), q.Statuses
	enq := jobqueue.NewEnqueuer(jobqueue.EnqueuerDeps{Tasks: docs, Statuses: statuses, JetStream: js, Announcer: nc})
	return &enqueueEnv{nc: nc, js: js, docs: docs, statuses: statuses, enq: enq}
}

func freeJob(taskID string, p job.Priority) *job.Job {
	return &job.Job{TaskID: taskID, Kind: job.KindWebpage, TenantID: "acme", AgentID: "7", Priority: p, URL: "https://example.com/" + taskID}
}

func (e *enqueueEnv) streamMsgs(t *testing.T, p job.Priority) uint64 {
	t.Helper()
	return quiretest.StreamMsgs(t, e.js, p.Stream())
}

// An enqueue records the task, creates its PENDING status, publishes the job with the task id
// as Nats-Msg-Id and marks the task published at the acknowledged stream sequence.
func TestEnqueueRecordsPublishesAndMarks(t *testing.T) {
	e := newEnqueueEnv(t)
	ctx := t.Context()
	res, err := e.enq.Enqueue(ctx, jobqueue.Enqueue{Job: freeJob("free-1", job.PriorityMedium)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stream != "JOBS_MEDIUM" || res.Seq != 1 || res.Duplicate {
		t.Fatalf("Enqueue = %+v, want JOBS_MEDIUM seq 1", res)
	}
	st, err := e.js.Stream(ctx, "JOBS_MEDIUM")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, res.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(job.HeaderMsgID) != "free-1" || m.Subject != "jobs.medium.webpage" {
		t.Fatalf("published %s with Nats-Msg-Id %q", m.Subject, m.Header.Get(job.HeaderMsgID))
	}
	status, _, err := e.statuses.Get(ctx, "free-1")
	if err != nil || status.State != job.StatePending || status.Queue != job.PriorityMedium || status.Kind != job.KindWebpage {
		t.Fatalf("status = %+v, %v", status, err)
	}
	task, _, err := e.docs.GetTask(ctx, "acme", "free-1")
	if err != nil || task.PublishedAt == nil || task.Stream != "JOBS_MEDIUM" || task.StreamSeq != res.Seq {
		t.Fatalf("task = %+v, %v; want published at JOBS_MEDIUM %d", task, err, res.Seq)
	}
}

// A publish that fails leaves nothing behind: no task, no status, the caller's writes undone.
func TestEnqueueUndoesAFailedPublish(t *testing.T) {
	e := newEnqueueEnv(t)
	if err := e.js.DeleteStream(t.Context(), "JOBS_LOW"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	undone := false
	_, err := e.enq.Enqueue(ctx, jobqueue.Enqueue{Job: freeJob("lost-1", job.PriorityLow), Undo: func(context.Context) { undone = true }})
	if err == nil {
		t.Fatal("Enqueue to a missing stream succeeded")
	}
	if !undone {
		t.Error("the caller's writes were not undone")
	}
	if _, _, err := e.docs.GetTask(t.Context(), "acme", "lost-1"); !errors.Is(err, job.ErrNotFound) {
		t.Errorf("task of a failed enqueue = %v, want ErrNotFound", err)
	}
	if _, _, err := e.statuses.Get(t.Context(), "lost-1"); !errors.Is(err, job.ErrNotFound) {
		t.Errorf("status of a failed enqueue = %v, want ErrNotFound", err)
	}

	// A task the caller recorded and keeps (the sweeper's) stays for the next sweep.
	if err := e.docs.InsertTask(t.Context(), freeJob("kept-1", job.PriorityLow)); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(t.Context(), time.Second)
	defer cancel2()
	if _, err := e.enq.Enqueue(ctx2, jobqueue.Enqueue{Job: freeJob("kept-1", job.PriorityLow), Recorded: true}); err == nil {
		t.Fatal("Enqueue to a missing stream succeeded")
	}
	un, err := e.docs.UnpublishedTasks(t.Context(), 0, 10)
	if err != nil || len(un) != 1 || un[0].TaskID != "kept-1" {
		t.Fatalf("UnpublishedTasks = %+v, %v; want the kept task", un, err)
	}
}

// With DropDuplicate, a job the stream already holds under the same message id is not
// enqueued a second time: the second task is undone and reported a duplicate.
func TestEnqueueDropsADuplicate(t *testing.T) {
	e := newEnqueueEnv(t)
	ctx := t.Context()
	if _, err := e.enq.Enqueue(ctx, jobqueue.Enqueue{Job: freeJob("first", job.PriorityLow), MsgID: "page-x"}); err != nil {
		t.Fatal(err)
	}
	undone := false
	res, err := e.enq.Enqueue(ctx, jobqueue.Enqueue{Job: freeJob("second", job.PriorityLow), MsgID: "page-x", DropDuplicate: true,
		Undo: func(context.Context) { undone = true }})
	if err != nil || !res.Duplicate || res.Seq != 1 {
		t.Fatalf("second Enqueue = %+v, %v; want a duplicate of seq 1", res, err)
	}
	if !undone {
		t.Error("the duplicate's writes were not undone")
	}
	if _, _, err := e.docs.GetTask(ctx, "acme", "second"); !errors.Is(err, job.ErrNotFound) {
		t.Errorf("task of a dropped duplicate = %v, want ErrNotFound", err)
	}
	if _, _, err := e.statuses.Get(ctx, "second"); !errors.Is(err, job.ErrNotFound) {
		t.Errorf("status of a dropped duplicate = %v, want ErrNotFound", err)
	}
	if n := e.streamMsgs(t, job.PriorityLow); n != 1 {
		t.Errorf("JOBS_LOW holds %d jobs, want 1", n)
	}
}

// Cancel revokes a task of any kind: its record and status REVOKED, running workers told at
// once; a finished task or another tenant's is refused.
func TestCancelRevokesAnyTask(t *testing.T) {
	e := newEnqueueEnv(t)
	ctx := t.Context()
	sub, err := e.nc.SubscribeSync(job.CancelSubject("free-c"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.enq.Enqueue(ctx, jobqueue.Enqueue{Job: freeJob("free-c", job.PriorityHigh)}); err != nil {
		t.Fatal(err)
	}
	if err := e.enq.Cancel(ctx, "other", "free-c", ""); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("another tenant's cancel = %v, want ErrNotFound", err)
	}
	if err := e.enq.Cancel(ctx, "acme", "free-c", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("no cancellation announced: %v", err)
	}
	task, _, _ := e.docs.GetTask(ctx, "acme", "free-c")
	status, _, _ := e.statuses.Get(ctx, "free-c")
	if task.State != job.StateRevoked || task.FinishedAt == nil || status.State != job.StateRevoked || status.Status != "cancelled" {
		t.Fatalf("after cancel: task %+v, status %+v", task, status)
	}
	if err := e.enq.Cancel(ctx, "acme", "free-c", ""); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("second cancel = %v, want ErrConflict", err)
	}

	// A task whose live status says it succeeded is not revoked, record included.
	if _, err := e.enq.Enqueue(ctx, jobqueue.Enqueue{Job: freeJob("free-done", job.PriorityHigh)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.statuses.Update(ctx, "free-done", func(st *job.Status) error { st.State = job.StateSuccess; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := e.enq.Cancel(ctx, "acme", "free-done", ""); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("cancel of a succeeded task = %v, want ErrConflict", err)
	}
	if task, _, _ := e.docs.GetTask(ctx, "acme", "free-done"); task.State != job.StatePending {
		t.Fatalf("a refused cancel wrote the record: %+v", task)
	}
}
