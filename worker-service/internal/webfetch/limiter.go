package webfetch

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// HostLimiter keeps a crawl polite: at most PerHost requests in flight to one host, and
// request starts to one host spaced at least Delay apart. It is safe for concurrent use and
// may be shared by every crawl in a process, so that concurrent crawls of one site share its
// budget. It starts no goroutines; idle hosts are forgotten.
type HostLimiter struct {
	perHost int
	delay   time.Duration

	mu      sync.Mutex
	hosts   map[string]*hostSlot
	pruneAt int
}

type hostSlot struct {
	sem   chan struct{} // one token per request in flight
	next  time.Time     // earliest start of the next request
	users int           // holders and waiters
}

// Defaults used by [NewHostLimiter] for values out of range.
const (
	DefaultPerHost = 1
	MaxPerHost     = 2
	DefaultDelay   = 500 * time.Millisecond
)

// NewHostLimiter returns a limiter allowing perHost concurrent requests per host (clamped to
// 1..[MaxPerHost]; 0 means [DefaultPerHost]) started at least delay apart (a negative delay
// means [DefaultDelay]; 0 means no spacing).
func NewHostLimiter(perHost int, delay time.Duration) *HostLimiter {
	if perHost <= 0 {
		perHost = DefaultPerHost
	}
	perHost = min(perHost, MaxPerHost)
	if delay < 0 {
		delay = DefaultDelay
	}
	return &HostLimiter{perHost: perHost, delay: delay, hosts: map[string]*hostSlot{}, pruneAt: 64}
}

// Acquire waits until a request to host may start, then returns the function that ends it;
// call it exactly once (further calls do nothing) when the response has been read. It fails
// with the context's error if ctx ends first, holding nothing.
func (l *HostLimiter) Acquire(ctx context.Context, host string) (release func(), err error) {
	l.mu.Lock()
	s := l.hosts[host]
	if s == nil {
		l.prune(time.Now())
		s = &hostSlot{sem: make(chan struct{}, l.perHost)}
		l.hosts[host] = s
	}
	s.users++
	l.mu.Unlock()

	done := func() {
		l.mu.Lock()
		s.users--
		l.mu.Unlock()
	}

	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		done()
		return nil, fmt.Errorf("webfetch: wait for %s: %w", host, context.Cause(ctx))
	}
	free := func() {
		<-s.sem
		done()
	}

	// Reserve the next start time while holding a slot.
	l.mu.Lock()
	now := time.Now()
	start := now
	if s.next.After(now) {
		start = s.next
	}
	s.next = start.Add(l.delay)
	l.mu.Unlock()

	if wait := start.Sub(now); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			free()
			return nil, fmt.Errorf("webfetch: wait for %s: %w", host, context.Cause(ctx))
		}
	}
	var once sync.Once
	return func() { once.Do(free) }, nil
}

// prune forgets hosts nobody uses whose spacing has passed, once the map has grown past
// pruneAt; l.mu must be held.
func (l *HostLimiter) prune(now time.Time) {
	if len(l.hosts) < l.pruneAt {
		return
	}
	for h, s := range l.hosts {
		if s.users == 0 && !s.next.After(now) {
			delete(l.hosts, h)
		}
	}
	l.pruneAt = max(64, 2*len(l.hosts))
}
