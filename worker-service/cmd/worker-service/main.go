// Command worker-service runs Quire's ingestion jobs from the JetStream job streams.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/quirehq/quire/shared/batch"
	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/logging"
	"github.com/quirehq/quire/shared/taskstatus"
	"github.com/quirehq/quire/shared/upload"
	"github.com/quirehq/quire/worker-service/internal/chunk"
	"github.com/quirehq/quire/worker-service/internal/extract"
	"github.com/quirehq/quire/worker-service/internal/ingest"
	"github.com/quirehq/quire/worker-service/internal/rollup"
	"github.com/quirehq/quire/worker-service/internal/webfetch"
	"github.com/quirehq/quire/worker-service/internal/webhook"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// processingMarkGather is how long the processing marks of first runs gather before one
// UPDATE writes them, and processed uploads before they are deleted together.
const processingMarkGather = 20 * time.Millisecond

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "worker-service:", err)
		os.Exit(1)
	}
}

// extractOptions turns the configuration into extraction options. An unset (or auto)
// OCR_ENGINE becomes tesseract when tesseract, pdftoppm and the OCR_LANGUAGES data are usable
// here, and off otherwise, logging why.
func extractOptions(cfg config, log *slog.Logger) extract.Options {
	o := extract.Options{
		PDFEngine: cfg.PDFEngine, Timeout: cfg.ExtractTimeout, MaxTextBytes: cfg.ExtractMaxText, MaxPages: cfg.ExtractMaxPages,
		PDFWorkers: cfg.PDFWorkers, PDFMemoryLimitMB: cfg.PDFMemoryLimitMB, CompilationCacheDir: cfg.WasmCacheDir,
		OCREngine: cfg.OCREngine, OCRLanguages: cfg.OCRLanguages, OCRPageTimeout: cfg.OCRPageTimeout, OCRDPI: cfg.OCRDPI,
	}
	if o.OCREngine == "" || o.OCREngine == "auto" {
		o.OCREngine = extract.OCRTesseract
		if err := extract.OCRAvailable(o); err != nil {
			o.OCREngine = extract.OCROff
			log.Info("ocr off: scanned pages and images will fail as needing OCR", "reason", err.Error())
		}
	}
	return o
}

