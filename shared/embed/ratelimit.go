package embed

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter paces the requests of one embedder, and so of every job of the process that shares
// it: requests evenly spaced at most rps per second, at most tpm tokens per minute (a token
// bucket that starts full, so a minute's budget may go at once), and nothing at all while the
// server has asked for a pause with Retry-After.
type limiter struct {
	rps *rate.Limiter // nil: no limit
	tpm *rate.Limiter // nil: no limit

	clock *clock // the owner's: tests swap it

	mu          sync.Mutex
	pausedUntil time.Time
}

func newLimiter(rps float64, tpm int, clk *clock) *limiter {
	l := &limiter{clock: clk}
	if rps > 0 {
		l.rps = rate.NewLimiter(rate.Limit(rps), 1)
	}
	if tpm > 0 {
		l.tpm = rate.NewLimiter(rate.Limit(float64(tpm)/60), tpm)
	}
	return l
}

// wait blocks until a request of tokens tokens may be sent, or ctx ends. A request larger than
// the whole per-minute budget waits for a full bucket rather than forever.
func (l *limiter) wait(ctx context.Context, tokens int) error {
	for {
		l.mu.Lock()
		d := l.pausedUntil.Sub(l.clock.now())
		l.mu.Unlock()
		if d <= 0 {
			break
		}
		if err := l.clock.sleep(ctx, d); err != nil {
			return fmt.Errorf("embed: paused by the server: %w", err)
		}
	}
	if l.tpm != nil {
		if err := l.tpm.WaitN(ctx, min(max(tokens, 1), l.tpm.Burst())); err != nil {
			return fmt.Errorf("embed: token rate limit: %w", waitErr(ctx, err))
		}
	}
	if l.rps != nil {
		if err := l.rps.Wait(ctx); err != nil {
			return fmt.Errorf("embed: request rate limit: %w", waitErr(ctx, err))
		}
	}
	return nil
}

// pause holds back every request of the embedder until until (a server's Retry-After).
func (l *limiter) pause(until time.Time) {
	l.mu.Lock()
	if until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
	l.mu.Unlock()
}

// waitErr prefers the context's error: rate.Limiter reports "would exceed context deadline"
// before the deadline has passed.
func waitErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if _, ok := ctx.Deadline(); ok {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}
