package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/quiretest"
	"github.com/quirehq/quire/shared/taskstatus"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

type harness struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	statuses *taskstatus.Store
	pub      *jobqueue.Publisher
	failures *recorder
	prefetch worker.Prefetcher   // nil: none
	tasks    worker.TaskRecorder // nil: none
	logs     logWatch
}

// logWatch records which messages the worker logged for which task, so that a test can wait
// for a step that has no other outward sign (such as a run starting to wait at the gate).
type logWatch struct {
	mu      sync.Mutex
	seen    map[string]bool
	changed chan struct{}
}

func (w *logWatch) add(msg, taskID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	w.seen[msg+"\x00"+taskID] = true
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
}

// wait blocks until the worker has logged msg for taskID.
func (w *logWatch) wait(t *testing.T, msg, taskID string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		if w.seen[msg+"\x00"+taskID] {
			w.mu.Unlock()
			return
		}
		if w.changed == nil {
			w.changed = make(chan struct{})
		}
		changed := w.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the worker never logged %q for %s", msg, taskID)
		}
	}
}

// watchHandler passes records on to its Handler and tells its logWatch about each.
type watchHandler struct {
	slog.Handler
	watch  *logWatch
	taskID string
}

func (h watchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	next := watchHandler{Handler: h.Handler.WithAttrs(as), watch: h.watch, taskID: h.taskID}
	for _, a := range as {
		if a.Key == "task_id" {
			next.taskID = a.Value.String()
		}
	}
	return next
}

func (h watchHandler) WithGroup(name string) slog.Handler {
	return watchHandler{Handler: h.Handler.WithGroup(name), watch: h.watch, taskID: h.taskID}
}

func (h watchHandler) Handle(ctx context.Context, r slog.Record) error {
	taskID := h.taskID
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "task_id" {
			taskID = a.Value.String()
		}
		return true
	})
	h.watch.add(r.Message, taskID)
	return h.Handler.Handle(ctx, r)
}

type recorder struct {
	mu      sync.Mutex
	reasons map[string]string
}

func (r *recorder) JobFailed(_ context.Context, j *job.Job, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reasons[j.TaskID] = reason
	return nil
}

func (r *recorder) reason(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reasons[id]
}

func newHarness(t *testing.T, ackWait time.Duration) *harness {
	t.Helper()
	q := quiretest.Queue(t, jobqueue.Config{AckWait: ackWait, UpdateConsumers: true})
	return &harness{nc: q.NC, js: q.JS, statuses: q.Statuses, pub: q.Pub,
		failures: &recorder{reasons: map[string]string{}}}
}