func run(ctx context.Context) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, cfg.LogLevel, "worker-service")
	if err != nil {
		return err
	}
	slots, err := cfg.slots()
	if err != nil {
		return err
	}

	nc, js, top, err := jobqueue.Open(ctx, cfg.NATSURL, cfg.NATSCreds, "quire-worker", jobqueue.Config{
		Replicas: cfg.StreamReplicas, AckWait: cfg.AckWait, DLQMaxAge: cfg.DLQMaxAge, UpdateConsumers: true,
	}, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	docs, err := docstore.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer docs.Close()

	exOpts := extractOptions(cfg, log)
	ex, err := extract.New(ctx, exOpts)
	if err != nil {
		return fmt.Errorf("OCR_ENGINE=%s, PDF_ENGINE=%s: %w", exOpts.OCREngine, exOpts.PDFEngine, err)
	}
	log.Info("ocr", "engine", exOpts.OCREngine, "languages", cfg.OCRLanguages, "page_timeout", cfg.OCRPageTimeout.String(), "dpi", cfg.OCRDPI)
	defer func() { _ = ex.Close() }()
	// Chunks are counted with the embeddings model's tokenizer (cl100k_base for the local
	// provider and OpenAI's embedding models), compiled in: no network at run time.
	counter, err := chunk.NewCounter(cfg.EmbeddingsModel)
	if err != nil {
		return fmt.Errorf("EMBEDDINGS_MODEL: tokenizer: %w", err)
	}
	emb, err := newEmbedder(ctx, cfg, log)
	if err != nil {
		return err
	}
	if ok, reason := docs.VectorIndex(); !ok {
		log.Warn("pgvector unavailable: vector search is exact and reads every chunk of an agent", "reason", reason)
	} else if err := docs.EnsureVectorIndex(ctx, emb.Model(), emb.Dimensions()); err != nil {
		// The first document stored with the model tries again.
		log.Warn("vector index not created", "model", emb.Model(), "err", err)
	}
	reg, wm, err := newMetrics(js, slots, log)
	if err != nil {
		return err
	}
	statuses := taskstatus.New(top.Tasks, js, cfg.ResultTTL)
	// One fetcher and one per-host limiter for the process: concurrent crawls of a site and
	// the page jobs they fan out share its politeness budget.
	fetcher := webfetch.New(webfetch.Config{AllowPrivate: cfg.WebpageAllowPrivate})
	defer fetcher.CloseIdleConnections()
	hosts := webfetch.NewHostLimiter(webfetch.DefaultPerHost, webfetch.DefaultDelay)
	// Closed before docs (deferred after it): the last marks are written.
	records := &ingest.Records{Docs: docs, Logger: log,
		Processing: batch.NewIDs(docs.MarkProcessingMany, log, "mark documents processing", processingMarkGather)}
	defer records.Processing.Close(context.Background())
	chunking := cfg.chunking(counter)
	indexer := &ingest.Indexer{
		Records: records, Chunking: chunking, BatchSize: cfg.EmbeddingsBatchSize, Stages: stageObserver{wm},
		Embedder: meterEmbedder(emb, cfg.EmbeddingsProvider, chunking.WithDefaults().Counter, wm),
		NoUsage:  cfg.UsageMetering == "off",
	}
	uploads := upload.New(upload.Config{}, upload.Deps{Objects: top.Uploads, JetStream: js, Logger: log})
	documents := &ingest.DocumentHandler{Indexer: indexer, Uploads: uploads, Extractor: ex}
	documents.UploadDeletes = batch.New(uploads.DeleteMany, log, "delete processed uploads", processingMarkGather)
	defer documents.UploadDeletes.Close(context.Background())
	// The final outcomes of tasks reach their records (the tasks table) in batches, one UPDATE
	// per batch; a document's outcome is also written by the transaction that commits it.
	outcomes := batch.New(docs.FinishTasks, log, "record task outcomes", processingMarkGather)
	defer outcomes.Close(context.Background())
	mux := worker.NewMux()
	mux.Use(func(h worker.Handler) worker.Handler { return faultHook(cfg, log, h) })
	if err := errors.Join(
		mux.Register(job.KindDocument, documents),
		mux.Register(job.KindWebpage, &ingest.WebpageHandler{Indexer: indexer, Extractor: ex, Fetcher: fetcher, Hosts: hosts, Statuses: statuses}),
		mux.Register(job.KindCrawl, &ingest.CrawlHandler{Records: records, Statuses: statuses,
			Enqueuer: jobqueue.NewEnqueuer(jobqueue.EnqueuerDeps{Tasks: docs, Statuses: statuses, JetStream: js, Logger: log}),
			Crawler:  webfetch.NewCrawler(fetcher, webfetch.CrawlConfig{Limiter: hosts})}),
		mux.Register(job.KindReindex, &ingest.ReindexHandler{Indexer: indexer}),
		// Deliveries go through the fetcher's SSRF guard (WEBPAGE_ALLOW_PRIVATE lifts it) and back
		// off like every job (RETRY_BASE_DELAY, RETRY_MAX_DELAY), with more attempts.
		mux.Register(job.KindWebhook, &webhook.Handler{Secrets: docs, Poster: fetcher, Logger: log,
			BaseDelay: cfg.RetryBaseDelay, MaxDelay: cfg.RetryMaxDelay}),
		mux.Register(job.KindUsageRollup, &rollup.Handler{Store: docs, Logger: log}),
	); err != nil {
		return err
	}

	w := worker.New(worker.Config{
		Slots:            slots,
		MaxRetries:       cfg.MaxRetries,
		Retry:            worker.ExponentialBackoff(cfg.RetryBaseDelay, cfg.RetryMaxDelay, nil),
		JobTimeout:       cfg.JobTimeout,
		ShutdownTimeout:  cfg.ShutdownTimeout,
		ProgressInterval: cfg.ProgressInterval,
	}, worker.Deps{
		JetStream: js, Statuses: statuses,
		Handler: mux, Tasks: taskOutcomes{outcomes}, Logger: log,
		Observer: jobObserver{wm},
	})

	srv := &http.Server{Addr: cfg.MetricsAddr, Handler: withMetrics(healthHandler(w, nc.IsConnected, docs), reg), ReadHeaderTimeout: 5 * time.Second}
	srvErr := make(chan error, 1)
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			srvErr <- fmt.Errorf("metrics server on %s: %w", cfg.MetricsAddr, err)
		}
		close(srvErr)
	}()
	runErr := w.Run(ctx)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	return errors.Join(runErr, <-srvErr)
}

