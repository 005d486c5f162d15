// Command api-service serves Quire's HTTP API: it accepts documents, queues their jobs on
// JetStream and reports task status, documents and chunks.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/quirehq/quire/api-service/internal/api"
	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/logging"
	"github.com/quirehq/quire/shared/taskstatus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "api-service:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, cfg.LogLevel, "api-service")
	if err != nil {
		return err
	}
	tokens, err := cfg.tokens()
	if err != nil {
		return err
	}
	billing, err := cfg.billing()
	if err != nil {
		return err
	}
	nc, js, top, err := jobqueue.Open(ctx, cfg.NATSURL, cfg.NATSCreds, "quire-api",
		jobqueue.Config{Replicas: cfg.StreamReplicas, AckWait: cfg.AckWait, DLQMaxAge: cfg.DLQMaxAge}, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	docs, err := docstore.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer docs.Close()
	if ok, reason := docs.VectorIndex(); !ok {
		log.Warn("pgvector unavailable: vector search is exact and reads every chunk of an agent", "reason", reason)
	}
	emb, err := embed.New(ctx, embed.Config{
		Provider: cfg.EmbeddingsProvider, APIKey: cfg.OpenAIAPIKey, BaseURL: cfg.OpenAIBaseURL,
		Model: cfg.EmbeddingsModel, Dimensions: cfg.EmbeddingsDimensions,
		RateLimitRPS: cfg.EmbeddingsRateLimitRPS, RateLimitTPM: cfg.EmbeddingsRateLimitTPM,
		// A search waits on its query's embedding: retry once, and not for long.
		MaxRetries: 1, Timeout: 10 * time.Second, Logger: log,
	})
	if err != nil {
		return err
	}

	srv := api.New(api.Config{
		Tokens: tokens, AdminToken: cfg.AdminToken, MaxUploadBytes: cfg.MaxUploadBytes,
		RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst, Billing: billing, NoUsage: cfg.UsageMetering == "off",
		AllowPrivate: cfg.WebpageAllowPrivate, MaxBatchItems: cfg.MaxBatchItems,
	}, api.Deps{
		NATS: nc, JetStream: js, Uploads: top.Uploads, Statuses: taskstatus.New(top.Tasks, js, cfg.ResultTTL),
		Docs: docs, Idempotency: top.Idempotency, Embedder: emb, Logger: log,
	})
	httpSrv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Minute, // a 50 MiB upload over a slow link
		WriteTimeout:      10 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	// Event streams never end by themselves: Shutdown ends them rather than wait for them.
	httpSrv.RegisterOnShutdown(srv.StopStreams)
	sweepCtx, stopSweep := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Go(func() { srv.RunSweeper(sweepCtx, cfg.SweepInterval, cfg.OutboxMinAge) })
	bg.Go(func() { srv.RunDispatcher(sweepCtx, 0) })
	// Schedules: SCHEDULES holds the definitions PostgreSQL calls for, and this replica
	// turns fires into tasks alongside every other.
	if err := srv.Reconcile(ctx); err != nil {
		log.Error("schedules: reconcile at start-up", "err", err)
	}
	bg.Go(func() {
		// Stops pulling at the shutdown signal, before the HTTP server's last marks are written.
		if err := srv.RunMaterializer(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("schedules: materializer stopped", "err", err)
		}
	})
	// This timer enqueues the hourly usage_rollup job until a schedule fires it.
	bg.Go(func() { srv.RunUsageRollup(sweepCtx) })
	defer func() { stopSweep(); bg.Wait() }()

	errc := make(chan error, 1)
	go func() {
		log.Info("api listening", "addr", cfg.HTTPAddr)
		if err := httpSrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
		}
		close(errc)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("api shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	err = httpSrv.Shutdown(shutdownCtx)
	srv.Close(shutdownCtx) // the outbox marks of the last uploads
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return <-errc
}
