package metrics_test

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quirehq/quire/shared/metrics"
)

func TestWorkerSeriesExistFromStart(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	if _, err := metrics.NewWorker(reg); err != nil {
		t.Fatal(err)
	}
	// 3 priorities × 3 kinds for each of the six job counters and the duration histogram,
	// one in-flight gauge per priority, one stage histogram per stage.
	counts := map[string]int{
		"quire_jobs_started_total":         9,
		"quire_jobs_succeeded_total":       9,
		"quire_jobs_failed_total":          9,
		"quire_jobs_retried_total":         9,
		"quire_jobs_dead_lettered_total":   9,
		"quire_jobs_cancelled_total":       9,
		"quire_job_duration_seconds":       9,
		"quire_jobs_in_flight":             3,
		"quire_job_stage_duration_seconds": 5,
	}
	for name, want := range counts {
		got, err := testutil.GatherAndCount(reg, name)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: %d series at start, want %d", name, got, want)
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestWorkerOutcomes(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	w, err := metrics.NewWorker(reg)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := []metrics.Outcome{
		metrics.OutcomeSucceeded, metrics.OutcomeSucceeded, metrics.OutcomeRetried,
		metrics.OutcomeDeadLettered, metrics.OutcomeCancelled, metrics.OutcomeReleased,
	}
	for range outcomes {
		w.JobStarted("high", "document")
	}
	w.JobStarted("low", "crawl") // still running at scrape time
	for _, o := range outcomes {
		w.JobFinished("high", "document", o, 1500*time.Millisecond)
	}
	w.DeadLettered("medium", "webpage")
	w.Cancelled("medium", "webpage")

	want := map[string]map[string]float64{
		"quire_jobs_started_total":       {"kind=crawl,queue=low": 1, "kind=document,queue=high": 6},
		"quire_jobs_succeeded_total":     {"kind=document,queue=high": 2},
		"quire_jobs_failed_total":        {"kind=document,queue=high": 2},
		"quire_jobs_retried_total":       {"kind=document,queue=high": 1},
		"quire_jobs_dead_lettered_total": {"kind=document,queue=high": 1, "kind=webpage,queue=medium": 1},
		"quire_jobs_cancelled_total":     {"kind=document,queue=high": 1, "kind=webpage,queue=medium": 1},
		"quire_jobs_in_flight":           {"queue=low": 1},
	}
	for name, w := range want {
		if got := nonZero(t, reg, name); !maps.Equal(got, w) {
			t.Errorf("%s non-zero series = %v, want %v", name, got, w)
		}
	}

	// Every attempt that ran is timed, released ones included: six observations of 1.5s.
	if got := histogramCount(t, reg, "quire_job_duration_seconds", map[string]string{"queue": "high", "kind": "document"}); got != 6 {
		t.Errorf("quire_job_duration_seconds{high,document} count = %d, want 6", got)
	}
	if got := histogramSum(t, reg, "quire_job_duration_seconds", map[string]string{"queue": "high", "kind": "document"}); got != 9 {
		t.Errorf("quire_job_duration_seconds{high,document} sum = %v, want 9", got)
	}
}

func TestWorkerStagesAndEmbeddings(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	w, err := metrics.NewWorker(reg)
	if err != nil {
		t.Fatal(err)
	}
	w.ObserveStage(metrics.StageExtract, 200*time.Millisecond)
	w.ObserveStage(metrics.StageEmbed, 2*time.Second)
	w.ObserveStage(metrics.StageEmbed, 3*time.Second)
	w.EmbeddingRequest("openai", 1200, nil)
	w.EmbeddingRequest("openai", 800, errors.New("429 too many requests"))
	w.EmbeddingRequest("local", 50, nil)

	for stage, want := range map[string]uint64{"extract": 1, "chunk": 0, "embed": 2, "store": 0} {
		if got := histogramCount(t, reg, "quire_job_stage_duration_seconds", map[string]string{"stage": stage}); got != want {
			t.Errorf("stage %s: %d observations, want %d", stage, got, want)
		}
	}
	if got := histogramSum(t, reg, "quire_job_stage_duration_seconds", map[string]string{"stage": "embed"}); got != 5 {
		t.Errorf("embed stage sum = %v, want 5", got)
	}
	want := `
# HELP quire_embeddings_requests_total Requests made to the embeddings provider.
# TYPE quire_embeddings_requests_total counter
quire_embeddings_requests_total{provider="local"} 1
quire_embeddings_requests_total{provider="openai"} 2
# HELP quire_embeddings_tokens_total Input tokens sent to the embeddings provider.
# TYPE quire_embeddings_tokens_total counter
quire_embeddings_tokens_total{provider="local"} 50
quire_embeddings_tokens_total{provider="openai"} 2000
# HELP quire_embeddings_errors_total Requests to the embeddings provider that failed.
# TYPE quire_embeddings_errors_total counter
quire_embeddings_errors_total{provider="openai"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"quire_embeddings_requests_total", "quire_embeddings_tokens_total", "quire_embeddings_errors_total"); err != nil {
		t.Error(err)
	}
}

func TestNewWorkerTwiceOnOneRegistryFails(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	if _, err := metrics.NewWorker(reg); err != nil {
		t.Fatal(err)
	}
	_, err := metrics.NewWorker(reg)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Fatalf("second NewWorker on one registry: err = %v, want an AlreadyRegisteredError", err)
	}
}

func TestNilRegistererStillCounts(t *testing.T) {
	t.Parallel()
	w, err := metrics.NewWorker(nil)
	if err != nil {
		t.Fatal(err)
	}
	w.JobStarted("high", "webpage")
	if got := testutil.ToFloat64(w.JobsInFlight.WithLabelValues("high")); got != 1 {
		t.Errorf("in flight = %v, want 1", got)
	}
	a, err := metrics.NewAPI(nil)
	if err != nil {
		t.Fatal(err)
	}
	a.ObserveHTTP("/healthz", "GET", 200, time.Millisecond)
	if got := testutil.ToFloat64(a.HTTPRequests.WithLabelValues("/healthz", "GET", "200")); got != 1 {
		t.Errorf("requests = %v, want 1", got)
	}
}
