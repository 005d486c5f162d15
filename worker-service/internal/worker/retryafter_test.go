package worker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

var errThrottled = errors.New("http status 429")

func TestRetryAfterLongerThanThePolicyIsHonoured(t *testing.T) {
	h := newHarness(t, 0)
	var (
		mu    sync.Mutex
		times []time.Time
	)
	h.start(t, worker.Config{MaxRetries: 3, Retry: func(int) time.Duration { return 10 * time.Millisecond }},
		worker.HandlerFunc(func(ctx context.Context, j *job.Job) error {
			mu.Lock()
			times = append(times, time.Now())
			n := len(times)
			mu.Unlock()
			if n == 1 {
				return worker.RetryAfter(fmt.Errorf("fetch: %w", errThrottled), 1500*time.Millisecond)
			}
			return nil
		}))
	h.enqueue(t, "ra-1", job.PriorityHigh)
	st := h.waitState(t, "ra-1", job.StateRetry, 5*time.Second)
	if !strings.Contains(st.Status, "retrying in 1.5s") {
		t.Errorf("RETRY status message = %q, want the Retry-After delay (1.5s)", st.Status)
	}
	h.waitState(t, "ra-1", job.StateSuccess, 10*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if gap := times[1].Sub(times[0]); gap < 1500*time.Millisecond {
		t.Fatalf("second attempt came %v after the first, want >= 1.5s (Retry-After)", gap)
	}
}

func TestRetryAfterShorterThanThePolicyWaitsForThePolicy(t *testing.T) {
	h := newHarness(t, 0)
	h.start(t, worker.Config{MaxRetries: 3, Retry: func(int) time.Duration { return 7 * time.Second }},
		worker.HandlerFunc(func(context.Context, *job.Job) error {
			return worker.RetryAfter(errThrottled, time.Second)
		}))
	h.enqueue(t, "ra-2", job.PriorityHigh)
	st := h.waitState(t, "ra-2", job.StateRetry, 5*time.Second)
	if !strings.Contains(st.Status, "retrying in 7s") {
		t.Fatalf("RETRY status message = %q, want the policy's 7s", st.Status)
	}
	if !errors.Is(worker.RetryAfter(errThrottled, time.Second), errThrottled) {
		t.Fatal("RetryAfter does not unwrap to its error")
	}
}

func TestRetryAfterIsCapped(t *testing.T) {
	h := newHarness(t, 0)
	h.start(t, worker.Config{MaxRetries: 3, Retry: func(int) time.Duration { return 10 * time.Millisecond }},
		worker.HandlerFunc(func(context.Context, *job.Job) error {
			return worker.RetryAfter(errThrottled, 30*time.Hour)
		}))
	h.enqueue(t, "ra-3", job.PriorityHigh)
	st := h.waitState(t, "ra-3", job.StateRetry, 5*time.Second)
	if want := "retrying in " + worker.MaxRetryAfter.String(); !strings.Contains(st.Status, want) {
		t.Fatalf("RETRY status message = %q, want %q", st.Status, want)
	}
}

func TestPermanentRetryAfterIsDeadLettered(t *testing.T) {
	h := newHarness(t, 0)
	h.start(t, worker.Config{MaxRetries: 3}, worker.HandlerFunc(func(context.Context, *job.Job) error {
		return worker.Permanent(worker.RetryAfter(errThrottled, time.Second))
	}))
	h.enqueue(t, "ra-4", job.PriorityHigh)
	st := h.waitState(t, "ra-4", job.StateFailure, 5*time.Second)
	if st.Attempts != 1 {
		t.Fatalf("attempts = %d, want 1 (permanent)", st.Attempts)
	}
	if worker.RetryAfter(nil, time.Second) != nil {
		t.Fatal("RetryAfter(nil) is not nil")
	}
}
