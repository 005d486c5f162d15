package worker

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/taskstatus"
)

// process runs one delivery of a job and settles its message. It calls freeSlot once the
// job's handler has returned: the queue's slot fetches its next job while this one's status
// is written and its message acknowledged.
func (w *Worker) process(runCtx context.Context, p job.Priority, msg jetstream.Msg, freeSlot func()) {
	// Settling a job must outlive a stop request.
	ctx := context.WithoutCancel(runCtx)
	number := 1
	var streamSeq uint64
	if md, err := msg.Metadata(); err == nil {
		number = int(md.NumDelivered)
		streamSeq = md.Sequence.Stream
	}
	j, err := job.Decode(msg.Data())
	if err != nil {
		w.log.Error("undecodable job", "queue", p, "task_id", msg.Headers().Get(job.HeaderTaskID), "err", err)
		w.deadLetterUndecodable(ctx, msg, p, number, streamSeq, err)
		return
	}
	log := w.log.With("task_id", j.TaskID, "queue", p, "kind", j.Kind, "delivery", number)

	// Registered before the status is read: a cancellation announced from now on reaches the
	// job, and one announced before is in the status.
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer w.track(j.TaskID, cancel)()
	rt := w.routeFor(j.Kind)
	if rt.prefetch != nil {
		defer rt.prefetch.Prefetch(jobCtx, j)()
	}

	tr, err := w.trackStatus(ctx, j)
	if err != nil {
		log.Warn("task status unavailable; job handed back", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	prev := tr.Status()
	v := decideDelivery(&prev, number, rt.rule)
	switch v.action {
	case actCancelQueued:
		log.Info("task was cancelled before it started")
		w.settleUnattempted(msg, p, j, OutcomeCancelled)
		return
	case actDuplicate:
		log.Info("task already finished; duplicate delivery acknowledged", "state", prev.State)
		_ = msg.Ack()
		return
	case actDeadLetter:
		log.Error("job dead-lettered: no attempts left", "runs", v.runs, "err", v.reason)
		w.deadLetter(ctx, msg, p, j, tr, rt.failures, v.runs, streamSeq, v.reason)
		w.observeUnattempted(p, j, OutcomeDeadLettered)
		return
	}

	// A run after a lost one runs alone in this process: if it kills its worker again, it takes
	// no other job with it, so a poison job cannot drag its neighbours to the dead-letter queue.
	weight := int64(1)
	if v.alone {
		weight = w.gateSize
		log.Warn("previous run lost its worker; this run waits to run alone", "runs", v.runs)
	}
	if err := w.admit(runCtx, msg, p, weight); err != nil {
		log.Info("stop requested before the run began; job handed back")
		_ = msg.Nak()
		return
	}
	// The gate weight is held until the job is settled: a run that must run alone starts only
	// once every other job's outcome is recorded, so that it cannot take one with it.
	defer w.gate.Release(weight)

	run, ok := w.recordStart(ctx, msg, p, j, tr, number, v.runs+1, log)
	if !ok {
		return
	}

	start := time.Now()
	if w.observer != nil {
		w.observer.JobStarted(p, j.Kind)
	}
	log.Debug("job started", "run", run)
	r := w.runHandler(ctx, jobCtx, cancel, msg, p, j, tr, rt.handler, number, run, log)
	freeSlot()
	elapsed := time.Since(start)

	var latest *job.Status
	if r.err != nil {
		// Another delivery of the job may have finished it meanwhile (this run's heartbeats
		// did not reach the broker, as while a cluster elects a leader, and its ack deadline
		// passed): its result stands, and this run's failure is dropped.
		if st, _, gerr := w.statuses.Get(ctx, j.TaskID); gerr == nil {
			latest = st
		}
	}
	v = decideAttempt(run, r.err, r.cause, latest, rt.rule, w.cfg.JobTimeout)
	w.settle(ctx, settlement{msg: msg, p: p, j: j, tr: tr, failures: rt.failures, rep: r.rep, seq: streamSeq, elapsed: elapsed, log: log}, v)
}

// trackStatus tracks the status of j, recreating it (PENDING) if it is missing, as when an
// operator deleted it, rather than lose the job.
func (w *Worker) trackStatus(ctx context.Context, j *job.Job) (*taskstatus.Tracker, error) {
	tr, err := w.statuses.Track(ctx, j.TaskID)
	if errors.Is(err, job.ErrNotFound) {
		if err = w.statuses.Create(ctx, job.PendingStatus(j, "")); err == nil || errors.Is(err, job.ErrConflict) {
			tr, err = w.statuses.Track(ctx, j.TaskID)
		}
	}
	return tr, err
}

// recordStart records the start of the run numbered run and returns its number as the status
// had it, or false if the delivery was settled instead (cancelled meanwhile, or handed back).
// The first delivery records its start lazily, with its first progress write at most
// ProgressInterval after the run begins, so a short job costs one status write (SUCCESS). A
// redelivery records it before the run, so that a run that kills its worker is known.
func (w *Worker) recordStart(ctx context.Context, msg jetstream.Msg, p job.Priority, j *job.Job, tr *taskstatus.Tracker, number, run int, log *slog.Logger) (int, bool) {
	if w.startsLazily(number) {
		return run, true
	}
	err := tr.Update(ctx, func(st *job.Status) error {
		if st.State == job.StateRevoked {
			return ErrRevoked
		}
		run = runsSpent(st, number) + 1
		st.State, st.Attempts, st.Current, st.Status, st.Error = job.StateProgress, run, 0, "started", ""
		if st.Total == 0 {
			st.Total = 100
		}
		return nil
	})
	if errors.Is(err, ErrRevoked) {
		w.settleUnattempted(msg, p, j, OutcomeCancelled)
		return run, false
	}
	if err != nil {
		log.Warn("task status unavailable; job handed back", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return run, false
	}
	return run, true
}

// startsLazily reports whether the number-th delivery's run records its start with its
// first progress write rather than before it runs.
func (w *Worker) startsLazily(number int) bool {
	return number == 1 && w.cfg.ProgressInterval > 0
}

// ran is how a run ended.
type ran struct {
	err   error     // the handler's
	cause error     // of the job's context
	rep   *reporter // its results go into the SUCCESS status
}

// runHandler runs the handler under the job timeout, with heartbeats and a reporter.
func (w *Worker) runHandler(ctx, jobCtx context.Context, cancel context.CancelCauseFunc, msg jetstream.Msg, p job.Priority, j *job.Job,
	tr *taskstatus.Tracker, h Handler, number, run int, log *slog.Logger) ran {
	jobCtx, cancelTimeout := context.WithTimeoutCause(jobCtx, w.cfg.JobTimeout, ErrJobTimeout)
	defer cancelTimeout()
	hbDone := make(chan struct{})
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeat(jobCtx, hbDone, msg, p, j.TaskID, cancel) })

	rep := newReporter(ctx, tr, cancel, run, w.cfg.ProgressInterval, log)
	if w.startsLazily(number) {
		rep.startLazily()
	}
	err := safeHandle(WithReporter(jobCtx, rep), h, j)
	rep.close()
	close(hbDone)
	hb.Wait()
	return ran{err: err, cause: context.Cause(jobCtx), rep: rep}
}

// safeHandle runs the handler, turning a panic into a permanent error.
func safeHandle(ctx context.Context, h Handler, j *job.Job) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = Permanent(&PanicError{Value: v, Stack: debug.Stack()})
		}
	}()
	return h.Handle(ctx, j)
}

// heartbeat extends the job's ack deadline every third of AckWait and, as a fallback to the
// cancellation announcement, cancels the job if its status says REVOKED.
func (w *Worker) heartbeat(ctx context.Context, done <-chan struct{}, msg jetstream.Msg, p job.Priority, taskID string, cancel context.CancelCauseFunc) {
	t := time.NewTicker(w.heartbeatEvery(p))
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
