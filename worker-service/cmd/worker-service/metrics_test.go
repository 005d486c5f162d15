package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/pgtest"
	"github.com/quirehq/quire/shared/quiretest"
	"github.com/quirehq/quire/shared/taskstatus"
	"github.com/quirehq/quire/shared/upload"
	"github.com/quirehq/quire/worker-service/internal/chunk"
	"github.com/quirehq/quire/worker-service/internal/extract"
	"github.com/quirehq/quire/worker-service/internal/ingest"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// metricsEnv is a worker wired the way main wires it (registry, observers, metered embedder,
// /metrics beside /healthz and /readyz) on a real JetStream server and PostgreSQL.
type metricsEnv struct {
	js       jetstream.JetStream
	top      *jobqueue.Topology
	docs     *docstore.Store
	statuses *taskstatus.Store
	pub      *jobqueue.Publisher
	srv      *httptest.Server
}

func newMetricsEnv(t *testing.T, ackWait time.Duration) *metricsEnv {
	t.Helper()
	q := quiretest.Queue(t, jobqueue.Config{AckWait: ackWait, UpdateConsumers: true})
	return &metricsEnv{js: q.JS, top: q.Top, docs: quiretest.Store(t), statuses: q.Statuses, pub: q.Pub}
}

// start runs a worker serving the high queue with the document handler and extra handlers,
// serves its health and metrics endpoints, and returns a stop func (also run at cleanup).
func (e *metricsEnv) start(t *testing.T, cfg worker.Config, extra map[job.Kind]worker.Handler) (stop func()) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	slots := map[job.Priority]int{job.PriorityHigh: 2}
	reg, wm, err := newMetrics(e.js, slots, log)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := extract.New(t.Context(), extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ex.Close() })
	local, err := embed.NewLocal(0)
	if err != nil {
		t.Fatal(err)
	}
	chunking := chunk.Options{Size: 64}
	documents := &ingest.DocumentHandler{Indexer: &ingest.Indexer{
		Records: &ingest.Records{Docs: e.docs, Logger: log}, Chunking: chunking, BatchSize: 2, Stages: stageObserver{wm},
		Embedder: meterEmbedder(local, "local", chunking.WithDefaults().Counter, wm),
	}, Uploads: upload.New(upload.Config{}, upload.Deps{Objects: e.top.Uploads}), Extractor: ex}
	mux := worker.NewMux()
	if err := mux.Register(job.KindDocument, documents); err != nil {
		t.Fatal(err)
	}
	for k, h := range extra {
		if err := mux.Register(k, h); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Slots = slots
	cfg.FetchExpiry = 500 * time.Millisecond
	cfg.Retry = func(int) time.Duration { return 10 * time.Millisecond }
	w := worker.New(cfg, worker.Deps{
		JetStream: e.js, Statuses: e.statuses, Handler: mux, Logger: log,
		Observer: jobObserver{wm},
	})
	e.srv = httptest.NewServer(withMetrics(healthHandler(w, func() bool { return true }, e.docs), reg))
	t.Cleanup(e.srv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker Run: %v", err)
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(5 * time.Second)
	for !w.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("worker not ready within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return stop
}

// enqueueDocument does what the API does for an upload: stores the bytes and the document
// row, records the task status (state, normally PENDING) and publishes the job on high.
func (e *metricsEnv) enqueueDocument(t *testing.T, taskID, text string, state job.State) {
	t.Helper()
	ctx := t.Context()
	if _, err := e.top.Uploads.PutBytes(ctx, taskID, []byte(text)); err != nil {
		t.Fatal(err)
	}
	d := &docstore.Document{TenantID: "acme", AgentID: "7", Kind: job.KindDocument, Filename: taskID + ".txt",
		ContentType: "text/plain", SizeBytes: int64(len(text)), TaskID: taskID, Priority: string(job.PriorityHigh)}
	if err := e.docs.InsertDocument(ctx, d); err != nil {
		t.Fatal(err)
	}
	e.enqueue(t, &job.Job{TaskID: taskID, Kind: job.KindDocument, TenantID: "acme", AgentID: "7", DocumentID: d.ID,
		Priority: job.PriorityHigh, Object: taskID, Filename: d.Filename, ContentType: d.ContentType}, state)
}

func (e *metricsEnv) enqueue(t *testing.T, j *job.Job, state job.State) {
	t.Helper()
	st := &job.Status{TaskID: j.TaskID, State: state, Queue: j.Priority, Kind: j.Kind, TenantID: j.TenantID,
		AgentID: j.AgentID, DocumentID: j.DocumentID, Total: 100}
	if err := e.statuses.Create(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	if err := e.pub.Publish(t.Context(), j, j.TaskID); err != nil {
		t.Fatal(err)
	}
}

func (e *metricsEnv) waitState(t *testing.T, taskID string, state job.State) {
	t.Helper()
	quiretest.WaitState(t, e.statuses, taskID, state, 20*time.Second)
}

// scrape fetches /metrics as Prometheus does and parses it.
func (e *metricsEnv) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// waitValue polls /metrics until the series has want, and fails the test if it does not
// within 10s.
func (e *metricsEnv) waitValue(t *testing.T, name, labels string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, ok := quiretest.MetricValue(e.scrape(t), name, labels)
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s{%s} = %v (present %v), want %v", name, labels, got, ok, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetricsScrapeAfterRealJobs runs real jobs through a worker wired like main and checks
// what /metrics reports: attempts and their outcomes, the job and stage duration histograms,
// jobs in flight, embeddings calls, cancellations before start and worker-lost dead letters.
func TestMetricsScrapeAfterRealJobs(t *testing.T) {
	e := newMetricsEnv(t, 2*time.Second)

	// A job whose first delivery went to a worker that died: taken and never settled.
	e.enqueueDocument(t, "lost", "a job whose worker died\n", job.StatePending)
	dead, err := e.js.Consumer(t.Context(), "JOBS_HIGH", job.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := dead.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	taken := 0
	for range batch.Messages() {
		taken++
	}
	if taken != 1 {
		t.Fatalf("the dying worker took %d jobs, want 1", taken)
	}
	// It started the run before it died.
	tr, err := e.statuses.Track(t.Context(), "lost")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Update(t.Context(), func(st *job.Status) error {
		st.State, st.Attempts, st.Status = job.StateProgress, 1, "started"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A task cancelled while it was queued.
	e.enqueueDocument(t, "revoked", "never processed\n", job.StateRevoked)

	started, release := make(chan struct{}), make(chan struct{})
	blocking := worker.HandlerFunc(func(ctx context.Context, _ *job.Job) error {
		close(started)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	// MaxRetries 0: the redelivery of "lost" is past its attempts.
	e.start(t, worker.Config{MaxRetries: 0}, map[job.Kind]worker.Handler{job.KindWebpage: blocking})

	text := strings.Repeat("Quire turns documents into searchable chunks for agents. ", 40) + "\n\n" +
		strings.Repeat("Workers pull jobs from JetStream and store embeddings in PostgreSQL. ", 40)
	e.enqueueDocument(t, "doc", text, job.StatePending)
	e.waitState(t, "doc", job.StateSuccess)

	// A job in flight moves the gauge of its queue, and only while it runs.
	e.enqueue(t, &job.Job{TaskID: "page", Kind: job.KindWebpage, TenantID: "acme", AgentID: "7",
		Priority: job.PriorityHigh, URL: "https://example.com/"}, job.StatePending)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the webpage job did not start")
	}
	e.waitValue(t, "quire_jobs_in_flight", "queue=high", 1)
	close(release)
	e.waitState(t, "page", job.StateSuccess)
	e.waitValue(t, "quire_jobs_in_flight", "queue=high", 0)

	e.waitState(t, "lost", job.StateFailure)
	e.waitValue(t, "quire_jobs_dead_lettered_total", "kind=document,queue=high", 1)
	e.waitValue(t, "quire_jobs_cancelled_total", "kind=document,queue=high", 1)
	// The queue collector reports the worker's own queue, drained (once its 5s cache expires).
	e.waitValue(t, "quire_queue_pending", "queue=high", 0)
	e.waitValue(t, "quire_queue_ack_pending", "queue=high", 0)

	mfs := e.scrape(t)
	want := []struct {
		name, labels string
		value        float64
	}{
		// Only the two jobs that ran were attempts; the cancelled and the lost one were not.
		{"quire_jobs_started_total", "kind=document,queue=high", 1},
		{"quire_jobs_started_total", "kind=webpage,queue=high", 1},
		{"quire_jobs_succeeded_total", "kind=document,queue=high", 1},
		{"quire_jobs_succeeded_total", "kind=webpage,queue=high", 1},
		{"quire_jobs_failed_total", "kind=document,queue=high", 0},
		{"quire_jobs_retried_total", "kind=document,queue=high", 0},
		{"quire_job_duration_seconds", "kind=document,queue=high", 1},
		{"quire_job_duration_seconds", "kind=webpage,queue=high", 1},
		{"quire_jobs_in_flight", "queue=high", 0},
		{"quire_job_stage_duration_seconds", "stage=read", 1},
		{"quire_job_stage_duration_seconds", "stage=extract", 1},
		{"quire_job_stage_duration_seconds", "stage=chunk", 1},
		{"quire_job_stage_duration_seconds", "stage=embed", 1},
		{"quire_job_stage_duration_seconds", "stage=store", 1},
		{"quire_queue_paused", "queue=high", 0},
		{"quire_queue_stats_up", "", 1},
	}
	for _, w := range want {
		got, ok := quiretest.MetricValue(mfs, w.name, w.labels)
		if !ok || got != w.value {
			t.Errorf("%s{%s} = %v (present %v), want %v", w.name, w.labels, got, ok, w.value)
		}
	}
	// The document was embedded in batches of two chunks: more than one call, with tokens.
	if n, _ := quiretest.MetricValue(mfs, "quire_embeddings_requests_total", "provider=local"); n < 2 {
		t.Errorf("quire_embeddings_requests_total{provider=local} = %v, want at least 2", n)
	}
	// Its tokens are the stored chunks' exact counts, counted once.
	st, _, err := e.statuses.Get(t.Context(), "doc")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := e.docs.Chunks(t.Context(), "acme", st.DocumentID, -1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, r := range rows {
		stored += r.TokenCount
	}
	if n, _ := quiretest.MetricValue(mfs, "quire_embeddings_tokens_total", "provider=local"); stored < 100 || n != float64(stored) {
		t.Errorf("quire_embeddings_tokens_total{provider=local} = %v, want the %d tokens of the %d stored chunks", n, stored, len(rows))
	}
	if n, _ := quiretest.MetricValue(mfs, "quire_embeddings_errors_total", "provider=local"); n != 0 {
		t.Errorf("quire_embeddings_errors_total{provider=local} = %v, want 0", n)
	}
	// A worker of the high pool reports no other queue.
	if _, ok := quiretest.MetricValue(mfs, "quire_queue_pending", "queue=low"); ok {
		t.Error("a worker serving only high reports quire_queue_pending{queue=low}")
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if mfs[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// A paused queue leaves its workers ready: they are healthy, just idle.
func TestReadyWhileQueuePaused(t *testing.T) {
	e := newMetricsEnv(t, 30*time.Second)
	e.start(t, worker.Config{}, nil)
	if _, err := e.js.PauseConsumer(t.Context(), "JOBS_HIGH", job.ConsumerName, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.waitValue(t, "quire_queue_paused", "queue=high", 1)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s while the queue is paused = %d %q, want 200", path, resp.StatusCode, body)
		}
	}
}
