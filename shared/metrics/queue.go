package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quirehq/quire/shared/job"
)

// StreamLookup is the part of [jetstream.JetStream] a [QueueCollector] reads: stream and
// consumer lookups, each of which returns a handle carrying freshly fetched info. A
// jetstream.JetStream satisfies it.
type StreamLookup interface {
	Stream(ctx context.Context, stream string) (jetstream.Stream, error)
	Consumer(ctx context.Context, stream, consumer string) (jetstream.Consumer, error)
}

// QueueCollectorConfig configures a [QueueCollector]. Zero fields take the defaults documented
// on each field.
type QueueCollectorConfig struct {
	// Priorities whose job streams are reported. Default: every priority (job.Priorities).
	Priorities []job.Priority
	// CacheTTL is how long one reading of JetStream is reused by later scrapes, so that frequent
	// or concurrent scrapes (several Prometheus replicas, both services) cost the server one set
	// of requests per TTL. A failed reading is cached too, so a down server is not hammered.
	// Default 5s.
	CacheTTL time.Duration
	// Timeout bounds one reading of JetStream; a scrape waits at most this long for it.
	// Default 3s.
	Timeout time.Duration
	// Logger receives a warning when a reading fails. Default: discard.
	Logger *slog.Logger
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// WithDefaults returns c with zero fields set to their defaults.
func (c QueueCollectorConfig) WithDefaults() QueueCollectorConfig {
	if len(c.Priorities) == 0 {
		c.Priorities = job.Priorities
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = 5 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 3 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c QueueCollectorConfig) validate() error {
	seen := make(map[job.Priority]bool, len(c.Priorities))
	for _, p := range c.Priorities {
		if _, err := job.ParsePriority(string(p)); err != nil {
			return fmt.Errorf("metrics: queue collector: %w", err)
		}
		if seen[p] {
			return fmt.Errorf("metrics: queue collector: priority %q listed twice", p)
		}
		seen[p] = true
	}
	return nil
}

// QueueCollector is a [prometheus.Collector] that reports the depth of Quire's job queues from
// the JetStream info of the durable consumer `workers` on each job stream and of the stream
// JOBS_DLQ. Either service (or both) may register one; all instances report the same values.
//
// Series, labelled queue=<priority>:
//
//   - quire_queue_pending: num_pending, jobs not yet delivered to any worker.
//   - quire_queue_ack_pending: num_ack_pending, jobs delivered and not yet acknowledged: running,
//     or waiting out a retry backoff (a NakWithDelay keeps the job ack-pending).
//   - quire_queue_redelivered: num_redelivered, ack-pending jobs that were delivered more than once.
//   - quire_queue_consumers: for the pull consumer, num_waiting, the pull requests outstanding
//     now. A worker pulls only for free slots, so this counts idle capacity rather than worker
//     processes: 0 means no worker is asking for jobs (all busy, or none running). For a push
//     consumer it is 1 when a subscription is bound, else 0.
//   - quire_queue_paused: 1 while the consumer is paused (POST /api/v1/queues/{priority}/pause).
//   - quire_queue_oldest_pending_age_seconds: age of the oldest job not yet delivered (the first
//     message after the consumer's delivered stream sequence); 0 when nothing is pending.
//
// Unlabelled: quire_dlq_messages, the messages in JOBS_DLQ; quire_queue_stats_up, 1 when the
// last reading of every queue and of the DLQ succeeded, else 0. Series whose reading failed are
// left out of the scrape rather than reported stale; the rest of the scrape is unaffected.
//
// A reading costs one consumer-info request per queue, plus a stream-info and a message-get
// request for each queue with pending jobs, plus one stream-info request for the DLQ.
type QueueCollector struct {
	js  StreamLookup
	cfg QueueCollectorConfig

	pending, ackPending, redelivered, consumers, paused, oldestAge, dlq, up *prometheus.Desc

	mu   sync.Mutex // held while reading, so concurrent scrapes share one reading
	last *QueueReading
}

// QueueDepth is the state of one job queue as JetStream reports it for the consumer `workers`.
type QueueDepth struct {
	Priority job.Priority
	// Pending is num_pending: jobs not yet delivered to any worker.
	Pending uint64
	// AckPending is num_ack_pending: jobs delivered and not yet acknowledged (running, or waiting
	// out a retry backoff).
	AckPending int
	// Redelivered is num_redelivered: ack-pending jobs delivered more than once.
	Redelivered int
	// Waiting is num_waiting, the outstanding pull requests (workers with free slots); for a push
	// consumer, 1 when a subscription is bound.
	Waiting int
	// Paused reports a paused consumer.
	Paused bool
	// OldestPending is when the oldest undelivered job was stored; zero when none is pending.
	OldestPending time.Time
}

// QueueReading is one reading of every configured queue and of the dead-letter stream.
type QueueReading struct {
	// At is when the reading was taken (by the collector's clock).
	At time.Time
	// Queues holds the queues read successfully, in the configured order.
	Queues []QueueDepth
	// DLQMessages is the number of messages in JOBS_DLQ; valid when DLQRead.
	DLQMessages uint64
	DLQRead     bool
	// Err joins every failure of the reading; nil when every queue and the DLQ were read.
	Err error
}

// NewQueueCollector returns a collector reading queue depth through js. Register it on the
// process's registry; it reads JetStream only when scraped.
func NewQueueCollector(js StreamLookup, cfg QueueCollectorConfig) (*QueueCollector, error) {
	if js == nil {
		return nil, errors.New("metrics: queue collector: nil StreamLookup")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	queueDesc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", name), help, []string{labelQueue}, nil)
	}
	return &QueueCollector{
		js:          js,
		cfg:         cfg,
		pending:     queueDesc("pending", "Jobs waiting in the queue, not yet delivered to a worker (consumer num_pending)."),
		ackPending:  queueDesc("ack_pending", "Jobs delivered and not yet acknowledged: running or waiting out a retry backoff (consumer num_ack_pending)."),
		redelivered: queueDesc("redelivered", "Unacknowledged jobs delivered more than once (consumer num_redelivered)."),
		consumers:   queueDesc("consumers", "Outstanding pull requests on the queue's consumer (num_waiting): workers with free slots asking for jobs."),
		paused:      queueDesc("paused", "1 while the queue's consumer is paused, else 0."),
		oldestAge:   queueDesc("oldest_pending_age_seconds", "Age of the oldest job not yet delivered to a worker; 0 when none is pending."),
		dlq:         prometheus.NewDesc(prometheus.BuildFQName(namespace, "dlq", "messages"), "Dead letters in the JOBS_DLQ stream.", nil, nil),
		up:          prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", "stats_up"), "1 if the last reading of every queue and of the DLQ from JetStream succeeded, else 0.", nil, nil),
	}, nil
}

// Describe implements [prometheus.Collector].
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.ackPending, c.redelivered, c.consumers, c.paused, c.oldestAge, c.dlq, c.up} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector]. It reads JetStream when the cached reading is older
// than CacheTTL, waiting at most Timeout.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.Read(context.Background())
	now := c.cfg.Now()
	for _, q := range r.Queues {
		label := string(q.Priority)
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(q.Pending), label)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(q.AckPending), label)
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(q.Redelivered), label)
		ch <- prometheus.MustNewConstMetric(c.consumers, prometheus.GaugeValue, float64(q.Waiting), label)
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, boolFloat(q.Paused), label)
		age := 0.0
		if !q.OldestPending.IsZero() {
			age = max(now.Sub(q.OldestPending).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(c.oldestAge, prometheus.GaugeValue, age, label)
	}
	if r.DLQRead {
		ch <- prometheus.MustNewConstMetric(c.dlq, prometheus.GaugeValue, float64(r.DLQMessages))
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, boolFloat(r.Err == nil))
}

