package metrics_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/metrics"
	"github.com/quirehq/quire/shared/quiretest"
)

// createQueues creates the job streams of ps with their durable pull consumer `workers`, and
// the dead-letter stream, as the services do at start-up.
func createQueues(t *testing.T, js jetstream.JetStream, ps ...job.Priority) {
	t.Helper()
	ctx := t.Context()
	for _, p := range ps {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name: p.Stream(), Subjects: []string{p.Subjects()},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
			Duplicates: 2 * time.Minute,
		}); err != nil {
			t.Fatalf("create stream %s: %v", p.Stream(), err)
		}
		if _, err := js.CreateConsumer(ctx, p.Stream(), jetstream.ConsumerConfig{
			Durable: job.ConsumerName, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
		}); err != nil {
			t.Fatalf("create consumer %s/%s: %v", p.Stream(), job.ConsumerName, err)
		}
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: job.DLQStream, Subjects: []string{job.DLQSubjects},
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatalf("create stream %s: %v", job.DLQStream, err)
	}
}

func publish(t *testing.T, js jetstream.JetStream, subject string, n int) {
	t.Helper()
	for i := range n {
		if _, err := js.Publish(t.Context(), subject, []byte("job")); err != nil {
			t.Fatalf("publish %d to %s: %v", i, subject, err)
		}
	}
}

// fetchOne pulls one message from the queue's consumer without acknowledging it.
func fetchOne(t *testing.T, js jetstream.JetStream, p job.Priority) jetstream.Msg {
	t.Helper()
	cons, err := js.Consumer(t.Context(), p.Stream(), job.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("fetch from %s: %v", p.Stream(), err)
	}
	for msg := range batch.Messages() {
		return msg
	}
	t.Fatalf("fetch from %s: no message (%v)", p.Stream(), batch.Error())
	return nil
}

// clock is a settable time source for the collector's cache and age computations.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()) }