// taskOutcomes is the worker's TaskRecorder: it queues each outcome for the next batch.
type taskOutcomes struct {
	b *batch.Batcher[docstore.TaskOutcome]
}

func (t taskOutcomes) FinishTask(_ context.Context, taskID string, state job.State, attempts int, reason string) error {
	t.b.Add(docstore.TaskOutcome{TaskID: taskID, State: state, Attempts: attempts, Error: reason})
	return nil
}

// newEmbedder builds the process's one embedder: its rate limits hold for every job. The
// OpenAI-compatible provider counts tokens with the model's tokenizer to fill its batches.
func newEmbedder(ctx context.Context, cfg config, log *slog.Logger) (embed.Embedder, error) {
	ec := embed.Config{
		Provider: cfg.EmbeddingsProvider, APIKey: cfg.OpenAIAPIKey, BaseURL: cfg.OpenAIBaseURL,
		Model: cfg.EmbeddingsModel, Dimensions: cfg.EmbeddingsDimensions, BatchSize: cfg.EmbeddingsBatchSize,
		MaxTokensPerRequest: cfg.EmbeddingsMaxTokensPerRequest,
		RateLimitRPS:        cfg.EmbeddingsRateLimitRPS, RateLimitTPM: cfg.EmbeddingsRateLimitTPM,
		Logger: log,
	}
	if ec.Provider == embed.ProviderOpenAI {
		counter, err := chunk.NewCounter(ec.WithDefaults().Model)
		if err != nil {
			return nil, err
		}
		ec.Counter = counter
	}
	return embed.New(ctx, ec)
}

// healthHandler serves /healthz (the process is alive) and /readyz (pulling jobs, connected
// to NATS and PostgreSQL; false while draining).
func healthHandler(w *worker.Worker, natsUp func() bool, docs *docstore.Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		_, _ = rw.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		switch {
		case !w.Ready():
			http.Error(rw, "not ready: not pulling jobs (starting or draining)", http.StatusServiceUnavailable)
		case !natsUp():
			http.Error(rw, "not ready: NATS disconnected", http.StatusServiceUnavailable)
		case docs.Ping(ctx) != nil:
			http.Error(rw, "not ready: PostgreSQL unreachable", http.StatusServiceUnavailable)
		default:
			_, _ = rw.Write([]byte("ready\n"))
		}
	})
	return mux
}

// faultHook injects the test-only faults of QUIRE_FAULT_*: the process exits when it starts a
// document named QUIRE_FAULT_EXIT_ON_FILENAME (a worker killed by a poison job), attempts at a
// document named QUIRE_FAULT_FAIL_ON_FILENAME fail, and every job
// first waits QUIRE_FAULT_SLOW_JOB (so that tests can interrupt jobs mid-way).
func faultHook(cfg config, log *slog.Logger, h worker.Handler) worker.Handler {
	if cfg.FaultExitOnFilename == "" && cfg.FaultSlowJob == 0 && cfg.FaultFailOnFilename == "" {
		return h
	}
	return worker.HandlerFunc(func(ctx context.Context, j *job.Job) error {
		if cfg.FaultExitOnFilename != "" && j.Filename == cfg.FaultExitOnFilename {
			log.Error("fault injection: exiting on poison document", "task_id", j.TaskID)
			os.Exit(3)
		}
		if cfg.FaultFailOnFilename != "" && j.Filename == cfg.FaultFailOnFilename {
			return errors.New("fault injection: QUIRE_FAULT_FAIL_ON_FILENAME")
		}
		if cfg.FaultSlowJob > 0 {
			if err := worker.ReporterFrom(ctx).Progress(ctx, 1, "started (slowed by QUIRE_FAULT_SLOW_JOB)"); err != nil {
				return err
			}
			select {
			case <-time.After(cfg.FaultSlowJob):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return h.Handle(ctx, j)
	})
}
