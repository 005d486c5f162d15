package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/metrics"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// newMetrics returns the worker process's registry (Go runtime and process collectors, the job,
// stage and embeddings collectors, and queue depth of the queues in slots read from js) with
// its job collectors.
func newMetrics(js metrics.StreamLookup, slots map[job.Priority]int, log *slog.Logger) (*prometheus.Registry, *metrics.Worker, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, nil, err
	}
	wm, err := metrics.NewWorker(reg)
	if err != nil {
		return nil, nil, err
	}
	var served []job.Priority
	for _, p := range job.Priorities {
		if _, ok := slots[p]; ok {
			served = append(served, p)
		}
	}
	qc, err := metrics.NewQueueCollector(js, metrics.QueueCollectorConfig{Priorities: served, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	if err := reg.Register(qc); err != nil {
		return nil, nil, err
	}
	return reg, wm, nil
}

// withMetrics serves reg at GET /metrics and everything else with h.
func withMetrics(h http.Handler, reg prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", h)
	return mux
}

// jobObserver feeds the runtime's job events to the job collectors. It implements
// worker.Observer.
type jobObserver struct{ m *metrics.Worker }

func (o jobObserver) JobStarted(q job.Priority, k job.Kind) {
	o.m.JobStarted(string(q), string(k))
}

func (o jobObserver) JobFinished(q job.Priority, k job.Kind, outcome worker.Outcome, d time.Duration) {
	o.m.JobFinished(string(q), string(k), outcome, d)
}

func (o jobObserver) JobSettled(q job.Priority, k job.Kind, outcome worker.Outcome) {
	switch outcome {
	case worker.OutcomeCancelled:
		o.m.Cancelled(string(q), string(k))
	case worker.OutcomeDeadLettered:
		o.m.DeadLettered(string(q), string(k))
	}
}

// stageObserver feeds the pipeline's stage timings to quire_job_stage_duration_seconds. It
// implements ingest.StageObserver.
type stageObserver struct{ m *metrics.Worker }

func (o stageObserver) StageDone(stage string, d time.Duration) { o.m.ObserveStage(stage, d) }

// tokenCounter counts the tokens of one input text.
type tokenCounter interface {
	Count(s string) int
}

// meteredEmbedder counts every call to the embeddings provider in
// quire_embeddings_requests_total, its input tokens (as count counts them) in
// quire_embeddings_tokens_total and failed calls in quire_embeddings_errors_total. A call is
// one Embed; a provider may split it into several HTTP requests or retry inside it.
type meteredEmbedder struct {
	embed.Embedder
	provider string
	count    tokenCounter
	m        *metrics.Worker
}

// meterEmbedder wraps e so that its calls are counted under provider (EMBEDDINGS_PROVIDER).
func meterEmbedder(e embed.Embedder, provider string, count tokenCounter, m *metrics.Worker) embed.Embedder {
	return &meteredEmbedder{Embedder: e, provider: provider, count: count, m: m}
}

func (e *meteredEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	tokens := 0
	for _, t := range texts {
		tokens += e.count.Count(t)
	}
	return e.EmbedCounted(ctx, texts, tokens)
}

// EmbedCounted is Embed of texts holding tokens tokens (ingest.CountedEmbedder): chunks carry
// their exact count, so the pipeline's calls are not counted twice.
func (e *meteredEmbedder) EmbedCounted(ctx context.Context, texts []string, tokens int) ([][]float32, error) {
	vecs, err := e.Embedder.Embed(ctx, texts)
	perr := err
	if ctx.Err() != nil {
		perr = nil // the job was cancelled or timed out: not the provider's failure
	}
	e.m.EmbeddingRequest(e.provider, tokens, perr)
	return vecs, err
}
