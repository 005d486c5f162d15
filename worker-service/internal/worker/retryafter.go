package worker

import (
	"fmt"
	"time"
)

// MaxRetryAfter caps the wait a [RetryAfter] error can ask for: a server asking for more
// (Retry-After: 86400) gets its next attempt after MaxRetryAfter, which still counts
// against MaxRetries like any retry.
const MaxRetryAfter = time.Hour

// RetryAfterError is a retryable error whose next attempt should wait at least After, for
// example a 429 or 503 answer with a Retry-After header. The runtime waits the longer of
// After (capped at [MaxRetryAfter]) and its retry policy's delay. Wrapping it in
// [Permanent] makes it permanent.
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err so that the job's next attempt waits at least d. A nil err stays nil;
// a d of zero or less leaves the policy's delay alone.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, After: d}
}
