package worker

import (
	"math/rand/v2"
	"time"
)

// RetryPolicy returns how long to wait before attempt+1 after attempt (1-based) failed.
type RetryPolicy func(attempt int) time.Duration

// ExponentialBackoff is the default retry policy: "equal jitter" exponential backoff. The
// ceiling for attempt n is min(maxDelay, base·2^(n-1)); the delay is half the ceiling plus a
// uniformly random part of the other half, so retries of many jobs that failed together spread
// out while every retry still waits at least half its ceiling. With the defaults (60s, 600s):
// 30–60s, 60–120s, 120–240s, then 300–600s.
func ExponentialBackoff(base, maxDelay time.Duration, rnd func(n int64) int64) RetryPolicy {
	if rnd == nil {
		rnd = rand.Int64N
	}
	return func(attempt int) time.Duration {
		ceil := maxDelay
		if attempt < 1 {
			attempt = 1
		}
		if attempt <= 62 {
			if d := base << (attempt - 1); d > 0 && d < maxDelay && d>>(attempt-1) == base {
				ceil = d
			}
		}
		half := ceil / 2
		if half <= 0 {
			return ceil
		}
		return half + time.Duration(rnd(int64(ceil-half)+1))
	}
}
