package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
)

// Queue rates for the dashboard. JetStream keeps counters, not rates, so the dashboard samples
// them and derives rates from the differences between samples. Samples are taken when the
// queues page is viewed (its script polls every 2 s), at most one per uiSampleEvery whoever
// asks, and kept for uiRateWindow in a ring on the Server's ui: rates cover the last minutes
// someone watched, and start afresh after a restart. Per priority:
//
//   - done/min: jobs that left the job stream (acknowledged: completed, cancelled, or
//     dead-lettered, which also removes them), from the stream's last sequence minus the
//     messages it still holds;
//   - retries/min: redeliveries, from the consumer's delivery count minus its first deliveries
//     (the delivered stream sequence);
//   - dead-lettered/min: growth of the JOBS_DLQ messages on dlq.<priority>.>; a retry or purge
//     in the same 2 s as a new dead letter can hide it, so this is a lower bound;
//   - failure rate: dead-lettered over done, in percent.
const (
	uiSampleEvery = time.Second
	uiRateWindow  = 5 * time.Minute
	uiReadTimeout = 3 * time.Second
)

// queueCounters is one priority's JetStream counters at one instant.
type queueCounters struct {
	pending     uint64
	ackPending  int
	redelivered int
	waiting     int
	paused      bool
	left        uint64 // jobs removed from the stream since it was created
	deliveries  uint64 // consumer deliveries, redeliveries included
	firsts      uint64 // delivered stream sequence: first deliveries
	deadLetters uint64 // JOBS_DLQ messages on dlq.<priority>.>
}

type queueSample struct {
	at     time.Time
	queues map[job.Priority]queueCounters
	dlq    uint64
	dlqOK  bool
}

// queueRates is the ring of samples.
type queueRates struct {
	mu      sync.Mutex
	samples []queueSample // oldest first, spanning at most uiRateWindow
}

func newQueueRates() *queueRates { return &queueRates{} }

// sample returns the samples of the window, taking a new one through js if the newest is older
// than uiSampleEvery. Concurrent viewers share one reading.
func (r *queueRates) sample(ctx context.Context, js jetstream.JetStream, now time.Time) ([]queueSample, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.samples); n > 0 && now.Sub(r.samples[n-1].at) < uiSampleEvery {
		return append([]queueSample(nil), r.samples...), nil
	}
	ctx, cancel := context.WithTimeout(ctx, uiReadTimeout)
	defer cancel()
	s, err := readQueueSample(ctx, js)
	s.at = now
	if len(s.queues) > 0 {
		r.samples = append(r.samples, s)
	}
	drop := 0
	for drop < len(r.samples)-1 && now.Sub(r.samples[drop].at) > uiRateWindow {
		drop++
	}
	r.samples = append(r.samples[:0], r.samples[drop:]...)
	return append([]queueSample(nil), r.samples...), err
}

func readQueueSample(ctx context.Context, js jetstream.JetStream) (queueSample, error) {
	s := queueSample{queues: map[job.Priority]queueCounters{}}
	var errs []error
	for _, p := range job.Priorities {
		st, err := js.Stream(ctx, p.Stream())
		if err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", p.Stream(), err))
			continue
		}
		cons, err := js.Consumer(ctx, p.Stream(), job.ConsumerName)
		if err != nil {
			errs = append(errs, fmt.Errorf("consumer %s/%s: %w", p.Stream(), job.ConsumerName, err))
			continue
		}
		state, ci := st.CachedInfo().State, cons.CachedInfo()
		s.queues[p] = queueCounters{
			pending: ci.NumPending, ackPending: ci.NumAckPending, redelivered: ci.NumRedelivered, waiting: ci.NumWaiting,
			paused: ci.Paused, left: state.LastSeq - min(state.Msgs, state.LastSeq),
			deliveries: ci.Delivered.Consumer, firsts: ci.Delivered.Stream,
		}
	}
	dlq, err := js.Stream(ctx, job.DLQStream)
	if err == nil {
		var info *jetstream.StreamInfo
		info, err = dlq.Info(ctx, jetstream.WithSubjectFilter(job.DLQSubjects))
		if err == nil {
			s.dlq, s.dlqOK = info.State.Msgs, true
			for subject, n := range info.State.Subjects {
				for p, q := range s.queues {
					if strings.HasPrefix(subject, "dlq."+string(p)+".") {
						q.deadLetters += n
						s.queues[p] = q
					}
				}
			}
		}
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("stream %s: %w", job.DLQStream, err))
	}
	if err := errors.Join(errs...); err != nil {
		return s, fmt.Errorf("ui: read queues: %w", err)
	}
	return s, nil
}

