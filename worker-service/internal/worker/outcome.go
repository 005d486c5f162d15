package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/metrics"
)

// Outcome is how an attempt ended, as reported to an [Observer]; it is the metrics' outcome.
type Outcome = metrics.Outcome

// Outcomes of an attempt.
const (
	OutcomeSucceeded    = metrics.OutcomeSucceeded
	OutcomeRetried      = metrics.OutcomeRetried
	OutcomeDeadLettered = metrics.OutcomeDeadLettered
	OutcomeCancelled    = metrics.OutcomeCancelled
	// OutcomeReleased: the job was handed back unfinished (shutdown, or its status could not
	// be written); it is delivered again and the run does not count as an attempt.
	OutcomeReleased = metrics.OutcomeReleased
)

// action is what the runtime does with a delivery.
type action int

const (
	// actRun runs the job (before a run only).
	actRun action = iota + 1
	// actCancelQueued acknowledges a job whose task was cancelled before it ran.
	actCancelQueued
	// actDuplicate acknowledges a job another delivery already finished.
	actDuplicate
	// actDeadLetter moves the job to the dead-letter stream and marks its task FAILURE.
	actDeadLetter
	// actSucceed records SUCCESS and acknowledges the job.
	actSucceed
	// actCancel records REVOKED for a run stopped by its cancellation and acknowledges it.
	actCancel
	// actHandBack returns the job to its queue without counting the run (shutdown).
	actHandBack
	// actRetry records RETRY and redelivers the job after delay.
	actRetry
)

// verdict is the decision about one delivery.
type verdict struct {
	action action
	// runs is the number of attempts the task has used: before a run, the runs spent; after
	// one, the run's number.
	runs int
	// alone: the run must run alone in this process (its previous run lost its worker).
	alone bool
	// reason is the dead-letter reason or the failure recorded for a retry.
	reason error
	// delay is the wait before a retry.
	delay time.Duration
}

// retryRule is how often and how soon a job of one kind is retried.
type retryRule struct {
	// maxRetries is the number of retries after the first attempt.
	maxRetries int
	policy     RetryPolicy
}

// exhausted reports whether a job that used runs attempts has none left.
func (r retryRule) exhausted(runs int) bool { return runs >= r.maxRetries+1 }

// delay is the wait before the attempt after a failed run: the policy's delay, or the wait
// asked for by the first [RetryAfterError] in err's chain (capped at [MaxRetryAfter]) if that
// is longer.
func (r retryRule) delay(run int, err error) time.Duration {
	d := r.policy(run)
	if ra, ok := errors.AsType[*RetryAfterError](err); ok {
		d = max(d, min(ra.After, MaxRetryAfter))
	}
	return max(d, 0)
}

// deliveriesPerRun bounds the deliveries of a job that never get to run it (each handed back
// or lost before its run started): a job delivered more than deliveriesPerRun*(MaxRetries+1)
// times is dead-lettered as worker lost, whatever its run count.
const deliveriesPerRun = 4

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

// decideDelivery decides, before a run, what to do with the delivery-th delivery of a job
// whose status is prev: run it (alone when its previous run lost its worker: the status is
// still PROGRESS), acknowledge it (cancelled while queued, or already finished), or
// dead-letter it because its runs or deliveries are spent. Every run counts toward
// MaxRetries+1, failed or lost (see [runsSpent]).
func decideDelivery(prev *job.Status, delivery int, r retryRule) verdict {
	switch prev.State {
	case job.StateRevoked:
		return verdict{action: actCancelQueued, runs: prev.Attempts}
	case job.StateSuccess, job.StateFailure:
		return verdict{action: actDuplicate, runs: prev.Attempts}
	}
	spent := runsSpent(prev, delivery)
	lost := prev.State == job.StateProgress
	if r.exhausted(spent) || delivery > deliveriesPerRun*(r.maxRetries+1) {
		reason := ErrWorkerLost
		if !lost && r.exhausted(prev.Attempts) && prev.Error != "" {
			// Its runs ran out under a higher MAX_RETRIES.
			reason = fmt.Errorf("retries exhausted: %s", prev.Error)
		}
		return verdict{action: actDeadLetter, runs: spent, reason: reason}
	}
	return verdict{action: actRun, runs: spent, alone: lost}
}

// decideAttempt decides how the run-th run of a job ended: err is what its handler returned,
// cause the cause of its context ([ErrRevoked], [ErrShutdown], [ErrJobTimeout] or nil), latest
// the task's status read after a failed run (nil if not read). A failure is retried with
// backoff unless it is permanent or the runs are spent; a failure after another delivery
// finished the task is dropped, that delivery's result standing.
func decideAttempt(run int, err, cause error, latest *job.Status, r retryRule, jobTimeout time.Duration) verdict {
	switch {
	case err == nil:
		return verdict{action: actSucceed, runs: run}
	case errors.Is(err, ErrRevoked) || errors.Is(cause, ErrRevoked):
		return verdict{action: actCancel, runs: run}
	case errors.Is(cause, ErrShutdown):
		return verdict{action: actHandBack, runs: run}
	}
	if errors.Is(cause, ErrJobTimeout) {
		err = fmt.Errorf("%w after %v: %w", ErrJobTimeout, jobTimeout, err)
	}
	if latest != nil && (latest.State == job.StateSuccess || latest.State == job.StateFailure) {
		return verdict{action: actDuplicate, runs: run, reason: err}
	}
	if IsPermanent(err) || r.exhausted(run) {
		return verdict{action: actDeadLetter, runs: run, reason: err}
	}
	return verdict{action: actRetry, runs: run, reason: err, delay: r.delay(run, err)}
}
