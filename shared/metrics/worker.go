package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quirehq/quire/shared/job"
)

// Outcome is how one attempt at a job ended, as reported to [Worker.JobFinished].
type Outcome int

// The outcomes of an attempt.
const (
	// OutcomeSucceeded: the job's results are committed and the message acknowledged.
	OutcomeSucceeded Outcome = iota + 1
	// OutcomeRetried: the attempt failed and the job will be delivered again after a backoff.
	OutcomeRetried
	// OutcomeDeadLettered: the attempt failed and the job was moved to the dead-letter stream
	// (a permanent error, or the last attempt).
	OutcomeDeadLettered
	// OutcomeCancelled: the task was cancelled while it ran.
	OutcomeCancelled
	// OutcomeReleased: the worker handed the job back unfinished (shutdown); it is delivered
	// again and no outcome counter moves.
	OutcomeReleased
)

// The pipeline stages timed by quire_job_stage_duration_seconds.
const (
	StageRead    = "read" // the upload's bytes from the object store, or the page from its site
	StageExtract = "extract"
	StageChunk   = "chunk"
	StageEmbed   = "embed"
	StageStore   = "store"
)

var stages = []string{StageRead, StageExtract, StageChunk, StageEmbed, StageStore}

// jobDurationBuckets span a small web page (well under a second) to a large PDF with many
// embedding batches (tens of minutes).
var jobDurationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}

// stageDurationBuckets span a text chunking pass (milliseconds) to a slow embedding run (minutes).
var stageDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// Worker holds the worker-service's collectors. Use its methods, which keep related series
// consistent (an attempt that ends in a retry counts as failed and as retried); the collectors
// are exported for tests and for anything the methods do not cover.
//
// Label values: queue is a priority name (high, medium, low), kind a job kind (document, webpage,
// crawl), stage one of the Stage constants, provider the EMBEDDINGS_PROVIDER value.
type Worker struct {
	// JobsStarted counts attempts begun (quire_jobs_started_total{queue,kind}).
	JobsStarted *prometheus.CounterVec
	// JobsSucceeded counts attempts that completed (quire_jobs_succeeded_total{queue,kind}).
	JobsSucceeded *prometheus.CounterVec
	// JobsFailed counts attempts that failed, whether retried or dead-lettered
	// (quire_jobs_failed_total{queue,kind}).
	JobsFailed *prometheus.CounterVec
	// JobsRetried counts failed attempts scheduled for another try (quire_jobs_retried_total{queue,kind}).
	JobsRetried *prometheus.CounterVec
	// JobsDeadLettered counts jobs moved to JOBS_DLQ (quire_jobs_dead_lettered_total{queue,kind}).
	JobsDeadLettered *prometheus.CounterVec
	// JobsCancelled counts attempts stopped by a cancellation (quire_jobs_cancelled_total{queue,kind}).
	JobsCancelled *prometheus.CounterVec
	// JobDuration observes the wall time of every attempt that ran, whatever its outcome
	// (quire_job_duration_seconds{queue,kind}).
	JobDuration *prometheus.HistogramVec
	// StageDuration observes each pipeline stage of a job (quire_job_stage_duration_seconds{stage}).
	StageDuration *prometheus.HistogramVec
	// JobsInFlight is the number of attempts running now in this process (quire_jobs_in_flight{queue}).
	JobsInFlight *prometheus.GaugeVec
	// EmbeddingsRequests counts calls to the embeddings provider (quire_embeddings_requests_total{provider}).
	EmbeddingsRequests *prometheus.CounterVec
	// EmbeddingsTokens counts input tokens sent to the provider (quire_embeddings_tokens_total{provider}).
	EmbeddingsTokens *prometheus.CounterVec
	// EmbeddingsErrors counts provider calls that failed (quire_embeddings_errors_total{provider}).
	EmbeddingsErrors *prometheus.CounterVec
}

