package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/quirehq/quire/shared/job"
)

// Handler processes one job. It returns nil when the job's results are committed, an error
// made with [Permanent] when retrying cannot help (the job is dead-lettered at once), or any
// other error to have the job retried with backoff. It must stop soon after ctx is done; the
// cause of ctx ([context.Cause]) tells why: [ErrRevoked], [ErrShutdown] or a timeout.
type Handler interface {
	Handle(ctx context.Context, j *job.Job) error
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(ctx context.Context, j *job.Job) error

// Handle implements [Handler].
func (f HandlerFunc) Handle(ctx context.Context, j *job.Job) error { return f(ctx, j) }

// MaxRetrier is implemented by a handler whose kind has its own retry count: MaxRetries is
// the number of retries after the first attempt (zero: none), in place of
// [Config.MaxRetries].
type MaxRetrier interface {
	MaxRetries() int
}

// RetryDelayer is implemented by a handler whose kind has its own backoff: RetryDelay is the
// wait before attempt+1 after attempt (1-based) failed, in place of [Config.Retry]. A
// [RetryAfterError] still lengthens it.
type RetryDelayer interface {
	RetryDelay(attempt int) time.Duration
}

// Mux routes jobs to handlers by kind: the kinds registered are the kinds this worker runs.
// Adding a kind takes a payload type and one Register call; the runtime treats every kind
// alike (retries, dead letters, cancellation). Besides [Handler], a kind's handler may
// implement [MaxRetrier] and [RetryDelayer] (its retry policy), [FailureRecorder] (told when
// its job is dead-lettered) and [Prefetcher] (reads ahead while the job's status is read);
// without them the worker's [Config] and [Deps] apply.
type Mux struct {
	handlers   map[job.Kind]Handler
	middleware []func(Handler) Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{handlers: map[job.Kind]Handler{}} }

// ErrKindRegistered is returned by [Mux.Register] for a kind that already has a handler.
var ErrKindRegistered = errors.New("worker: job kind registered twice")

// Register routes jobs of kind k to h. It fails for a kind that is not a valid subject token
// ([job.Kind.Valid]), a nil handler, or a kind registered already.
func (m *Mux) Register(k job.Kind, h Handler) error {
	switch {
	case !k.Valid():
		return fmt.Errorf("worker: register kind %q: %w", k, job.ErrInvalidKind)
	case h == nil:
		return fmt.Errorf("worker: register kind %q: nil handler", k)
	}
	if _, ok := m.handlers[k]; ok {
		return fmt.Errorf("%w: %q", ErrKindRegistered, k)
	}
	m.handlers[k] = h
	return nil
}

// Use wraps every kind's handler in mw, the first added outermost. The kind's own handler
// still answers for its optional interfaces.
func (m *Mux) Use(mw ...func(Handler) Handler) { m.middleware = append(m.middleware, mw...) }

// Kinds lists the registered kinds, sorted.
func (m *Mux) Kinds() []job.Kind {
	return slices.Sorted(maps.Keys(m.handlers))
}

// Handle implements [Handler]. A job of a kind with no handler fails permanently.
func (m *Mux) Handle(ctx context.Context, j *job.Job) error {
	h, ok := m.handlers[j.Kind]
	if !ok {
		return Permanent(fmt.Errorf("worker: no handler for job kind %q", j.Kind))
	}
	return m.wrap(h).Handle(ctx, j)
}

func (m *Mux) wrap(h Handler) Handler {
	for i := len(m.middleware) - 1; i >= 0; i-- {
		h = m.middleware[i](h)
	}
	return h
}

// ArgsFunc adapts fn, which takes a kind's payload type T, to a [Handler]: the job's Args
// are decoded into a T first (missing Args leave it zero); Args that do not decode into a T
// fail the job permanently.
func ArgsFunc[T any](fn func(ctx context.Context, j *job.Job, args T) error) Handler {
	return HandlerFunc(func(ctx context.Context, j *job.Job) error {
		var args T
		if len(j.Args) > 0 {
			if err := json.Unmarshal(j.Args, &args); err != nil {
				return Permanent(fmt.Errorf("worker: %s job %s: decode args: %w", j.Kind, j.TaskID, err))
			}
		}
		return fn(ctx, j, args)
	})
}

// Reasons a job's context is cancelled, read with [context.Cause].
var (
	// ErrRevoked: the task was cancelled by a user.
	ErrRevoked = errors.New("worker: task revoked")
	// ErrShutdown: the worker is shutting down and the job is handed back to the queue.
	ErrShutdown = errors.New("worker: shutting down")
	// ErrJobTimeout: the job ran longer than JOB_TIMEOUT.
	ErrJobTimeout = errors.New("worker: job timed out")
	// ErrWorkerLost is the dead-letter reason of a job whose deliveries kept dying with their
	// worker.
	ErrWorkerLost = errors.New("worker lost")
)

// PermanentError marks an error that retrying cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that the job is dead-lettered without further attempts.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err is, or wraps, a [PermanentError].
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// PanicError is the permanent error of a handler that panicked.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("worker: handler panic: %v", e.Value) }

// route is how the worker runs the jobs of one kind.
type route struct {
	handler  Handler // with the mux's middleware
	rule     retryRule
	failures FailureRecorder // nil: none
	prefetch Prefetcher      // nil: none
}

// routeFor returns the route of jobs of kind k: the kind's handler with the worker's
// MaxRetries, Retry, Failures and Prefetch unless the handler overrides them.
func (w *Worker) routeFor(k job.Kind) route {
	run, own := w.handler, w.handler
	if m, ok := w.handler.(*Mux); ok {
		if kh, ok := m.handlers[k]; ok {
			run, own = m.wrap(kh), kh
		}
	}
	r := route{handler: run, rule: retryRule{maxRetries: w.cfg.MaxRetries, policy: w.cfg.Retry}, failures: w.failures, prefetch: w.prefetch}
	if mr, ok := own.(MaxRetrier); ok {
		r.rule.maxRetries = max(mr.MaxRetries(), 0)
	}
	if rd, ok := own.(RetryDelayer); ok {
		r.rule.policy = rd.RetryDelay
	}
	if f, ok := own.(FailureRecorder); ok {
		r.failures = f
	}
	if p, ok := own.(Prefetcher); ok {
		r.prefetch = p
	}
	return r
}
