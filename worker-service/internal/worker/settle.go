package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/taskstatus"
)

// successRetryFor is how long the SUCCESS status of a committed job is retried before the job
// is handed back.
const successRetryFor = 30 * time.Second

// successRetryEvery spaces the attempts at writing a SUCCESS status.
const successRetryEvery = 250 * time.Millisecond

// settlement is what applying the outcome of a run needs.
type settlement struct {
	msg      jetstream.Msg
	p        job.Priority
	j        *job.Job
	tr       *taskstatus.Tracker
	failures FailureRecorder // nil: none
	rep      *reporter
	seq      uint64 // stream sequence of the job message
	elapsed  time.Duration
	log      *slog.Logger
}

// settle applies the verdict on a run: the task's status is written first, then the message
// is acknowledged, handed back or dead-lettered, and the outcome observed.
func (w *Worker) settle(ctx context.Context, s settlement, v verdict) {
	run := v.runs
	switch v.action {
	case actSucceed:
		if err := recordSuccess(ctx, s.tr, s.rep, func() { _ = s.msg.InProgress() }); err != nil {
			// The results are committed; a redelivery re-runs the idempotent job.
			s.log.Warn("could not record success; job will be redelivered", "err", err)
			_ = s.msg.NakWithDelay(time.Second)
			w.observe(s.p, s.j, OutcomeReleased, s.elapsed)
			return
		}
		s.log.Info("job succeeded", "run", run, "duration", s.elapsed)
		w.finish(s.msg, s.p, s.j, OutcomeSucceeded, s.elapsed)
		w.recordTask(ctx, s.j.TaskID, job.StateSuccess, run, "")
	case actCancel:
		_ = s.tr.Update(ctx, func(st *job.Status) error {
			st.State, st.Status, st.Attempts = job.StateRevoked, "cancelled", run
			return nil
		})
		s.log.Info("job cancelled while running", "run", run, "duration", s.elapsed)
		w.finish(s.msg, s.p, s.j, OutcomeCancelled, s.elapsed)
		w.recordTask(ctx, s.j.TaskID, job.StateRevoked, run, "")
	case actHandBack:
		// A run cut short by a shutdown is handed back and does not count as an attempt.
		_ = s.tr.Update(ctx, func(st *job.Status) error {
			if st.State.Terminal() {
				return errSettled
			}
			st.State, st.Status, st.Attempts = job.StatePending, statusHandedBack, run-1
			return nil
		})
		s.log.Info("job handed back at shutdown", "run", run)
		_ = s.msg.Nak()
		w.observe(s.p, s.j, OutcomeReleased, s.elapsed)
	case actDuplicate:
		s.log.Warn("job failed but another delivery already finished it; acknowledged", "run", run, "err", v.reason)
		w.finish(s.msg, s.p, s.j, OutcomeSucceeded, s.elapsed)
	case actDeadLetter:
		s.log.Error("job failed; dead-lettered", "run", run, "err", v.reason, "permanent", IsPermanent(v.reason))
		w.deadLetter(ctx, s.msg, s.p, s.j, s.tr, s.failures, run, s.seq, v.reason)
		w.observe(s.p, s.j, OutcomeDeadLettered, s.elapsed)
	case actRetry:
		_ = s.tr.Update(ctx, func(st *job.Status) error {
			if st.State.Terminal() {
				return ErrRevoked
			}
			st.State, st.Error, st.Attempts = job.StateRetry, v.reason.Error(), run
			st.Status = fmt.Sprintf("attempt %d failed; retrying in %v", run, v.delay.Round(time.Millisecond))
			return nil
		})
		s.log.Warn("job failed; will retry", "run", run, "err", v.reason, "retry_in", v.delay)
		_ = s.msg.NakWithDelay(v.delay)
		w.observe(s.p, s.j, OutcomeRetried, s.elapsed)
	}
}

// recordSuccess writes the SUCCESS status of a job whose results are committed. A write that
// fails (NATS reconnecting, the TASKS stream electing a leader after a node loss, which takes
// seconds) is retried for up to successRetryFor, each attempt bounded by statusTimeout, while
// in-progress acks (keepAlive) keep the delivery: handing the job back would run it again for
// nothing. Attempts are 250ms apart.
func recordSuccess(ctx context.Context, tr statusUpdater, rep *reporter, keepAlive func()) error {
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
		keepAlive()
		select {
		case <-ctx.Done():
			return err
		case <-time.After(successRetryEvery):
		}
	}
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