// NewWorker creates the worker collectors and registers them on reg (nil: not registered, the
// collectors still count). Series for every priority × kind and every stage exist from the
// start with value zero. It fails if reg already holds a collector of the same name.
func NewWorker(reg prometheus.Registerer) (*Worker, error) {
	jobCounter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: name, Help: help,
		}, []string{labelQueue, labelKind})
	}
	providerCounter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: name, Help: help,
		}, []string{labelProvider})
	}
	w := &Worker{
		JobsStarted:      jobCounter("jobs_started_total", "Job attempts started."),
		JobsSucceeded:    jobCounter("jobs_succeeded_total", "Job attempts that completed and were acknowledged."),
		JobsFailed:       jobCounter("jobs_failed_total", "Job attempts that failed (then retried or dead-lettered)."),
		JobsRetried:      jobCounter("jobs_retried_total", "Failed job attempts scheduled for another try after a backoff."),
		JobsDeadLettered: jobCounter("jobs_dead_lettered_total", "Jobs moved to the dead-letter stream JOBS_DLQ."),
		JobsCancelled:    jobCounter("jobs_cancelled_total", "Job attempts stopped because the task was cancelled."),
		JobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "job_duration_seconds",
			Help:    "Wall time of a job attempt, whatever its outcome.",
			Buckets: jobDurationBuckets,
		}, []string{labelQueue, labelKind}),
		StageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "job_stage_duration_seconds",
			Help:    "Wall time of one pipeline stage (read, extract, chunk, embed, store) of a job.",
			Buckets: stageDurationBuckets,
		}, []string{labelStage}),
		JobsInFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "jobs_in_flight",
			Help: "Job attempts running now in this worker process.",
		}, []string{labelQueue}),
		EmbeddingsRequests: providerCounter("embeddings_requests_total", "Requests made to the embeddings provider."),
		EmbeddingsTokens:   providerCounter("embeddings_tokens_total", "Input tokens sent to the embeddings provider."),
		EmbeddingsErrors:   providerCounter("embeddings_errors_total", "Requests to the embeddings provider that failed."),
	}
	for _, p := range job.Priorities {
		q := string(p)
		w.JobsInFlight.WithLabelValues(q)
		for _, k := range kinds {
			for _, c := range []*prometheus.CounterVec{w.JobsStarted, w.JobsSucceeded, w.JobsFailed, w.JobsRetried, w.JobsDeadLettered, w.JobsCancelled} {
				c.WithLabelValues(q, string(k))
			}
			w.JobDuration.WithLabelValues(q, string(k))
		}
	}
	for _, s := range stages {
		w.StageDuration.WithLabelValues(s)
	}
	err := register(reg, "worker",
		w.JobsStarted, w.JobsSucceeded, w.JobsFailed, w.JobsRetried, w.JobsDeadLettered, w.JobsCancelled,
		w.JobDuration, w.StageDuration, w.JobsInFlight,
		w.EmbeddingsRequests, w.EmbeddingsTokens, w.EmbeddingsErrors)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// JobStarted records the start of an attempt: it counts it and raises the queue's in-flight
// gauge. Every call must be matched by one [Worker.JobFinished] with the same queue and kind.
func (w *Worker) JobStarted(queue, kind string) {
	w.JobsStarted.WithLabelValues(queue, kind).Inc()
	w.JobsInFlight.WithLabelValues(queue).Inc()
}

// JobFinished records the end of an attempt begun with [Worker.JobStarted]: it lowers the
// in-flight gauge, observes d in the duration histogram and counts the outcome. A retried or
// dead-lettered outcome also counts as a failed attempt; a released job moves no outcome counter.
func (w *Worker) JobFinished(queue, kind string, outcome Outcome, d time.Duration) {
	w.JobsInFlight.WithLabelValues(queue).Dec()
	w.JobDuration.WithLabelValues(queue, kind).Observe(d.Seconds())
	switch outcome {
	case OutcomeSucceeded:
		w.JobsSucceeded.WithLabelValues(queue, kind).Inc()
	case OutcomeRetried:
		w.JobsFailed.WithLabelValues(queue, kind).Inc()
		w.JobsRetried.WithLabelValues(queue, kind).Inc()
	case OutcomeDeadLettered:
		w.JobsFailed.WithLabelValues(queue, kind).Inc()
		w.JobsDeadLettered.WithLabelValues(queue, kind).Inc()
	case OutcomeCancelled:
		w.JobsCancelled.WithLabelValues(queue, kind).Inc()
	}
}

// DeadLettered counts a job moved to the dead-letter stream without an attempt in this process,
// such as one whose deliveries were all spent by workers that died ("worker lost"). Attempts
// that end in the DLQ are counted by [Worker.JobFinished] instead.
func (w *Worker) DeadLettered(queue, kind string) {
	w.JobsDeadLettered.WithLabelValues(queue, kind).Inc()
}

// Cancelled counts a job dropped at pickup because its task was cancelled while queued.
// A cancellation during an attempt is counted by [Worker.JobFinished] instead.
func (w *Worker) Cancelled(queue, kind string) {
	w.JobsCancelled.WithLabelValues(queue, kind).Inc()
}

// ObserveStage records that a pipeline stage (StageRead, StageExtract, StageChunk, StageEmbed, StageStore)
// took d.
func (w *Worker) ObserveStage(stage string, d time.Duration) {
	w.StageDuration.WithLabelValues(stage).Observe(d.Seconds())
}

// EmbeddingRequest records one request to the embeddings provider carrying tokens input tokens;
// a non-nil err also counts an error. Tokens are counted whether or not the request succeeded,
// since a failed request may still be billed.
func (w *Worker) EmbeddingRequest(provider string, tokens int, err error) {
	w.EmbeddingsRequests.WithLabelValues(provider).Inc()
	if tokens > 0 {
		w.EmbeddingsTokens.WithLabelValues(provider).Add(float64(tokens))
	}
	if err != nil {
		w.EmbeddingsErrors.WithLabelValues(provider).Inc()
	}
}
