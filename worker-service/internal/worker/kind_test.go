package worker_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/pgtest"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// A job kind that is not a document: a payload type and a handler, nothing else.
const kindTally job.Kind = "tally"

type tallyArgs struct {
	Count int `json:"count"`
}

// tallyHandler fails its first failFirst runs, then adds its args to sum (or, with block,
// waits for its cancellation). It allows one retry (MaxRetries), 10ms apart (RetryDelay),
// whatever the worker's defaults.
type tallyHandler struct {
	failFirst atomic.Int32
	block     atomic.Bool
	runs      atomic.Int32
	sum       atomic.Int64
}

func (h *tallyHandler) Handle(ctx context.Context, j *job.Job) error {
	return worker.ArgsFunc(func(ctx context.Context, j *job.Job, args tallyArgs) error {
		if h.runs.Add(1) <= h.failFirst.Load() {
			return errors.New("tally: not yet")
		}
		if h.block.Load() {
			<-ctx.Done()
			return context.Cause(ctx)
		}
		h.sum.Add(int64(args.Count))
		return nil
	}).Handle(ctx, j)
}

func (*tallyHandler) MaxRetries() int              { return 1 }
func (*tallyHandler) RetryDelay(int) time.Duration { return 10 * time.Millisecond }

// reset prepares h for the next job.
func (h *tallyHandler) reset(failFirst int32, block bool) {
	h.failFirst.Store(failFirst)
	h.block.Store(block)
	h.runs.Store(0)
}

