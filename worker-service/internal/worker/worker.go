// Package worker is Quire's job runtime: per-priority pull loops with dedicated slots,
// acknowledgement after completion, heartbeats, retries with backoff through JetStream's
// NakWithDelay, dead letters, cancellation, job timeouts, panic recovery and graceful
// shutdown. Handlers know nothing of NATS.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/semaphore"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/taskstatus"
)

// Config tunes the runtime. Zero fields take the documented defaults.
type Config struct {
	// Slots is the number of jobs run at once per priority; only priorities listed are served.
	Slots map[job.Priority]int
	// MaxRetries is the number of retries after the first attempt (MAX_RETRIES, default 3 when
	// negative). A job is dead-lettered after MaxRetries+1 attempts that failed or lost their
	// worker; a run handed back at shutdown is not an attempt.
	MaxRetries int
	// Retry gives the delay before the next attempt (default ExponentialBackoff(60s, 600s)).
	Retry RetryPolicy
	// AckWait must equal the consumers' AckWait; heartbeats go out every AckWait/3.
	AckWait time.Duration
	// JobTimeout bounds one attempt (default 30 minutes).
	JobTimeout time.Duration
	// ShutdownTimeout is how long in-flight jobs may run on after a stop request before they
	// are cancelled and handed back (default 30s).
	ShutdownTimeout time.Duration
	// FetchExpiry is how long one pull request waits for jobs (default 2s).
	FetchExpiry time.Duration
	// ProgressInterval is the least time between two status writes of a running job
	// (PROGRESS_INTERVAL; worker-service's default is DefaultProgressInterval). Progress
	// reported faster is coalesced, the latest written when the interval ends, and a first
	// delivery records its start with its first write, so a job shorter than the interval
	// goes from PENDING to its final state in one write. Zero writes every progress at once.
	ProgressInterval time.Duration
}

// DefaultProgressInterval is worker-service's ProgressInterval.
const DefaultProgressInterval = 250 * time.Millisecond