func newQueueCollector(t *testing.T, js metrics.StreamLookup, cfg metrics.QueueCollectorConfig) (*metrics.QueueCollector, *prometheus.Registry) {
	t.Helper()
	qc, err := metrics.NewQueueCollector(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(qc); err != nil {
		t.Fatal(err)
	}
	return qc, reg
}

func TestQueueCollectorReportsJetStreamState(t *testing.T) {
	t.Parallel()
	_, js := runJetStream(t)
	ctx := t.Context()
	createQueues(t, js, job.Priorities...)

	before := time.Now()
	// high: 3 jobs, one of them taken by a worker and still running.
	publish(t, js, job.Subject(job.PriorityHigh, job.KindDocument), 3)
	after := time.Now()
	fetchOne(t, js, job.PriorityHigh)
	// low: 2 jobs; one delivered, failed (nak) and delivered again, so it counts as redelivered;
	// then the queue is paused.
	publish(t, js, job.Subject(job.PriorityLow, job.KindCrawl), 2)
	if err := fetchOne(t, js, job.PriorityLow).Nak(); err != nil {
		t.Fatal(err)
	}
	fetchOne(t, js, job.PriorityLow)
	if _, err := js.PauseConsumer(ctx, job.PriorityLow.Stream(), job.ConsumerName, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// medium: empty, with one idle worker waiting on a pull request.
	medium, err := js.Consumer(ctx, job.PriorityMedium.Stream(), job.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	// The pull request stays open until it expires or the connection closes at the test's end.
	if _, err := medium.Fetch(1, jetstream.FetchMaxWait(time.Minute)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a waiting pull request on JOBS_MEDIUM", func() bool {
		info, err := medium.Info(ctx)
		return err == nil && info.NumWaiting == 1
	})
	// Two dead letters.
	publish(t, js, job.DLQSubject(job.PriorityHigh, job.KindDocument), 1)
	publish(t, js, job.DLQSubject(job.PriorityLow, job.KindCrawl), 1)

	// The collector's clock runs an hour ahead, so the oldest pending job on high is an hour old
	// give or take the time the publishing took.
	clk := newClock(after.Add(time.Hour))
	_, reg := newQueueCollector(t, js, metrics.QueueCollectorConfig{Now: clk.now})
	mfs := scrape(t, reg)

	want := map[string]map[string]float64{
		"quire_queue_pending":     {"queue=high": 2, "queue=medium": 0, "queue=low": 1},
		"quire_queue_ack_pending": {"queue=high": 1, "queue=medium": 0, "queue=low": 1},
		"quire_queue_redelivered": {"queue=high": 0, "queue=medium": 0, "queue=low": 1},
		"quire_queue_consumers":   {"queue=high": 0, "queue=medium": 1, "queue=low": 0},
		"quire_queue_paused":      {"queue=high": 0, "queue=medium": 0, "queue=low": 1},
		"quire_dlq_messages":      {"": 2},
		"quire_queue_stats_up":    {"": 1},
	}
	for name, w := range want {
		if got := values(mfs[name]); !maps.Equal(got, w) {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
	ages := values(mfs["quire_queue_oldest_pending_age_seconds"])
	if lo, hi := time.Hour.Seconds(), time.Hour.Seconds()+after.Sub(before).Seconds(); ages["queue=high"] < lo || ages["queue=high"] > hi {
		t.Errorf("oldest pending age on high = %vs, want within [%v, %v]", ages["queue=high"], lo, hi)
	}
	if ages["queue=medium"] != 0 {
		t.Errorf("oldest pending age on empty medium = %vs, want 0", ages["queue=medium"])
	}
	// low's only undelivered job was published after high's, so it is younger than an hour.
	if age := ages["queue=low"]; age <= 0 || age > time.Hour.Seconds() {
		t.Errorf("oldest pending age on low = %vs, want within (0, 3600]", age)
	}

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestQueueCollectorOldestPendingSkipsDeliveredJobs(t *testing.T) {
	t.Parallel()
	_, js := runJetStream(t)
	createQueues(t, js, job.PriorityHigh)
	publish(t, js, job.Subject(job.PriorityHigh, job.KindWebpage), 1)
	time.Sleep(10 * time.Millisecond)
	second := time.Now()
	publish(t, js, job.Subject(job.PriorityHigh, job.KindWebpage), 1)
	// The first job is delivered and finished; the second is still waiting.
	if err := fetchOne(t, js, job.PriorityHigh).Ack(); err != nil {
		t.Fatal(err)
	}
	clk := newClock(second.Add(30 * time.Minute))
	_, reg := newQueueCollector(t, js, metrics.QueueCollectorConfig{Priorities: []job.Priority{job.PriorityHigh}, Now: clk.now})
	ages := values(scrape(t, reg)["quire_queue_oldest_pending_age_seconds"])
	// Only the second job is pending; its age is at most 30 minutes on the collector's clock.
	if age := ages["queue=high"]; age > (30*time.Minute).Seconds() || age < (30*time.Minute-time.Second).Seconds() {
		t.Errorf("oldest pending age = %vs, want the second job's age, just under 1800s", age)
	}
}

// A job waiting out a retry backoff (NakWithDelay) stays ack-pending, not pending: the queue
// depth alerts and KEDA's lag (pending + ack pending) both rely on that.
func TestQueueCollectorCountsBackoffAsAckPending(t *testing.T) {
	t.Parallel()
	_, js := runJetStream(t)
	createQueues(t, js, job.PriorityHigh)
	publish(t, js, job.Subject(job.PriorityHigh, job.KindDocument), 2)
	if err := fetchOne(t, js, job.PriorityHigh).NakWithDelay(time.Minute); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(t.Context(), job.PriorityHigh.Stream(), job.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the nak to reach the server", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumAckPending == 1 && info.NumPending == 1
	})
	_, reg := newQueueCollector(t, js, metrics.QueueCollectorConfig{Priorities: []job.Priority{job.PriorityHigh}})
	mfs := scrape(t, reg)
	for name, want := range map[string]float64{"quire_queue_pending": 1, "quire_queue_ack_pending": 1, "quire_queue_redelivered": 0} {
		if got := values(mfs[name])["queue=high"]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func TestQueueCollectorCachesReadings(t *testing.T) {
	t.Parallel()
	_, js := runJetStream(t)
	createQueues(t, js, job.Priorities...)
	publish(t, js, job.Subject(job.PriorityMedium, job.KindDocument), 3)
	quiretest.WaitPending(t, js, job.PriorityMedium, 3, 5*time.Second)

	clk := newClock(time.Now())
	_, reg := newQueueCollector(t, js, metrics.QueueCollectorConfig{CacheTTL: 10 * time.Second, Now: clk.now})
	pending := func() float64 { return values(scrape(t, reg)["quire_queue_pending"])["queue=medium"] }
	if got := pending(); got != 3 {
		t.Fatalf("pending = %v, want 3", got)
	}
	publish(t, js, job.Subject(job.PriorityMedium, job.KindDocument), 2)
	quiretest.WaitPending(t, js, job.PriorityMedium, 5, 5*time.Second)
	clk.set(clk.now().Add(9 * time.Second))
	if got := pending(); got != 3 {
		t.Errorf("pending within the cache TTL = %v, want the cached 3", got)
	}
	clk.set(clk.now().Add(time.Second))
	if got := pending(); got != 5 {
		t.Errorf("pending once the TTL has passed = %v, want 5", got)
	}
}

func TestQueueCollectorMissingStream(t *testing.T) {
	t.Parallel()
	_, js := runJetStream(t)
	// Only JOBS_HIGH (and the DLQ) exist, as before a worker for medium/low ever started.
	createQueues(t, js, job.PriorityHigh)
	publish(t, js, job.Subject(job.PriorityHigh, job.KindDocument), 1)
	quiretest.WaitPending(t, js, job.PriorityHigh, 1, 5*time.Second)

	qc, reg := newQueueCollector(t, js, metrics.QueueCollectorConfig{})
	r := qc.Read(t.Context())
	if !errors.Is(r.Err, jetstream.ErrStreamNotFound) {
		t.Errorf("Read: Err = %v, want one wrapping jetstream.ErrStreamNotFound", r.Err)
	}
	if len(r.Queues) != 1 || r.Queues[0].Priority != job.PriorityHigh || r.Queues[0].Pending != 1 || r.Queues[0].OldestPending.IsZero() {
		t.Errorf("Read: Queues = %+v, want only high with one pending job", r.Queues)
	}
	if !r.DLQRead || r.DLQMessages != 0 {
		t.Errorf("Read: DLQ read %v with %d messages, want read with 0", r.DLQRead, r.DLQMessages)
	}
	mfs := scrape(t, reg)
	if got, want := values(mfs["quire_queue_pending"]), map[string]float64{"queue=high": 1}; !maps.Equal(got, want) {
		t.Errorf("quire_queue_pending = %v, want only the readable queue %v", got, want)
	}
	if got := values(mfs["quire_queue_stats_up"])[""]; got != 0 {
		t.Errorf("quire_queue_stats_up = %v, want 0 while two queues cannot be read", got)
	}
	if got := values(mfs["quire_dlq_messages"]); !maps.Equal(got, map[string]float64{"": 0}) {
		t.Errorf("quire_dlq_messages = %v, want 0", got)
	}
}

func TestQueueCollectorServerDown(t *testing.T) {
	t.Parallel()
	srv, js := runJetStream(t)
	createQueues(t, js, job.Priorities...)
	publish(t, js, job.Subject(job.PriorityHigh, job.KindDocument), 1)

	clk := newClock(time.Now())
	_, reg := newQueueCollector(t, js, metrics.QueueCollectorConfig{Timeout: 500 * time.Millisecond, Now: clk.now})
	// Other collectors on the same registry keep being scraped while NATS is down.
	w, err := metrics.NewWorker(reg)
	if err != nil {
		t.Fatal(err)
	}
	w.JobStarted("high", "document")
	if got := values(scrape(t, reg)["quire_queue_stats_up"])[""]; got != 1 {
		t.Fatalf("quire_queue_stats_up = %v before the server stops, want 1", got)
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	clk.set(clk.now().Add(time.Minute))
	start := time.Now()
	mfs := scrape(t, reg)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("scrape with NATS down took %v, want it bounded by the collector timeout", took)
	}
	if got := values(mfs["quire_queue_stats_up"])[""]; got != 0 {
		t.Errorf("quire_queue_stats_up = %v with NATS down, want 0", got)
	}
	for _, name := range []string{"quire_queue_pending", "quire_queue_ack_pending", "quire_dlq_messages"} {
		if mf := mfs[name]; mf != nil {
			t.Errorf("%s still reported with NATS down: %v", name, values(mf))
		}
	}
	if got := values(mfs["quire_jobs_in_flight"])["queue=high"]; got != 1 {
		t.Errorf("quire_jobs_in_flight{queue=high} = %v with NATS down, want 1", got)
	}
}

func TestQueueCollectorConfigValidation(t *testing.T) {
	t.Parallel()
	_, js := runJetStream(t)
	tests := []struct {
		name    string
		cfg     metrics.QueueCollectorConfig
		wantErr string
	}{
		{"defaults", metrics.QueueCollectorConfig{}, ""},
		{"unknown priority", metrics.QueueCollectorConfig{Priorities: []job.Priority{"urgent"}}, "invalid priority"},
		{"duplicate priority", metrics.QueueCollectorConfig{Priorities: []job.Priority{job.PriorityLow, job.PriorityLow}}, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := metrics.NewQueueCollector(js, tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("err = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
	if _, err := metrics.NewQueueCollector(nil, metrics.QueueCollectorConfig{}); err == nil {
		t.Error("NewQueueCollector(nil) succeeded, want an error")
	}
}

func TestAllSetsRegisterOnOneRegistry(t *testing.T) {
	t.Parallel()
	_, js := runJetStream(t)
	reg := prometheus.NewPedanticRegistry()
	if _, err := metrics.NewWorker(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.NewAPI(reg); err != nil {
		t.Fatal(err)
	}
	qc, err := metrics.NewQueueCollector(js, metrics.QueueCollectorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(qc); err != nil {
		t.Fatalf("register the queue collector beside the worker and API sets: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
