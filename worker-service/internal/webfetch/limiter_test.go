package webfetch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestHostLimiterSpacing(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := NewHostLimiter(1, 500*time.Millisecond)
		start := time.Now()
		var starts []time.Duration
		for range 3 {
			release, err := l.Acquire(t.Context(), "example.com")
			if err != nil {
				t.Fatal(err)
			}
			starts = append(starts, time.Since(start))
			release()
			release() // a second call does nothing
		}
		want := []time.Duration{0, 500 * time.Millisecond, time.Second}
		for i := range want {
			if starts[i] != want[i] {
				t.Errorf("request %d started at %v, want %v", i, starts[i], want[i])
			}
		}
		// Another host has its own budget.
		before := time.Now()
		release, err := l.Acquire(t.Context(), "other.example")
		if err != nil {
			t.Fatal(err)
		}
		release()
		if d := time.Since(before); d != 0 {
			t.Errorf("other host waited %v, want 0", d)
		}
	})
}

func TestHostLimiterConcurrency(t *testing.T) {
	t.Parallel()
	for _, perHost := range []int{1, 2} {
		synctest.Test(t, func(t *testing.T) {
			l := NewHostLimiter(perHost, 0)
			var inFlight, peak atomic.Int32
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					release, err := l.Acquire(t.Context(), "example.com")
					if err != nil {
						t.Error(err)
						return
					}
					n := inFlight.Add(1)
					for {
						p := peak.Load()
						if n <= p || peak.CompareAndSwap(p, n) {
							break
						}
					}
					time.Sleep(100 * time.Millisecond) // the request
					inFlight.Add(-1)
					release()
				})
			}
			wg.Wait()
			if got := peak.Load(); got != int32(perHost) {
				t.Errorf("perHost %d: peak in flight = %d", perHost, got)
			}
		})
	}
}

func TestHostLimiterClamp(t *testing.T) {
	t.Parallel()
	if l := NewHostLimiter(10, -1); l.perHost != MaxPerHost || l.delay != DefaultDelay {
		t.Errorf("NewHostLimiter(10, -1) = perHost %d delay %v", l.perHost, l.delay)
	}
	if l := NewHostLimiter(0, 0); l.perHost != DefaultPerHost || l.delay != 0 {
		t.Errorf("NewHostLimiter(0, 0) = perHost %d delay %v", l.perHost, l.delay)
	}
}

func TestHostLimiterCancel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := NewHostLimiter(1, time.Minute)
		release, err := l.Acquire(t.Context(), "example.com")
		if err != nil {
			t.Fatal(err)
		}
		// Waiting for the slot: cancelled.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		_, err = l.Acquire(ctx, "example.com")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("waiting for a slot: error = %v, want DeadlineExceeded", err)
		}
		release()
		// Waiting for the spacing: cancelled, and the slot is given back.
		ctx, cancel = context.WithTimeout(t.Context(), time.Second)
		_, err = l.Acquire(ctx, "example.com")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("waiting for the delay: error = %v, want DeadlineExceeded", err)
		}
		release, err = l.Acquire(t.Context(), "example.com")
		if err != nil {
			t.Fatalf("slot not given back after a cancelled wait: %v", err)
		}
		release()
		l.mu.Lock()
		users := l.hosts["example.com"].users
		l.mu.Unlock()
		if users != 0 {
			t.Errorf("users = %d after every caller left, want 0", users)
		}
	})
}

func TestHostLimiterPrune(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := NewHostLimiter(1, time.Second)
		for i := range 200 {
			release, err := l.Acquire(t.Context(), "h"+string(rune('a'+i%26))+time.Duration(i).String())
			if err != nil {
				t.Fatal(err)
			}
			release()
		}
		time.Sleep(2 * time.Second) // every host above is idle and past its spacing
		for i := range 60 {
			release, err := l.Acquire(t.Context(), "fresh"+time.Duration(i).String())
			if err != nil {
				t.Fatal(err)
			}
			release()
		}
		l.mu.Lock()
		n := len(l.hosts)
		l.mu.Unlock()
		if n > 64 { // the growth threshold was crossed once: the 200 idle hosts are gone
			t.Errorf("%d hosts remembered after 200 went idle, want them pruned", n)
		}
	})
}
