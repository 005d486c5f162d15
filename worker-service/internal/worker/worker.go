// Package worker is Quire's job runtime: per-priority pull loops with dedicated slots,
// acknowledgement after completion, heartbeats, retries with backoff through JetStream's
// NakWithDelay, dead letters, cancellation, job timeouts, panic recovery and graceful
// shutdown. Handlers know nothing of NATS.
//
// The runtime is split by concern: pull.go pulls as many jobs as a queue has free slots,
// delivery.go runs one delivery, outcome.go decides its outcome (a pure function of the
// task's status, the delivery count, the handler's error and the context's cause), settle.go
// applies it (status write, then Ack, Nak or dead letter), gate.go holds the poison gate,
// deadletter.go the dead-letter publish and reporter.go the progress writes.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/semaphore"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/taskstatus"
)

// Config tunes the runtime. Zero fields take the documented defaults. Heartbeats go out every
// third of each consumer's AckWait, read from the consumer at start-up.
type Config struct {
	// Slots is the number of jobs run at once per priority; only priorities listed are served.
	Slots map[job.Priority]int
	// MaxRetries is the number of retries after the first attempt (MAX_RETRIES, default 3 when
	// negative). A job is dead-lettered after MaxRetries+1 attempts that failed or lost their
	// worker; a run handed back at shutdown is not an attempt. A handler implementing
	// [MaxRetrier] overrides it for its kind.
	MaxRetries int
	// Retry gives the delay before the next attempt (default ExponentialBackoff(60s, 600s)).
	// A handler implementing [RetryDelayer] overrides it for its kind.
	Retry RetryPolicy
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
	// Handler runs the jobs, usually a [Mux] with a handler per kind.
	Handler Handler
	// Failures and Prefetch serve the kinds whose handler is not a FailureRecorder or a
	// Prefetcher itself.
	Failures FailureRecorder
	Tasks    TaskRecorder
	Observer Observer
	Prefetch Prefetcher
	Logger   *slog.Logger
}

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

	// ackWait is each served consumer's AckWait, read at start-up.
	ackWait map[job.Priority]time.Duration

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
		ackWait: map[job.Priority]time.Duration{}, gate: semaphore.NewWeighted(size), gateSize: size,
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
		w.ackWait[p] = c.CachedInfo().Config.AckWait
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

// heartbeatEvery is how often a delivery from queue p extends its ack deadline: a third of
// the consumer's AckWait.
func (w *Worker) heartbeatEvery(p job.Priority) time.Duration {
	return max(w.ackWait[p]/3, 10*time.Millisecond)
}

// track registers a running job's cancel function, so that a cancellation announced from now
// on reaches it, and returns the function that unregisters it.
func (w *Worker) track(taskID string, cancel context.CancelCauseFunc) (untrack func()) {
	w.mu.Lock()
	w.running[taskID] = cancel
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		delete(w.running, taskID)
		w.mu.Unlock()
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