// queueRow is one priority on the queues page.
type queueRow struct {
	Priority    string
	Stream      string
	Pending     uint64
	InFlight    int
	Redelivered int
	Consumers   int
	Paused      bool
	OldestAge   float64
	// Rates per minute over Window; nil until two samples exist.
	Done, Retries, DeadLettered *float64
	FailurePct                  *float64
}

type queuesViewUI struct {
	Queues      []queueRow
	DeadLetters *uint64
	Window      string
	Unavailable string
	ReadAt      time.Time
	Summary     string
}

func perMinute(delta float64, span time.Duration) *float64 {
	v := delta / span.Minutes()
	return &v
}

// positiveSum adds the increases of f between consecutive samples, ignoring decreases (a
// purge, a stream re-created).
func positiveSum(samples []queueSample, p job.Priority, f func(queueCounters) uint64) float64 {
	var sum float64
	for i := 1; i < len(samples); i++ {
		a, okA := samples[i-1].queues[p]
		b, okB := samples[i].queues[p]
		if okA && okB && f(b) > f(a) {
			sum += float64(f(b) - f(a))
		}
	}
	return sum
}

func (u *ui) queuesView(ctx context.Context) (queuesViewUI, error) {
	now := u.s.now()
	samples, err := u.rates.sample(ctx, u.s.js, now)
	if len(samples) == 0 {
		return queuesViewUI{}, err
	}
	view := queuesViewUI{Window: strconv.Itoa(int(uiRateWindow.Minutes())) + " minutes", ReadAt: samples[len(samples)-1].at}
	if err != nil {
		u.s.log.Warn("ui: reading queues", "err", err)
		view.Unavailable = "Some queues could not be read just now; the figures shown are the last ones read."
	}
	oldest := map[job.Priority]float64{}
	if u.s.queueStats != nil {
		for _, q := range u.s.queueStats.Read(ctx).Queues {
			if !q.OldestPending.IsZero() {
				oldest[q.Priority] = max(now.Sub(q.OldestPending).Seconds(), 0)
			}
		}
	}
	last := samples[len(samples)-1]
	span := last.at.Sub(samples[0].at)
	var pending uint64
	var inFlight int
	for _, p := range job.Priorities {
		q, ok := last.queues[p]
		if !ok {
			continue
		}
		row := queueRow{
			Priority: string(p), Stream: p.Stream(), Pending: q.pending, InFlight: q.ackPending, Redelivered: q.redelivered,
			Consumers: q.waiting, Paused: q.paused, OldestAge: oldest[p],
		}
		if len(samples) > 1 && span >= uiSampleEvery {
			done := positiveSum(samples, p, func(c queueCounters) uint64 { return c.left })
			retries := positiveSum(samples, p, func(c queueCounters) uint64 { return c.deliveries }) -
				positiveSum(samples, p, func(c queueCounters) uint64 { return c.firsts })
			dead := positiveSum(samples, p, func(c queueCounters) uint64 { return c.deadLetters })
			row.Done, row.Retries, row.DeadLettered = perMinute(done, span), perMinute(max(retries, 0), span), perMinute(dead, span)
			if done > 0 {
				pct := min(dead/done*100, 100)
				row.FailurePct = &pct
			}
		}
		pending += q.pending
		inFlight += q.ackPending
		view.Queues = append(view.Queues, row)
	}
	if last.dlqOK {
		n := last.dlq
		view.DeadLetters = &n
	}
	view.Summary = fmt.Sprintf("%d pending, %d in flight", pending, inFlight)
	if view.DeadLetters != nil {
		view.Summary += fmt.Sprintf(", %d dead letters", *view.DeadLetters)
	}
	return view, nil
}

func (u *ui) queuesPage(c *gin.Context) {
	view, err := u.queuesView(c.Request.Context())
	if err != nil {
		u.s.log.Error("ui: queues", "err", err)
		u.fail(c, errUnavailable)
		return
	}
	u.render(c, http.StatusOK, "queues", authOf(c), view)
}