// enqueuer is the one enqueue path, recording tasks in a real PostgreSQL.
func (h *harness) enqueuer(t *testing.T) (*jobqueue.Enqueuer, *docstore.Store) {
	t.Helper()
	docs, err := docstore.Open(t.Context(), pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(docs.Close)
	return jobqueue.NewEnqueuer(jobqueue.EnqueuerDeps{Tasks: docs, Statuses: h.statuses, JetStream: h.js, Announcer: h.nc}), docs
}

func enqueueTally(t *testing.T, e *jobqueue.Enqueuer, id string, args string) {
	t.Helper()
	j := &job.Job{TaskID: id, Kind: kindTally, TenantID: "acme", AgentID: "7", Priority: job.PriorityHigh, Args: []byte(args)}
	if _, err := e.Enqueue(t.Context(), jobqueue.Enqueue{Job: j}); err != nil {
		t.Fatal(err)
	}
}

func TestANewKindIsRetriedDeadLetteredAndCancelledLikeADocument(t *testing.T) {
	h := newHarness(t, 0)
	enq, docs := h.enqueuer(t)
	h.tasks = docs
	tally := &tallyHandler{}
	mux := worker.NewMux()
	if err := mux.Register(kindTally, tally); err != nil {
		t.Fatal(err)
	}
	if err := mux.Register(kindTally, tally); !errors.Is(err, worker.ErrKindRegistered) {
		t.Fatalf("second Register of %s = %v, want ErrKindRegistered", kindTally, err)
	}
	// The worker's own policy would retry 3 times after a minute: the kind's own applies.
	h.start(t, worker.Config{MaxRetries: 3, Retry: func(int) time.Duration { return time.Minute }}, mux)

	t.Run("retried", func(t *testing.T) {
		tally.reset(1, false)
		enqueueTally(t, enq, "tally-retried", `{"count": 5}`)
		st := h.waitState(t, "tally-retried", job.StateSuccess, 5*time.Second)
		if st.Attempts != 2 || tally.sum.Load() != 5 || st.Kind != kindTally {
			t.Fatalf("status %+v, sum %d; want SUCCESS after 2 attempts with the args added", st, tally.sum.Load())
		}
		// Enqueued through the one path (recorded, marked published), its outcome recorded.
		task := waitTask(t, docs, "tally-retried", job.StateSuccess)
		if task.Kind != kindTally || task.PublishedAt == nil || task.Stream != "JOBS_HIGH" || task.Attempts != 2 {
			t.Fatalf("task record %+v; want a published tally task on JOBS_HIGH, 2 attempts", task)
		}
	})

	t.Run("dead-lettered", func(t *testing.T) {
		tally.reset(1000, false)
		enqueueTally(t, enq, "tally-dead", `{"count": 1}`)
		st := h.waitState(t, "tally-dead", job.StateFailure, 5*time.Second)
		if st.Attempts != 2 || !strings.Contains(st.Error, "not yet") {
			t.Fatalf("status %+v; want FAILURE after the kind's 1+1 attempts", st)
		}
		var found bool
		for _, m := range h.deadLetters(t) {
			if m.Header.Get(job.HeaderTaskID) == "tally-dead" {
				found = true
				if m.Subject != "dlq.high.tally" || m.Header.Get(job.HeaderAttempts) != "2" {
					t.Fatalf("dead letter on %s with %s attempts; want dlq.high.tally, 2", m.Subject, m.Header.Get(job.HeaderAttempts))
				}
			}
		}
		if !found {
			t.Fatal("no dead letter for tally-dead")
		}
		if task := waitTask(t, docs, "tally-dead", job.StateFailure); task.Attempts != 2 || !strings.Contains(task.Error, "not yet") {
			t.Fatalf("task record %+v; want FAILURE after 2 attempts with the last error", task)
		}
		// A kind without a FailureRecorder of its own has the worker's told.
		if reason := h.failures.reason("tally-dead"); !strings.Contains(reason, "not yet") {
			t.Fatalf("the worker's FailureRecorder was told %q, want the last error", reason)
		}
	})

	t.Run("args that do not decode fail at once", func(t *testing.T) {
		tally.reset(0, false)
		enqueueTally(t, enq, "tally-bad-args", `{"count": "many"}`)
		st := h.waitState(t, "tally-bad-args", job.StateFailure, 5*time.Second)
		if st.Attempts != 1 || tally.runs.Load() != 0 {
			t.Fatalf("status %+v after %d runs of the handler's body; want FAILURE after 1 attempt, body never run", st, tally.runs.Load())
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		tally.reset(0, true)
		enqueueTally(t, enq, "tally-cancelled", `{"count": 1}`)
		deadline := time.Now().Add(5 * time.Second)
		for tally.runs.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the tally job never started")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := enq.Cancel(t.Context(), "acme", "tally-cancelled", ""); err != nil {
			t.Fatal(err)
		}
		st := h.waitState(t, "tally-cancelled", job.StateRevoked, time.Second)
		if st.Attempts != 1 {
			t.Fatalf("status %+v; want REVOKED during its first attempt", st)
		}
		if task, _, err := docs.GetTask(t.Context(), "acme", "tally-cancelled"); err != nil || task.State != job.StateRevoked {
			t.Fatalf("task record %+v, %v; want REVOKED", task, err)
		}
	})
}

// waitTask waits for the task record of id to reach state.
func waitTask(t *testing.T, docs *docstore.Store, id string, state job.State) *docstore.Task {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		task, _, err := docs.GetTask(t.Context(), "acme", id)
		if err == nil && task.State == state {
			return task
		}
		if time.Now().After(deadline) {
			t.Fatalf("task record of %s: %+v, %v; want %s", id, task, err, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAJobOfAKindNoHandlerRunsIsDeadLettered(t *testing.T) {
	h := newHarness(t, 0)
	enq, _ := h.enqueuer(t)
	h.start(t, worker.Config{MaxRetries: 3}, worker.NewMux())
	enqueueTally(t, enq, "tally-unknown", `{}`)
	st := h.waitState(t, "tally-unknown", job.StateFailure, 5*time.Second)
	if st.Attempts != 1 || !strings.Contains(st.Error, `no handler for job kind "tally"`) {
		t.Fatalf("status %+v; want FAILURE at once, no handler", st)
	}
}
