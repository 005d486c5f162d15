package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/quirehq/quire/shared/job"
)

// statusTimeout bounds one write of a task status.
const statusTimeout = 5 * time.Second

// errSettled stops a status write that would overwrite the final state another delivery of
// the job wrote.
var errSettled = errors.New("worker: task already finished by another delivery")

// statusUpdater writes a task status by compare-and-set ([taskstatus.Tracker]).
type statusUpdater interface {
	Update(ctx context.Context, fn func(st *job.Status) error) error
}

// reporter is the Reporter of one running job. Its status writes are coalesced: at most one
// per interval, the latest progress winning, the pending one written when the interval ends.
type reporter struct {
	ctx      context.Context // for deferred writes; outlives the job's cancellation
	tr       statusUpdater
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

func newReporter(ctx context.Context, tr statusUpdater, cancel context.CancelCauseFunc, attempt int, interval time.Duration, log *slog.Logger) *reporter {
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
