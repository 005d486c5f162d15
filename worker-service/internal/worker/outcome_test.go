package worker

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/job"
)

var testRule = retryRule{maxRetries: 2, policy: func(attempt int) time.Duration { return time.Duration(attempt) * time.Second }}

func TestDecideDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		prev       job.Status
		delivery   int
		want       action
		wantRuns   int
		wantAlone  bool
		wantReason string
	}{
		{"first delivery runs", job.Status{State: job.StatePending}, 1, actRun, 0, false, ""},
		{"retry after a failed run", job.Status{State: job.StateRetry, Attempts: 1}, 2, actRun, 1, false, ""},
		{"cancelled while queued", job.Status{State: job.StateRevoked}, 1, actCancelQueued, 0, false, ""},
		{"already succeeded", job.Status{State: job.StateSuccess, Attempts: 1}, 2, actDuplicate, 1, false, ""},
		{"already failed", job.Status{State: job.StateFailure, Attempts: 3}, 4, actDuplicate, 3, false, ""},
		{"previous run lost its worker runs alone", job.Status{State: job.StateProgress, Attempts: 1}, 2, actRun, 1, true, ""},
		{"redelivery without a recorded run counts one", job.Status{State: job.StatePending}, 2, actRun, 1, false, ""},
		{"handed back at shutdown is not a run", job.Status{State: job.StatePending, Status: statusHandedBack}, 2, actRun, 0, false, ""},
		{"every run lost", job.Status{State: job.StateProgress, Attempts: 3}, 4, actDeadLetter, 3, false, ErrWorkerLost.Error()},
		{"runs spent under a higher MAX_RETRIES", job.Status{State: job.StateRetry, Attempts: 3, Error: "boom"}, 4, actDeadLetter, 3, false, "retries exhausted: boom"},
		{"deliveries that never ran are bounded", job.Status{State: job.StatePending, Status: statusHandedBack}, 13, actDeadLetter, 0, false, ErrWorkerLost.Error()},
		{"the last allowed delivery without a run still runs", job.Status{State: job.StatePending, Status: statusHandedBack}, 12, actRun, 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := decideDelivery(&tt.prev, tt.delivery, testRule)
			if v.action != tt.want || v.runs != tt.wantRuns || v.alone != tt.wantAlone {
				t.Fatalf("decideDelivery = %+v, want action %d, runs %d, alone %v", v, tt.want, tt.wantRuns, tt.wantAlone)
			}
			if got := errString(v.reason); got != tt.wantReason {
				t.Fatalf("reason %q, want %q", got, tt.wantReason)
			}
		})
	}
}

func TestDecideAttempt(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name      string
		run       int
		err       error
		cause     error
		latest    *job.Status
		want      action
		wantDelay time.Duration
		wantErr   error
	}{
		{"success", 1, nil, nil, nil, actSucceed, 0, nil},
		{"success despite a stop request", 1, nil, ErrShutdown, nil, actSucceed, 0, nil},
		{"failure is retried with the policy's delay", 1, boom, nil, &job.Status{State: job.StateProgress}, actRetry, time.Second, boom},
		{"second failure waits longer", 2, boom, nil, nil, actRetry, 2 * time.Second, boom},
		{"last run is dead-lettered", 3, boom, nil, nil, actDeadLetter, 0, boom},
		{"permanent error is dead-lettered at once", 1, Permanent(boom), nil, nil, actDeadLetter, 0, boom},
		{"retry-after longer than the policy", 1, RetryAfter(boom, time.Minute), nil, nil, actRetry, time.Minute, boom},
		{"retry-after is capped", 1, RetryAfter(boom, 48*time.Hour), nil, nil, actRetry, MaxRetryAfter, boom},
		{"handler saw the cancellation", 1, ErrRevoked, nil, nil, actCancel, 0, nil},
		{"context cancelled by the user", 2, errCanceled, ErrRevoked, nil, actCancel, 0, nil},
		{"shutdown hands back", 1, errCanceled, ErrShutdown, nil, actHandBack, 0, nil},
		{"timeout counts as a failed run", 1, errCanceled, ErrJobTimeout, nil, actRetry, time.Second, ErrJobTimeout},
		{"another delivery succeeded meanwhile", 1, boom, nil, &job.Status{State: job.StateSuccess}, actDuplicate, 0, boom},
		{"another delivery dead-lettered it meanwhile", 3, boom, nil, &job.Status{State: job.StateFailure}, actDuplicate, 0, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := decideAttempt(tt.run, tt.err, tt.cause, tt.latest, testRule, time.Minute)
			if v.action != tt.want || v.runs != tt.run || v.delay != tt.wantDelay {
				t.Fatalf("decideAttempt = %+v, want action %d, runs %d, delay %v", v, tt.want, tt.run, tt.wantDelay)
			}
			if tt.wantErr != nil && !errors.Is(v.reason, tt.wantErr) {
				t.Fatalf("reason %v, want one wrapping %v", v.reason, tt.wantErr)
			}
		})
	}
}

func TestRetryRuleOverriddenByTheKindsHandler(t *testing.T) {
	t.Parallel()
	w := New(Config{MaxRetries: 3, Retry: testRule.policy}, Deps{})
	m := NewMux()
	if err := m.Register("toy", overriding{HandlerFunc(nil)}); err != nil {
		t.Fatal(err)
	}
	if err := m.Register("plain", HandlerFunc(nil)); err != nil {
		t.Fatal(err)
	}
	w.handler = m
	r := w.routeFor("toy").rule
	if r.maxRetries != 0 || r.policy(5) != 5*time.Millisecond {
		t.Fatalf("toy rule: %d retries, delay %v; want 0 and 5ms", r.maxRetries, r.policy(5))
	}
	r = w.routeFor("plain").rule
	if r.maxRetries != 3 || r.policy(5) != 5*time.Second {
		t.Fatalf("plain rule: %d retries, delay %v; want 3 and 5s", r.maxRetries, r.policy(5))
	}
}

type overriding struct{ Handler }

func (overriding) MaxRetries() int { return 0 }
func (overriding) RetryDelay(attempt int) time.Duration {
	return time.Duration(attempt) * time.Millisecond
}

var errCanceled = fmt.Errorf("handler: %w", errors.New("context canceled"))

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
