package worker

import (
	"context"
	"errors"
	"fmt"

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

// Mux routes jobs to handlers by kind.
type Mux struct {
	handlers map[job.Kind]Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{handlers: map[job.Kind]Handler{}} }

// Register routes jobs of kind k to h.
func (m *Mux) Register(k job.Kind, h Handler) { m.handlers[k] = h }

// Handle implements [Handler]. A job of a kind with no handler fails permanently.
func (m *Mux) Handle(ctx context.Context, j *job.Job) error {
	h, ok := m.handlers[j.Kind]
	if !ok {
		return Permanent(fmt.Errorf("worker: no handler for job kind %q", j.Kind))
	}
	return h.Handle(ctx, j)
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