// enqueue records a PENDING status and publishes a webpage job, as the API does.
func (h *harness) enqueue(t *testing.T, id string, p job.Priority) {
	t.Helper()
	if err := h.statuses.Create(t.Context(), &job.Status{TaskID: id, State: job.StatePending, Queue: p, TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	j := &job.Job{TaskID: id, Kind: job.KindWebpage, TenantID: "acme", AgentID: "7", Priority: p, URL: "https://example.com/" + id}
	if err := h.pub.Publish(t.Context(), j, id); err != nil {
		t.Fatal(err)
	}
}

// start runs a worker with h until the test ends (or stop is called) and returns stop.
func (h *harness) start(t *testing.T, cfg worker.Config, handler worker.Handler) (stop func()) {
	t.Helper()
	if cfg.Slots == nil {
		cfg.Slots = map[job.Priority]int{job.PriorityHigh: 4, job.PriorityMedium: 2, job.PriorityLow: 2}
	}
	if cfg.Retry == nil {
		cfg.Retry = func(int) time.Duration { return 10 * time.Millisecond }
	}
	cfg.FetchExpiry = 500 * time.Millisecond
	w := worker.New(cfg, worker.Deps{
		JetStream: h.js, Statuses: h.statuses, Handler: handler, Failures: h.failures, Prefetch: h.prefetch, Tasks: h.tasks,
		Logger: slog.New(watchHandler{Handler: slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}), watch: &h.logs}),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitState polls the task status until it reaches state.
func (h *harness) waitState(t *testing.T, id string, state job.State, within time.Duration) *job.Status {
	t.Helper()
	return quiretest.WaitState(t, h.statuses, id, state, within)
}

func (h *harness) pending(t *testing.T, stream string) uint64 {
	t.Helper()
	s, err := h.js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func (h *harness) deadLetters(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := h.js.Stream(t.Context(), job.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err == nil {
			out = append(out, m)
		}
	}
	return out
}

func TestRetryWithBackoffThenSuccess(t *testing.T) {
	h := newHarness(t, 0)
	var (
		mu    sync.Mutex
		times []time.Time
	)
	backoff := worker.ExponentialBackoff(200*time.Millisecond, 2*time.Second, nil)
	h.start(t, worker.Config{MaxRetries: 3, Retry: backoff}, worker.HandlerFunc(func(ctx context.Context, j *job.Job) error {
		mu.Lock()
		times = append(times, time.Now())
		n := len(times)
		mu.Unlock()
		if got := worker.ReporterFrom(ctx).Attempt(); got != n {
			t.Errorf("Attempt() = %d on call %d", got, n)
		}
		if n < 3 {
			return errors.New("flaky dependency")
		}
		worker.ReporterFrom(ctx).Result(func(st *job.Status) { st.ChunkCount = 7 })
		return nil
	}))
	h.enqueue(t, "retry-1", job.PriorityHigh)
	st := h.waitState(t, "retry-1", job.StateSuccess, 10*time.Second)
	if st.Attempts != 3 || st.ChunkCount != 7 || st.Current != 100 {
		t.Fatalf("final status = %+v, want attempts 3, chunk_count 7, current 100", st)
	}
	mu.Lock()
	defer mu.Unlock()
	// Equal jitter: the wait before attempt n+1 is at least half of min(max, base·2^(n-1)).
	for i, minGap := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		if gap := times[i+1].Sub(times[i]); gap < minGap {
			t.Errorf("gap before attempt %d = %v, want >= %v", i+2, gap, minGap)
		}
	}
	if n := h.pending(t, "JOBS_HIGH"); n != 0 {
		t.Fatalf("JOBS_HIGH holds %d messages after success", n)
	}
}

func TestRetryStatusIsVisibleBetweenAttempts(t *testing.T) {
	h := newHarness(t, 0)
	h.start(t, worker.Config{MaxRetries: 3, Retry: func(int) time.Duration { return 5 * time.Second }},
		worker.HandlerFunc(func(context.Context, *job.Job) error { return errors.New("boom") }))
	h.enqueue(t, "retry-2", job.PriorityHigh)
	st := h.waitState(t, "retry-2", job.StateRetry, 5*time.Second)
	if st.Attempts != 1 || st.Error != "boom" {
		t.Fatalf("RETRY status = %+v", st)
	}
}

func TestDeadLetters(t *testing.T) {
	tests := []struct {
		name       string
		handler    worker.HandlerFunc
		maxRetries int
		attempts   string
		errPart    string
	}{
		{"permanent error", func(context.Context, *job.Job) error {
			return worker.Permanent(errors.New("encrypted PDF"))
		}, 3, "1", "encrypted PDF"},
		{"retries exhausted", func(context.Context, *job.Job) error {
			return errors.New("still down")
		}, 2, "3", "still down"},
		{"panic", func(context.Context, *job.Job) error {
			var m map[string]int
			m["x"]++ // nil map write
			return nil
		}, 3, "1", "handler panic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 0)
			h.start(t, worker.Config{MaxRetries: tt.maxRetries}, tt.handler)
			h.enqueue(t, "dl-1", job.PriorityMedium)
			st := h.waitState(t, "dl-1", job.StateFailure, 10*time.Second)
			if st.Error == "" || st.Attempts == 0 {
				t.Fatalf("FAILURE status = %+v", st)
			}
			dls := h.deadLetters(t)
			if len(dls) != 1 {
				t.Fatalf("JOBS_DLQ holds %d messages, want 1", len(dls))
			}
			dl := dls[0]
			if dl.Subject != "dlq.medium.webpage" {
				t.Errorf("dead letter subject = %s", dl.Subject)
			}
			for hdr, want := range map[string]string{
				"Quire-Attempts": tt.attempts, "Quire-Original-Subject": "jobs.medium.webpage", "Quire-Task-Id": "dl-1",
			} {
				if got := dl.Header.Get(hdr); got != want {
					t.Errorf("header %s = %q, want %q", hdr, got, want)
				}
			}
			if got := dl.Header.Get("Quire-Error"); !contains(got, tt.errPart) {
				t.Errorf("Quire-Error = %q, want it to mention %q", got, tt.errPart)
			}
			if j, err := job.Decode(dl.Data); err != nil || j.TaskID != "dl-1" {
				t.Errorf("dead letter body is not the original job: %v", err)
			}
			if !contains(h.failures.reason("dl-1"), tt.errPart) {
				t.Errorf("failure recorder got %q", h.failures.reason("dl-1"))
			}
			deadline := time.Now().Add(2 * time.Second)
			for h.pending(t, "JOBS_MEDIUM") != 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := h.pending(t, "JOBS_MEDIUM"); n != 0 {
				t.Fatalf("JOBS_MEDIUM still holds %d messages", n)
			}
		})
	}
}

func contains(s, part string) bool {
	return len(part) > 0 && len(s) >= len(part) && (stringIndex(s, part) >= 0)
}

func stringIndex(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestCancelRunningJobStopsWithinASecond(t *testing.T) {
	h := newHarness(t, 0)
	started := make(chan struct{})
	stopped := make(chan error, 1)
	h.start(t, worker.Config{}, worker.HandlerFunc(func(ctx context.Context, j *job.Job) error {
		close(started)
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return ctx.Err()
	}))
	h.enqueue(t, "cancel-1", job.PriorityHigh)
	<-started
	// What the API does on DELETE /api/v1/tasks/{id}.
	if _, err := h.statuses.Update(t.Context(), "cancel-1", func(st *job.Status) error { st.State = job.StateRevoked; return nil }); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	if err := h.nc.Publish(job.CancelSubject("cancel-1"), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case cause := <-stopped:
		if !errors.Is(cause, worker.ErrRevoked) {
			t.Fatalf("context cause = %v, want ErrRevoked", cause)
		}
		if d := time.Since(at); d > time.Second {
			t.Fatalf("job stopped %v after cancellation, want < 1s", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("running job not cancelled")
	}
	h.waitState(t, "cancel-1", job.StateRevoked, 2*time.Second)
	deadline := time.Now().Add(2 * time.Second)
	for h.pending(t, "JOBS_HIGH") != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := h.pending(t, "JOBS_HIGH"); n != 0 {
		t.Fatalf("cancelled job still in JOBS_HIGH (%d)", n)
	}
	if n := len(h.deadLetters(t)); n != 0 {
		t.Fatalf("cancelled job dead-lettered (%d)", n)
	}
}

func TestRevokedQueuedJobNeverStarts(t *testing.T) {
	h := newHarness(t, 0)
	h.enqueue(t, "q-1", job.PriorityHigh)
	if _, err := h.statuses.Update(t.Context(), "q-1", func(st *job.Status) error { st.State = job.StateRevoked; return nil }); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	h.start(t, worker.Config{}, worker.HandlerFunc(func(context.Context, *job.Job) error { calls.Add(1); return nil }))
	deadline := time.Now().Add(5 * time.Second)
	for h.pending(t, "JOBS_HIGH") != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := h.pending(t, "JOBS_HIGH"); n != 0 {
		t.Fatalf("revoked job still queued (%d)", n)
	}
	if calls.Load() != 0 {
		t.Fatalf("handler ran %d times for a revoked task", calls.Load())
	}
}

// prefetches records the Prefetch calls of a worker and their discards.
type prefetches struct {
	mu        sync.Mutex
	started   map[string]int
	discarded map[string]int
}

func (p *prefetches) Prefetch(_ context.Context, j *job.Job) func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started[j.TaskID]++
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.discarded[j.TaskID]++
	}
}

func (p *prefetches) counts(id string) (started, discarded int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started[id], p.discarded[id]
}

// Every delivery is prefetched before its run, whether it runs or not, and what was prefetched
// is discarded once, after the delivery is settled.
func TestPrefetchBeforeTheRunDiscardAfterSettling(t *testing.T) {
	h := newHarness(t, 0)
	pf := &prefetches{started: map[string]int{}, discarded: map[string]int{}}
	h.prefetch = pf
	h.enqueue(t, "revoked-1", job.PriorityHigh)
	if _, err := h.statuses.Update(t.Context(), "revoked-1", func(st *job.Status) error { st.State = job.StateRevoked; return nil }); err != nil {
		t.Fatal(err)
	}
	h.enqueue(t, "run-1", job.PriorityHigh)
	var during atomic.Value
	h.start(t, worker.Config{}, worker.HandlerFunc(func(_ context.Context, j *job.Job) error {
		started, discarded := pf.counts(j.TaskID)
		during.Store([2]int{started, discarded})
		return nil
	}))
	h.waitState(t, "run-1", job.StateSuccess, 5*time.Second)
	if got, _ := during.Load().([2]int); got != [2]int{1, 0} {
		t.Errorf("while run-1 ran: prefetched %d times, discarded %d; want 1, 0", got[0], got[1])
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		rs, rd := pf.counts("revoked-1")
		ss, sd := pf.counts("run-1")
		if rs == 1 && rd == 1 && ss == 1 && sd == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prefetched/discarded: revoked-1 %d/%d, run-1 %d/%d; want 1/1 each", rs, rd, ss, sd)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHeartbeatKeepsALongJobOnOneWorker(t *testing.T) {
	h := newHarness(t, time.Second)
	var calls atomic.Int32
	h.start(t, worker.Config{}, worker.HandlerFunc(func(ctx context.Context, j *job.Job) error {
		calls.Add(1)
		select {
		case <-time.After(3500 * time.Millisecond): // 3.5 × AckWait
		case <-ctx.Done():
		}
		return nil
	}))
	h.enqueue(t, "long-1", job.PriorityHigh)
	h.waitState(t, "long-1", job.StateSuccess, 10*time.Second)
	if n := calls.Load(); n != 1 {
		t.Fatalf("long job ran %d times, want once (heartbeats must prevent redelivery)", n)
	}
}

func TestJobTimeoutCountsAsFailedAttempt(t *testing.T) {
	h := newHarness(t, 0)
	h.start(t, worker.Config{MaxRetries: 0, JobTimeout: 200 * time.Millisecond}, worker.HandlerFunc(func(ctx context.Context, j *job.Job) error {
		<-ctx.Done()
		return ctx.Err()
	}))
	h.enqueue(t, "slow-1", job.PriorityHigh)
	st := h.waitState(t, "slow-1", job.StateFailure, 5*time.Second)
	if !contains(st.Error, "timed out") {
		t.Fatalf("error = %q, want a timeout", st.Error)
	}
}

func TestGracefulShutdownHandsBackUnfinishedJobs(t *testing.T) {
	h := newHarness(t, 0)
	started := make(chan struct{})
	finished := make(chan struct{})
	stop := h.start(t, worker.Config{ShutdownTimeout: 300 * time.Millisecond}, worker.HandlerFunc(func(ctx context.Context, j *job.Job) error {
		if j.TaskID == "quick" {
			// Finishes within the shutdown timeout.
			started <- struct{}{}
			time.Sleep(100 * time.Millisecond)
			close(finished)
			return nil
		}
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}))
	h.enqueue(t, "quick", job.PriorityHigh)
	h.enqueue(t, "stuck", job.PriorityHigh)
	<-started
	<-started
	stop()
	<-finished
	if st, _, _ := h.statuses.Get(t.Context(), "quick"); st.State != job.StateSuccess {
		t.Fatalf("in-flight job that finished during shutdown: %s, want SUCCESS", st.State)
	}
	st, _, _ := h.statuses.Get(t.Context(), "stuck")
	if st.State != job.StatePending || st.Attempts != 0 {
		t.Fatalf("unfinished job after shutdown: %s with %d attempts, want PENDING with 0 (handed back, not an attempt)", st.State, st.Attempts)
	}
	// The handed-back job is delivered again to the next worker and completes; with no retries
	// allowed, that works only because the cut-short run was not counted.
	h.start(t, worker.Config{MaxRetries: 0}, worker.HandlerFunc(func(context.Context, *job.Job) error { return nil }))
	if st := h.waitState(t, "stuck", job.StateSuccess, 5*time.Second); st.Attempts != 1 {
		t.Fatalf("attempts = %d, want 1", st.Attempts)
	}
}

func TestHighPriorityIsNotDelayedByALowFlood(t *testing.T) {
	h := newHarness(t, 0)
	release := make(chan struct{})
	highStarted := make(chan time.Time, 1)
	lowStarted := make(chan struct{}, 50)
	h.start(t, worker.Config{Slots: map[job.Priority]int{job.PriorityHigh: 1, job.PriorityLow: 2}},
		worker.HandlerFunc(func(ctx context.Context, j *job.Job) error {
			if j.Priority == job.PriorityHigh {
				highStarted <- time.Now()
				return nil
			}
			lowStarted <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}))
	for i := range 50 {
		h.enqueue(t, "low-"+string(rune('a'+i%26))+string(rune('a'+i/26)), job.PriorityLow)
	}
	// Both low slots are busy before the high job arrives.
	for range 2 {
		select {
		case <-lowStarted:
		case <-time.After(5 * time.Second):
			t.Fatal("the low jobs never took their slots")
		}
	}
	if n := len(lowStarted); n != 0 {
		t.Fatalf("%d low jobs started beyond the 2 low slots", n)
	}
	at := time.Now()
	h.enqueue(t, "high-1", job.PriorityHigh)
	select {
	case started := <-highStarted:
		t.Logf("high-priority job started %v after enqueue with 50 low jobs queued", started.Sub(at))
	case <-time.After(3 * time.Second):
		t.Fatal("high-priority job did not start while low jobs hold their slots")
	}
	close(release)
}

// loseDeliveries takes n deliveries of the next job on JOBS_HIGH and never settles them, as a
// worker process that dies does; each comes back after the consumer's AckWait.
func (h *harness) loseDeliveries(t *testing.T, n int) {
	t.Helper()
	cons, err := h.js.Consumer(t.Context(), "JOBS_HIGH", job.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		msgs, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for range msgs.Messages() {
			got++
		}
		if got != 1 {
			t.Fatalf("fetched %d messages, want 1", got)
		}
	}
}

// loseRuns leaves the status of id as a worker that died during its runs-th run leaves it.
func (h *harness) loseRuns(t *testing.T, id string, runs int) {
	t.Helper()
	tr, err := h.statuses.Track(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Update(t.Context(), func(st *job.Status) error {
		st.State, st.Attempts, st.Status = job.StateProgress, runs, "started"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestJobWhoseWorkersKeepDyingIsDeadLettered(t *testing.T) {
	h := newHarness(t, time.Second)
	h.enqueue(t, "poison-1", job.PriorityHigh)
	// Two runs that died with their worker (MaxRetries 1).
	h.loseDeliveries(t, 2)
	h.loseRuns(t, "poison-1", 2)
	var calls atomic.Int32
	h.start(t, worker.Config{MaxRetries: 1}, worker.HandlerFunc(func(context.Context, *job.Job) error {
		calls.Add(1)
		return nil
	}))
	st := h.waitState(t, "poison-1", job.StateFailure, 10*time.Second)
	if st.Error != "worker lost" || st.Attempts != 2 {
		t.Fatalf("status = %q after %d attempts, want %q after 2", st.Error, st.Attempts, "worker lost")
	}
	if calls.Load() != 0 {
		t.Fatalf("handler ran %d times for a job with no attempts left", calls.Load())
	}
	if dls := h.deadLetters(t); len(dls) != 1 || dls[0].Header.Get("Quire-Attempts") != "2" {
		t.Fatalf("dead letters = %d", len(dls))
	}
	if h.failures.reason("poison-1") != "worker lost" {
		t.Fatalf("failure recorded = %q", h.failures.reason("poison-1"))
	}
}

func TestDeliveriesWithoutARecordedRunCountOnce(t *testing.T) {
	h := newHarness(t, time.Second)
	h.enqueue(t, "bystander", job.PriorityHigh)
	// Two deliveries lost with no run recorded (the status still says PENDING): the first may
	// have run briefly before its worker died (a first run records its start lazily), so they
	// count as one attempt, not two. With one retry allowed the job still gets its run.
	h.loseDeliveries(t, 2)
	h.start(t, worker.Config{MaxRetries: 1}, worker.HandlerFunc(func(context.Context, *job.Job) error { return nil }))
	if st := h.waitState(t, "bystander", job.StateSuccess, 10*time.Second); st.Attempts != 2 {
		t.Fatalf("attempts = %d, want 2", st.Attempts)
	}
}

func TestDeliveriesThatNeverRunAreBounded(t *testing.T) {
	h := newHarness(t, time.Second)
	h.enqueue(t, "never-runs", job.PriorityHigh)
	// MaxRetries 0 allows 4 deliveries without a run; this is the fifth.
	h.loseDeliveries(t, 4)
	var calls atomic.Int32
	h.start(t, worker.Config{MaxRetries: 0}, worker.HandlerFunc(func(context.Context, *job.Job) error {
		calls.Add(1)
		return nil
	}))
	st := h.waitState(t, "never-runs", job.StateFailure, 10*time.Second)
	if st.Error != "worker lost" || calls.Load() != 0 {
		t.Fatalf("status error %q, handler calls %d; want %q and 0", st.Error, calls.Load(), "worker lost")
	}
}

func TestRunAfterALostRunRunsAlone(t *testing.T) {
	h := newHarness(t, time.Second)
	var (
		mu      sync.Mutex
		running = map[string]bool{}
		overlap []string
	)
	enter := func(id string) {
		mu.Lock()
		defer mu.Unlock()
		for other := range running {
			if other == "suspect" || id == "suspect" {
				overlap = append(overlap, id+" with "+other)
			}
		}
		running[id] = true
	}
	leave := func(id string) {
		mu.Lock()
		defer mu.Unlock()
		delete(running, id)
	}
	started := make(chan string, 8)
	release := make(chan struct{})
	h.start(t, worker.Config{MaxRetries: 3}, worker.HandlerFunc(func(ctx context.Context, j *job.Job) error {
		enter(j.TaskID)
		defer leave(j.TaskID)
		started <- j.TaskID
		if j.TaskID == "long" {
			// Longer than AckWait: the waiting suspect must keep its delivery meanwhile.
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		time.Sleep(50 * time.Millisecond)
		return nil
	}))
	h.enqueue(t, "long", job.PriorityLow)
	if id := <-started; id != "long" {
		t.Fatalf("started %s", id)
	}
	// The suspect's previous run died with its worker; it arrives while "long" runs.
	if err := h.statuses.Create(t.Context(), &job.Status{TaskID: "suspect", State: job.StatePending, Queue: job.PriorityHigh, TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	h.loseRuns(t, "suspect", 1)
	if err := h.pub.Publish(t.Context(), &job.Job{TaskID: "suspect", Kind: job.KindWebpage, TenantID: "acme", AgentID: "7",
		Priority: job.PriorityHigh, URL: "https://example.com/suspect"}, "suspect"); err != nil {
		t.Fatal(err)
	}
	// The suspect is delivered and waits for "long". A delivery is pending before the worker
	// has read its status, so wait for the worker to say the suspect waits.
	h.logs.wait(t, "previous run lost its worker; this run waits to run alone", "suspect")
	h.enqueue(t, "after", job.PriorityHigh)
	select {
	case id := <-started:
		t.Fatalf("%s started while the suspect waits to run alone", id)
	case <-time.After(1500 * time.Millisecond):
	}
	close(release)
	var order []string
	for range 2 {
		select {
		case id := <-started:
			order = append(order, id)
		case <-time.After(10 * time.Second):
			t.Fatalf("started so far after release: %v", order)
		}
	}
	if order[0] != "suspect" || order[1] != "after" {
		t.Fatalf("start order after release = %v, want [suspect after]", order)
	}
	for _, id := range []string{"long", "suspect", "after"} {
		h.waitState(t, id, job.StateSuccess, 5*time.Second)
	}
	st, _, err := h.statuses.Get(t.Context(), "suspect")
	if err != nil || st.Attempts != 2 {
		t.Fatalf("suspect status %v, %v; want 2 attempts (one lost, one run)", st, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(overlap) > 0 {
		t.Fatalf("the suspect shared its worker: %v", overlap)
	}
	// Its delivery was kept by heartbeats while it waited: it ran once, not twice.
	if h.pending(t, "JOBS_HIGH") != 0 {
		t.Fatal("JOBS_HIGH not drained")
	}
}

// watchStatuses returns the statuses of id written from now on.
func (h *harness) watchStatuses(t *testing.T, id string) <-chan job.Status {
	t.Helper()
	kv, err := h.js.KeyValue(t.Context(), job.TasksBucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(t.Context(), id, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	out := make(chan job.Status, 64)
	go func() {
		for e := range w.Updates() {
			var st job.Status
			if e != nil && json.Unmarshal(e.Value(), &st) == nil {
				out <- st
			}
		}
	}()
	return out
}

// statusesUntilTerminal collects statuses from ch up to the terminal one.
func statusesUntilTerminal(t *testing.T, ch <-chan job.Status) []job.Status {
	t.Helper()
	var seen []job.Status
	for {
		select {
		case st := <-ch:
			seen = append(seen, st)
			if st.State.Terminal() {
				return seen
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no terminal status; saw %+v", seen)
		}
	}
}

func TestShortJobWritesOnlyItsFinalStatus(t *testing.T) {
	h := newHarness(t, 0)
	h.enqueue(t, "short", job.PriorityHigh)
	updates := h.watchStatuses(t, "short")
	h.start(t, worker.Config{ProgressInterval: 5 * time.Second}, worker.HandlerFunc(func(ctx context.Context, _ *job.Job) error {
		rep := worker.ReporterFrom(ctx)
		for i, msg := range []string{"extracting", "chunking", "embedding"} {
			if err := rep.Progress(ctx, 20*(i+1), msg); err != nil {
				return err
			}
		}
		return nil
	}))
	seen := statusesUntilTerminal(t, updates)
	if len(seen) != 1 || seen[0].State != job.StateSuccess || seen[0].Attempts != 1 || seen[0].Current != 100 {
		t.Fatalf("statuses written = %+v, want one: SUCCESS after 1 attempt", seen)
	}
}

func TestProgressIsCoalescedNotLost(t *testing.T) {
	h := newHarness(t, 0)
	h.enqueue(t, "slow", job.PriorityHigh)
	updates := h.watchStatuses(t, "slow")
	const interval = 200 * time.Millisecond
	h.start(t, worker.Config{ProgressInterval: interval}, worker.HandlerFunc(func(ctx context.Context, _ *job.Job) error {
		rep := worker.ReporterFrom(ctx)
		_ = rep.Progress(ctx, 10, "a")
		_ = rep.Progress(ctx, 20, "b")
		time.Sleep(6 * interval) // "b" is written when the first interval ends
		_ = rep.Progress(ctx, 50, "c")
		_ = rep.Progress(ctx, 60, "d")
		time.Sleep(6 * interval) // "d" is written one interval after "c"
		return nil
	}))
	seen := statusesUntilTerminal(t, updates)
	var got []string
	for _, st := range seen {
		if st.State == job.StateProgress {
			if st.Attempts != 1 || st.Total != 100 {
				t.Errorf("PROGRESS status %+v: want attempts 1 and total 100", st)
			}
			got = append(got, fmt.Sprintf("%d %s", st.Current, st.Status))
		}
	}
	want := []string{"20 b", "50 c", "60 d"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("progress written = %q, want %q (then SUCCESS)", got, want)
	}
	if last := seen[len(seen)-1]; last.State != job.StateSuccess {
		t.Fatalf("final status = %+v", last)
	}
}

func TestLongJobWithoutProgressShowsStarted(t *testing.T) {
	h := newHarness(t, 0)
	h.enqueue(t, "quiet", job.PriorityHigh)
	release := make(chan struct{})
	h.start(t, worker.Config{ProgressInterval: 100 * time.Millisecond}, worker.HandlerFunc(func(ctx context.Context, _ *job.Job) error {
		<-release
		return nil
	}))
	st := h.waitState(t, "quiet", job.StateProgress, 5*time.Second)
	close(release)
	if st.Status != "started" || st.Attempts != 1 {
		t.Fatalf("running job's status = %+v, want started, attempt 1", st)
	}
	h.waitState(t, "quiet", job.StateSuccess, 5*time.Second)
}

func TestFailedRunDoesNotOverwriteAnotherDeliverysSuccess(t *testing.T) {
	h := newHarness(t, 0)
	h.enqueue(t, "twice", job.PriorityHigh)
	h.enqueue(t, "twice-final", job.PriorityHigh)
	var calls atomic.Int32
	h.start(t, worker.Config{MaxRetries: 3}, worker.HandlerFunc(func(ctx context.Context, j *job.Job) error {
		calls.Add(1)
		// Meanwhile another delivery of the job finished it (this run's ack deadline passed).
		if _, err := h.statuses.Update(ctx, j.TaskID, func(st *job.Status) error {
			st.State, st.Status, st.Current, st.ChunkCount = job.StateSuccess, "completed", 100, 7
			return nil
		}); err != nil {
			return err
		}
		if j.TaskID == "twice-final" {
			return worker.Permanent(errors.New("corrupt, says this late run"))
		}
		return errors.New("timed out reading its upload")
	}))
	deadline := time.Now().Add(10 * time.Second)
	for h.pending(t, "JOBS_HIGH") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("jobs not acknowledged")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range []string{"twice", "twice-final"} {
		st, _, err := h.statuses.Get(t.Context(), id)
		if err != nil || st.State != job.StateSuccess || st.ChunkCount != 7 {
			t.Fatalf("%s: status %+v, %v; want the other delivery's SUCCESS", id, st, err)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("handler ran %d times, want 2 (no retry of finished jobs)", n)
	}
	if dls := h.deadLetters(t); len(dls) != 0 {
		t.Fatalf("dead letters = %d, want none", len(dls))
	}
}