// Read returns the latest reading of the queues, taking a new one when the cached reading is
// older than CacheTTL; concurrent callers share one reading. A new reading stops at ctx's
// deadline or after Timeout, whichever comes first. The result may be partial: Err says what
// could not be read. Callers must not modify it. Besides the metrics, it serves views such as
// GET /api/v1/queues.
func (c *QueueCollector) Read(ctx context.Context) *QueueReading {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	if c.last != nil && now.Sub(c.last.At) < c.cfg.CacheTTL {
		return c.last
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	r := c.read(ctx)
	if r.Err != nil {
		c.cfg.Logger.Warn("metrics: reading queue depth from JetStream", slog.Any("error", r.Err))
	}
	r.At = now
	c.last = r
	return r
}

// Invalidate drops the cached reading, so that the next [QueueCollector.Read] or scrape reads
// JetStream afresh. Call it after changing a queue (pausing or resuming it), so that views show
// the change at once rather than after CacheTTL.
func (c *QueueCollector) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = nil
}

// read takes one reading, reading every queue even when one fails.
func (c *QueueCollector) read(ctx context.Context) *QueueReading {
	r := &QueueReading{}
	var errs []error
	for _, p := range c.cfg.Priorities {
		q, err := c.readQueue(ctx, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.Queues = append(r.Queues, q)
	}
	if s, err := c.js.Stream(ctx, job.DLQStream); err != nil {
		errs = append(errs, fmt.Errorf("stream %s info: %w", job.DLQStream, err))
	} else {
		r.DLQMessages, r.DLQRead = s.CachedInfo().State.Msgs, true
	}
	r.Err = errors.Join(errs...)
	if r.Err != nil {
		r.Err = fmt.Errorf("metrics: read queues: %w", r.Err)
	}
	return r
}

func (c *QueueCollector) readQueue(ctx context.Context, p job.Priority) (QueueDepth, error) {
	stream := p.Stream()
	cons, err := c.js.Consumer(ctx, stream, job.ConsumerName)
	if err != nil {
		return QueueDepth{}, fmt.Errorf("consumer %s/%s info: %w", stream, job.ConsumerName, err)
	}
	info := cons.CachedInfo()
	q := QueueDepth{
		Priority:    p,
		Pending:     info.NumPending,
		AckPending:  info.NumAckPending,
		Redelivered: info.NumRedelivered,
		Waiting:     info.NumWaiting,
		Paused:      info.Paused,
	}
	if info.Config.DeliverSubject != "" {
		q.Waiting = 0
		if info.PushBound {
			q.Waiting = 1
		}
	}
	if info.NumPending == 0 {
		return q, nil
	}
	q.OldestPending, err = c.oldestUndelivered(ctx, stream, info)
	if err != nil {
		return QueueDepth{}, err
	}
	return q, nil
}

// oldestUndelivered returns the store time of the first message after the consumer's delivered
// stream sequence that matches its filter, or zero if there is none (it was removed meanwhile).
func (c *QueueCollector) oldestUndelivered(ctx context.Context, stream string, info *jetstream.ConsumerInfo) (time.Time, error) {
	s, err := c.js.Stream(ctx, stream)
	if err != nil {
		return time.Time{}, fmt.Errorf("stream %s info: %w", stream, err)
	}
	filter := info.Config.FilterSubject
	if filter == "" && len(info.Config.FilterSubjects) == 1 {
		filter = info.Config.FilterSubjects[0]
	}
	if filter == "" {
		// Several filters (or none): the first message after the delivered floor on any subject.
		// A work-queue stream has one consumer per subject, so this is still a job of this queue.
		filter = ">"
	}
	msg, err := s.GetMsg(ctx, info.Delivered.Stream+1, jetstream.WithGetMsgSubject(filter))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("stream %s: get first undelivered message after seq %d: %w", stream, info.Delivered.Stream, err)
	}
	return msg.Time, nil
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