// WithDefaults returns c with zero fields set to defaults.
func (c Config) WithDefaults() Config {
	if c.MaxRetries < 0 {
		c.MaxRetries = 3
	}
	if c.Retry == nil {
		c.Retry = ExponentialBackoff(60*time.Second, 600*time.Second, nil)
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = 30 * time.Minute
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.FetchExpiry <= 0 {
		c.FetchExpiry = 2 * time.Second
	}
	return c
}

// FailureRecorder is told when a job is dead-lettered, to record the failure permanently
// (the document row).
type FailureRecorder interface {
	JobFailed(ctx context.Context, j *job.Job, reason string) error
}

// TaskRecorder records the final outcome of a task in its permanent record, the tasks table
// (*docstore.Store's FinishTask, or a batching wrapper of it): state SUCCESS, FAILURE or
// REVOKED, the runs it took, and for a failure why. Its error is logged, never retried.
type TaskRecorder interface {
	FinishTask(ctx context.Context, taskID string, state job.State, attempts int, reason string) error
}

// Observer receives job events, for metrics. Every method must be fast and must not block.
// Each JobStarted is followed by exactly one JobFinished for the same job.
type Observer interface {
	JobStarted(q job.Priority, k job.Kind)
	JobFinished(q job.Priority, k job.Kind, outcome Outcome, d time.Duration)
	// JobSettled reports a job settled without an attempt, with no JobStarted before it:
	// OutcomeCancelled for a task cancelled while queued, OutcomeDeadLettered for a job whose
	// deliveries kept losing their worker.
	JobSettled(q job.Priority, k job.Kind, outcome Outcome)
}

// Outcome is how an attempt ended.
type Outcome string

// Outcomes of an attempt.
const (
	OutcomeSucceeded    Outcome = "succeeded"
	OutcomeRetried      Outcome = "retried"
	OutcomeDeadLettered Outcome = "dead_lettered"
	OutcomeCancelled    Outcome = "cancelled"
	OutcomeHandedBack   Outcome = "handed_back"
)

// statusTimeout bounds one write of a task status.
const statusTimeout = 5 * time.Second

// errSettled stops a status write that would overwrite the final state another delivery of
// the job wrote.
var errSettled = errors.New("worker: task already finished by another delivery")

// statusHandedBack is the status message of a run handed back at shutdown, which is not an
// attempt.
const statusHandedBack = "re-queued: worker shut down"

// runsSpent is the number of attempts a job has used before its delivery-th delivery: the
// runs its status records, plus one when a redelivery finds no run recorded at all (the first
// delivery records its start lazily, so a first run that killed its worker within
// ProgressInterval left no trace). A delivery that never reached its run, or a run handed back
// at shutdown, is not counted beyond that.
func runsSpent(st *job.Status, delivery int) int {
	if delivery > 1 && st.Attempts == 0 && st.State == job.StatePending && st.Status != statusHandedBack {
		return 1
	}
	return st.Attempts
}

// deliveriesPerRun bounds the deliveries of a job that never get to run it (each handed back
// or lost before its run started): a job delivered more than deliveriesPerRun*(MaxRetries+1)
// times is dead-lettered as worker lost, whatever its run count.
const deliveriesPerRun = 4

// successRetryFor is how long the SUCCESS status of a committed job is retried before the job
// is handed back.
const successRetryFor = 30 * time.Second

// Worker runs jobs from the job streams.
type Worker struct {
	cfg      Config
	js       jetstream.JetStream
	statuses *taskstatus.Store
	handler  Handler
	failures FailureRecorder
	tasks    TaskRecorder
	observer Observer
	prefetch Prefetcher
	log      *slog.Logger

	// gate admits runs: an ordinary run takes one unit, a suspect run (its previous run lost
	// its worker) takes all of them, so it runs alone in this process. Its FIFO order keeps a
	// waiting suspect from being overtaken.
	gate     *semaphore.Weighted
	gateSize int64

	mu       sync.Mutex
	running  map[string]context.CancelCauseFunc
	jobs     sync.WaitGroup
	ready    atomic.Bool
	draining atomic.Bool
}

// Prefetcher starts reading what a job's run will need (such as an upload's bytes) as soon
// as its delivery arrives, while the worker reads the job's status, rather than after. It
// returns a function that the worker calls once the delivery is settled, whether the job ran
// or not (a job found cancelled or finished never runs): it drops what was read and not used.
type Prefetcher interface {
	Prefetch(ctx context.Context, j *job.Job) (discard func())
}

// Deps are the collaborators of a Worker. Failures, Tasks, Observer and Prefetch may be nil.
type Deps struct {
	JetStream jetstream.JetStream
	Statuses  *taskstatus.Store
	Handler   Handler
	Failures  FailureRecorder
	Tasks     TaskRecorder
	Observer  Observer
	Prefetch  Prefetcher
	Logger    *slog.Logger
}

// New returns a Worker; Run starts it.
func New(cfg Config, d Deps) *Worker {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	var size int64
	for _, n := range cfg.Slots {
		size += int64(max(n, 1))
	}
	size = max(size, 1)
	return &Worker{
		cfg: cfg.WithDefaults(), js: d.JetStream, statuses: d.Statuses, handler: d.Handler,
		failures: d.Failures, tasks: d.Tasks, observer: d.Observer, prefetch: d.Prefetch, log: d.Logger, running: map[string]context.CancelCauseFunc{},
		gate: semaphore.NewWeighted(size), gateSize: size,
	}
}

// Ready reports whether the worker is pulling jobs (false before start and while draining).
func (w *Worker) Ready() bool { return w.ready.Load() && !w.draining.Load() }

// Run pulls and runs jobs until ctx is done, then shuts down gracefully: it stops pulling,
// lets in-flight jobs finish within ShutdownTimeout, cancels and hands back (Nak without
// delay) those that do not, and returns. It returns an error only if it could not start.
func (w *Worker) Run(ctx context.Context) error {
	if len(w.cfg.Slots) == 0 {
		return errors.New("worker: no queues to serve (WORKER_QUEUES)")
	}
	consumers := map[job.Priority]jetstream.Consumer{}
	for p := range w.cfg.Slots {
		c, err := w.js.Consumer(ctx, p.Stream(), job.ConsumerName)
		if err != nil {
			return fmt.Errorf("worker: consumer %s on %s: %w", job.ConsumerName, p.Stream(), err)
		}
		consumers[p] = c
	}
	sub, err := w.js.Conn().Subscribe(job.CancelSubjectPrefix+"*", func(m *nats.Msg) {
		w.cancelRunning(m.Subject[len(job.CancelSubjectPrefix):], ErrRevoked)
	})
	if err != nil {
		return fmt.Errorf("worker: subscribe to cancellations: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	var loops sync.WaitGroup
	for p, c := range consumers {
		loops.Go(func() { w.pull(ctx, p, c, w.cfg.Slots[p]) })
	}
	w.ready.Store(true)
	w.log.Info("worker started", "queues", fmt.Sprint(w.cfg.Slots))
	<-ctx.Done()
	w.draining.Store(true)
	w.log.Info("worker draining", "shutdown_timeout", w.cfg.ShutdownTimeout)
	loops.Wait()

	done := make(chan struct{})
	go func() { w.jobs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.ShutdownTimeout):
		w.log.Warn("shutdown timeout: handing back unfinished jobs")
		w.cancelAll(ErrShutdown)
		<-done
	}
	w.log.Info("worker stopped")
	return nil
}

// pull keeps one pull request open for as many jobs as the queue has free slots, so no job
// waits in a local buffer while its AckWait clock runs.
func (w *Worker) pull(ctx context.Context, p job.Priority, c jetstream.Consumer, slots int) {
	free := make(chan struct{}, slots)
	for range slots {
		free <- struct{}{}
	}
	log := w.log.With("queue", p)
	errDelay := 100 * time.Millisecond
	for ctx.Err() == nil {
		// Take one slot (waiting for it), then every other free one.
		select {
		case <-ctx.Done():
			return
		case <-free:
		}
		n := 1
	take:
		for n < slots {
			select {
			case <-free:
				n++
			default:
				break take
			}
		}
		batch, err := c.Fetch(n, jetstream.FetchMaxWait(w.cfg.FetchExpiry))
		if err != nil {
			for range n {
				free <- struct{}{}
			}
			log.Warn("pull failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(errDelay):
			}
			errDelay = min(2*errDelay, 5*time.Second)
			continue
		}
		errDelay = 100 * time.Millisecond
		got := 0
		for msg := range batch.Messages() {
			got++
			if ctx.Err() != nil {
				// Arrived after the stop request: hand it straight back.
				_ = msg.Nak()
				free <- struct{}{}
				continue
			}
			w.jobs.Add(1)
			go func() {
				release := sync.OnceFunc(func() { free <- struct{}{} })
				defer release()
				defer w.jobs.Done()
				w.process(ctx, p, msg, release)
			}()
		}
		for range n - got {
			free <- struct{}{}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			log.Warn("pull ended with error", "err", err)
		}
	}
}

func (w *Worker) cancelRunning(taskID string, cause error) {
	w.mu.Lock()
	cancel := w.running[taskID]
	w.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}

func (w *Worker) cancelAll(cause error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, cancel := range w.running {
		cancel(cause)
	}
}

// process runs one delivery of a job and settles its message. It calls freeSlot once the
// job's handler has returned: the queue's slot fetches its next job while this one's status
// is written and its message acknowledged.
func (w *Worker) process(runCtx context.Context, p job.Priority, msg jetstream.Msg, freeSlot func()) {
	// Settling a job must outlive a stop request.
	ctx := context.WithoutCancel(runCtx)
	attempt := 1
	var streamSeq uint64
	if md, err := msg.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
		streamSeq = md.Sequence.Stream
	}
	j, err := job.Decode(msg.Data())
	if err != nil {
		w.log.Error("undecodable job", "queue", p, "task_id", msg.Headers().Get(job.HeaderTaskID), "err", err)
		w.deadLetter(ctx, msg, p, nil, attempt, streamSeq, err)
		return
	}
	log := w.log.With("task_id", j.TaskID, "queue", p, "kind", j.Kind, "delivery", attempt)

	// Registered before the status is read: a cancellation announced from now on reaches the
	// job, and one announced before is in the status.
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w.mu.Lock()
	w.running[j.TaskID] = cancel
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.running, j.TaskID)
		w.mu.Unlock()
	}()
	if w.prefetch != nil {
		defer w.prefetch.Prefetch(jobCtx, j)()
	}

	tr, err := w.statuses.Track(ctx, j.TaskID)
	if errors.Is(err, job.ErrNotFound) {
		// The status is missing (deleted by an operator); recreate it rather than lose the job.
		if err = w.statuses.Create(ctx, job.PendingStatus(j, "")); err == nil || errors.Is(err, job.ErrConflict) {
			tr, err = w.statuses.Track(ctx, j.TaskID)
		}
	}
	if err != nil {
		log.Warn("task status unavailable; job handed back", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	prev := tr.Status()
	switch prev.State {
	case job.StateRevoked:
		log.Info("task was cancelled before it started")
		w.settleUnattempted(msg, p, j, OutcomeCancelled)
		return
	case job.StateSuccess, job.StateFailure:
		log.Info("task already finished; duplicate delivery acknowledged", "state", prev.State)
		_ = msg.Ack()
		return
	}
	// Every run counts toward MaxRetries+1, failed or lost (see runsSpent). A status still in
	// PROGRESS means the previous run never settled: its worker died under it.
	spent := runsSpent(&prev, attempt)
	lost := prev.State == job.StateProgress
	if spent >= w.cfg.MaxRetries+1 || attempt > deliveriesPerRun*(w.cfg.MaxRetries+1) {
		cause := ErrWorkerLost
		if !lost && prev.Attempts >= w.cfg.MaxRetries+1 && prev.Error != "" {
			// Its runs ran out under a higher MAX_RETRIES.
			cause = fmt.Errorf("retries exhausted: %s", prev.Error)
		}
		log.Error("job dead-lettered: no attempts left", "runs", spent, "err", cause)
		w.deadLetterTracked(ctx, msg, p, j, tr, spent, streamSeq, cause)
		w.observeUnattempted(p, j, OutcomeDeadLettered)
		return
	}
	// A run after a lost one runs alone in this process: if it kills its worker again, it takes
	// no other job with it, so a poison job cannot drag its neighbours to the dead-letter queue.
	weight := int64(1)
	if lost {
		weight = w.gateSize
		log.Warn("previous run lost its worker; this run waits to run alone", "runs", spent)
	}
	if err := w.admit(runCtx, msg, weight); err != nil {
		log.Info("stop requested before the run began; job handed back")
		_ = msg.Nak()
		return
	}
	// The gate weight is held until the job is settled: a run that must run alone starts only
	// once every other job's outcome is recorded, so that it cannot take one with it.
	defer w.gate.Release(weight)

	// The first delivery records its start lazily, with its first progress write at most
	// ProgressInterval after the run begins, so a short job costs one status write (SUCCESS).
	// A redelivery records it before the run, so that a run that kills its worker is known.
	run := spent + 1
	if attempt > 1 || w.cfg.ProgressInterval <= 0 {
		err = tr.Update(ctx, func(st *job.Status) error {
			if st.State == job.StateRevoked {
				return ErrRevoked
			}
			run = runsSpent(st, attempt) + 1
			st.State, st.Attempts, st.Current, st.Status, st.Error = job.StateProgress, run, 0, "started", ""
			if st.Total == 0 {
				st.Total = 100
			}
			return nil
		})
		if errors.Is(err, ErrRevoked) {
			w.settleUnattempted(msg, p, j, OutcomeCancelled)
			return
		}
		if err != nil {
			log.Warn("task status unavailable; job handed back", "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
	}

	start := time.Now()
	if w.observer != nil {
		w.observer.JobStarted(p, j.Kind)
	}
	log.Debug("job started", "run", run)
	jobCtx, cancelTimeout := context.WithTimeoutCause(jobCtx, w.cfg.JobTimeout, ErrJobTimeout)
	defer cancelTimeout()
	hbDone := make(chan struct{})
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeat(jobCtx, hbDone, msg, j.TaskID, cancel) })

	rep := newReporter(ctx, tr, cancel, run, w.cfg.ProgressInterval, log)
	if attempt == 1 && w.cfg.ProgressInterval > 0 {
		rep.startLazily()
	}
	err = w.safeHandle(WithReporter(jobCtx, rep), j)
	rep.close()
	close(hbDone)
	hb.Wait()
	freeSlot()
	cause := context.Cause(jobCtx)
	elapsed := time.Since(start)

	switch {
	case err == nil:
		uerr := w.recordSuccess(ctx, msg, tr, rep)
		if uerr != nil {
			// The results are committed; a redelivery re-runs the idempotent job.
			log.Warn("could not record success; job will be redelivered", "err", uerr)
			_ = msg.NakWithDelay(time.Second)
			w.observe(p, j, OutcomeHandedBack, elapsed)
			return
		}
		log.Info("job succeeded", "run", run, "duration", elapsed)
		w.finish(msg, p, j, OutcomeSucceeded, elapsed)
		w.recordTask(ctx, j.TaskID, job.StateSuccess, run, "")
	case errors.Is(err, ErrRevoked) || errors.Is(cause, ErrRevoked):
		_ = tr.Update(ctx, func(st *job.Status) error {
			st.State, st.Status, st.Attempts = job.StateRevoked, "cancelled", run
			return nil
		})
		log.Info("job cancelled while running", "run", run, "duration", elapsed)
		w.finish(msg, p, j, OutcomeCancelled, elapsed)
		w.recordTask(ctx, j.TaskID, job.StateRevoked, run, "")
	case errors.Is(cause, ErrShutdown):
		// A run cut short by a shutdown is handed back and does not count as an attempt.
		_ = tr.Update(ctx, func(st *job.Status) error {
			if st.State.Terminal() {
				return errSettled
			}
			st.State, st.Status, st.Attempts = job.StatePending, statusHandedBack, run-1
			return nil
		})
		log.Info("job handed back at shutdown", "run", run)
		_ = msg.Nak()
		w.observe(p, j, OutcomeHandedBack, elapsed)
	default:
		if errors.Is(cause, ErrJobTimeout) {
			err = fmt.Errorf("%w after %v: %w", ErrJobTimeout, w.cfg.JobTimeout, err)
		}
		// Another delivery of the job may have finished it meanwhile (this run's heartbeats
		// did not reach the broker, as while a cluster elects a leader, and its ack deadline
		// passed): its result stands, and this run's failure is dropped.
		if st, _, gerr := w.statuses.Get(ctx, j.TaskID); gerr == nil && (st.State == job.StateSuccess || st.State == job.StateFailure) {
			log.Warn("job failed but another delivery already finished it; acknowledged", "run", run, "err", err, "state", st.State)
			w.finish(msg, p, j, OutcomeSucceeded, elapsed)
			return
		}
		if IsPermanent(err) || run >= w.cfg.MaxRetries+1 {
			log.Error("job failed; dead-lettered", "run", run, "err", err, "permanent", IsPermanent(err))
			w.deadLetterTracked(ctx, msg, p, j, tr, run, streamSeq, err)
			w.observe(p, j, OutcomeDeadLettered, elapsed)
			return
		}
		delay := retryDelay(w.cfg.Retry, run, err)
		_ = tr.Update(ctx, func(st *job.Status) error {
			if st.State.Terminal() {
				return ErrRevoked
			}
			st.State, st.Error, st.Attempts = job.StateRetry, err.Error(), run
			st.Status = fmt.Sprintf("attempt %d failed; retrying in %v", run, delay.Round(time.Millisecond))
			return nil
		})
		log.Warn("job failed; will retry", "run", run, "err", err, "retry_in", delay)
		_ = msg.NakWithDelay(delay)
		w.observe(p, j, OutcomeRetried, elapsed)
	}
}

// admit takes weight units of the run gate, extending the delivery's ack deadline while it
// waits (a suspect run may wait for a long job to finish). It fails only when ctx is done.
func (w *Worker) admit(ctx context.Context, msg jetstream.Msg, weight int64) error {
	if w.gate.TryAcquire(weight) {
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(max(w.cfg.AckWait/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	if err := w.gate.Acquire(wctx, weight); err != nil {
		return fmt.Errorf("worker: wait for a run slot: %w", err)
	}
	return nil
}

// recordSuccess writes the SUCCESS status of a job whose results are committed. A write that
// fails (NATS reconnecting, the TASKS stream electing a leader after a node loss, which takes
// seconds) is retried for up to successRetryFor, each attempt bounded by statusTimeout, while
// in-progress acks keep the delivery: handing the job back would run it again for nothing.
func (w *Worker) recordSuccess(ctx context.Context, msg jetstream.Msg, tr *taskstatus.Tracker, rep *reporter) error {
	deadline := time.Now().Add(successRetryFor)
	for {
		uctx, cancel := context.WithTimeout(ctx, statusTimeout)
		err := tr.Update(uctx, func(st *job.Status) error {
			st.State, st.Current, st.Status, st.Error, st.Attempts = job.StateSuccess, 100, "completed", "", rep.attempt
			for _, fn := range rep.results {
				fn(st)
			}
			return nil
		})
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		_ = msg.InProgress()
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (w *Worker) finish(msg jetstream.Msg, p job.Priority, j *job.Job, o Outcome, d time.Duration) {
	if err := msg.Ack(); err != nil {
		w.log.Warn("ack failed; the job will be redelivered and settled again", "task_id", j.TaskID, "err", err)
	}
	w.observe(p, j, o, d)
}

func (w *Worker) observe(p job.Priority, j *job.Job, o Outcome, d time.Duration) {
	if w.observer != nil {
		w.observer.JobFinished(p, j.Kind, o, d)
	}
}

// settleUnattempted acknowledges a job that is settled without being run (its task was
// cancelled while it was queued).
func (w *Worker) settleUnattempted(msg jetstream.Msg, p job.Priority, j *job.Job, o Outcome) {
	if err := msg.Ack(); err != nil {
		w.log.Warn("ack failed; the job will be redelivered and settled again", "task_id", j.TaskID, "err", err)
	}
	w.observeUnattempted(p, j, o)
}

func (w *Worker) observeUnattempted(p job.Priority, j *job.Job, o Outcome) {
	if w.observer != nil {
		w.observer.JobSettled(p, j.Kind, o)
	}
}

// safeHandle runs the handler, turning a panic into a permanent error.
func (w *Worker) safeHandle(ctx context.Context, j *job.Job) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = Permanent(&PanicError{Value: v, Stack: debug.Stack()})
		}
	}()
	return w.handler.Handle(ctx, j)
}

// heartbeat extends the job's ack deadline every AckWait/3 and, as a fallback to the
// cancellation announcement, cancels the job if its status says REVOKED.
func (w *Worker) heartbeat(ctx context.Context, done <-chan struct{}, msg jetstream.Msg, taskID string, cancel context.CancelCauseFunc) {
	t := time.NewTicker(max(w.cfg.AckWait/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if err := msg.InProgress(); err != nil {
				w.log.Warn("heartbeat failed", "task_id", taskID, "err", err)
			}
			if st, _, err := w.statuses.Get(ctx, taskID); err == nil && st.State == job.StateRevoked {
				cancel(ErrRevoked)
			}
		}
	}
}

// deadLetterTracked dead-letters a job whose status is tracked, marking the task FAILURE.
func (w *Worker) deadLetterTracked(ctx context.Context, msg jetstream.Msg, p job.Priority, j *job.Job, tr *taskstatus.Tracker, attempt int, seq uint64, cause error) {
	if !w.publishDeadLetter(ctx, msg, p, j, attempt, seq, cause) {
		return
	}
	reason := cause.Error()
	if err := tr.Update(ctx, func(st *job.Status) error {
		st.State, st.Error, st.Attempts = job.StateFailure, reason, attempt
		st.Status = "failed: dead-lettered"
		return nil
	}); err != nil {
		w.log.Warn("could not record failure status", "task_id", j.TaskID, "err", err)
	}
	if w.failures != nil {
		if err := w.failures.JobFailed(ctx, j, reason); err != nil {
			w.log.Warn("could not record failure", "task_id", j.TaskID, "err", err)
		}
	}
	if err := msg.Ack(); err != nil {
		w.log.Warn("ack of dead-lettered job failed", "task_id", j.TaskID, "err", err)
	}
	w.recordTask(ctx, j.TaskID, job.StateFailure, attempt, reason)
}

// recordTask records a task's final outcome in its permanent record, if the worker has one.
func (w *Worker) recordTask(ctx context.Context, taskID string, state job.State, attempts int, reason string) {
	if w.tasks == nil {
		return
	}
	if err := w.tasks.FinishTask(ctx, taskID, state, attempts, reason); err != nil {
		w.log.Warn("could not record the task's outcome", "task_id", taskID, "state", state, "err", err)
	}
}

// deadLetter dead-letters a message that is not a valid job.
func (w *Worker) deadLetter(ctx context.Context, msg jetstream.Msg, p job.Priority, j *job.Job, attempt int, seq uint64, cause error) {
	if w.publishDeadLetter(ctx, msg, p, j, attempt, seq, cause) {
		_ = msg.Ack()
	}
}

// publishDeadLetter copies msg to JOBS_DLQ with the failure headers. On failure it hands the
// job back (Nak with a delay) and returns false, so nothing is lost.
func (w *Worker) publishDeadLetter(ctx context.Context, msg jetstream.Msg, p job.Priority, j *job.Job, attempt int, seq uint64, cause error) bool {
	kind := job.KindDocument
	taskID := msg.Headers().Get(job.HeaderTaskID)
	if j != nil {
		kind, taskID = j.Kind, j.TaskID
	}
	dl := &nats.Msg{Subject: job.DLQSubject(p, kind), Data: msg.Data(), Header: nats.Header{}}
	for k, v := range msg.Headers() {
		if k != job.HeaderMsgID && k != "Nats-Expected-Stream" {
			dl.Header[k] = v
		}
	}
	dl.Header.Set(job.HeaderError, cause.Error())
	dl.Header.Set(job.HeaderAttempts, strconv.Itoa(attempt))
	dl.Header.Set(job.HeaderOriginalSubject, msg.Subject())
	dl.Header.Set(job.HeaderTaskID, taskID)
	dl.Header.Set(job.HeaderDeadLetteredAt, time.Now().UTC().Format(time.RFC3339Nano))
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// One dead letter per stored job message, however often its settling is retried.
	msgID := fmt.Sprintf("%s:%s:%d", taskID, p, seq)
	if _, err := w.js.PublishMsg(pctx, dl, jetstream.WithMsgID(msgID)); err != nil {
		w.log.Error("dead-letter publish failed; job handed back", "task_id", taskID, "err", err)
		_ = msg.NakWithDelay(5 * time.Second)
		return false
	}
	return true
}

// reporter is the Reporter of one running job. Its status writes are coalesced: at most one
// per interval, the latest progress winning, the pending one written when the interval ends.
type reporter struct {
	ctx      context.Context // for deferred writes; outlives the job's cancellation
	tr       *taskstatus.Tracker
	cancel   context.CancelCauseFunc
	attempt  int
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	results []func(*job.Status)
	last    time.Time // of the last status write (or the eager start)
	pending *progressUpdate
	timer   *time.Timer
	closed  bool
}

type progressUpdate struct {
	current int
	message string
}

func newReporter(ctx context.Context, tr *taskstatus.Tracker, cancel context.CancelCauseFunc, attempt int, interval time.Duration, log *slog.Logger) *reporter {
	return &reporter{ctx: ctx, tr: tr, cancel: cancel, attempt: attempt, interval: interval, log: log, last: time.Now()}
}

// startLazily schedules the "started" status one interval from now, unless a progress write
// replaces it or the run ends first.
func (r *reporter) startLazily() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = &progressUpdate{0, "started"}
	r.timer = time.AfterFunc(r.interval, r.flush)
}

func (r *reporter) Progress(ctx context.Context, current int, message string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	if wait := r.interval - time.Since(r.last); wait > 0 {
		r.pending = &progressUpdate{current, message}
		if r.timer == nil {
			r.timer = time.AfterFunc(wait, r.flush)
		}
		return nil
	}
	r.pending = nil
	return r.write(ctx, current, message)
}

// flush writes the pending progress when its interval ends.
func (r *reporter) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = nil
	if r.closed || r.pending == nil {
		return
	}
	u := r.pending
	r.pending = nil
	_ = r.write(r.ctx, u.current, u.message)
}

// write stores a PROGRESS status; r.mu is held.
func (r *reporter) write(ctx context.Context, current int, message string) error {
	// A status write must not hang a job while NATS reconnects; progress is best effort.
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	err := r.tr.Update(ctx, func(st *job.Status) error {
		if st.State == job.StateRevoked {
			return ErrRevoked
		}
		if st.State.Terminal() {
			return errSettled
		}
		st.State, st.Current, st.Status, st.Attempts, st.Error = job.StateProgress, current, message, r.attempt, ""
		if st.Total == 0 {
			st.Total = 100
		}
		return nil
	})
	r.last = time.Now()
	if errors.Is(err, ErrRevoked) {
		r.cancel(ErrRevoked)
		return ErrRevoked
	}
	if errors.Is(err, errSettled) {
		// Another delivery finished the job; this run goes on and settles as a duplicate.
		return nil
	}
	if err != nil {
		// Progress is best effort; the job goes on.
		r.log.Warn("progress update failed", "err", err)
	}
	return nil
}

// close ends the run's progress writes, waiting for one in flight; the tracker is the
// caller's again. Pending progress is dropped: the final status follows.
func (r *reporter) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.pending = nil
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

func (r *reporter) Result(fn func(*job.Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, fn)
}

func (r *reporter) Attempt() int { return r.attempt }
