// Package api is Quire's HTTP API: gin routes, request and response shapes, bearer-token
// tenancy and the one mapping from errors to HTTP statuses.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/batch"
	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/metrics"
	"github.com/quirehq/quire/shared/taskstatus"
	"github.com/quirehq/quire/shared/upload"
)

// Config tunes the API.
type Config struct {
	// Tokens maps bearer tokens to tenant ids (API_TOKENS).
	Tokens map[string]string
	// AdminToken guards the operator routes (API_ADMIN_TOKEN); empty disables them.
	AdminToken string
	// MaxUploadBytes caps an uploaded file (MAX_UPLOAD_BYTES, default 50 MiB).
	MaxUploadBytes int64
	// RateLimit is each tenant's request rate per second on /api/v1 (API_RATE_LIMIT); 0, the
	// default, turns the limit off. RateBurst is the burst above it (API_RATE_BURST; 0 means
	// RateLimit rounded up, at least 1). Over the limit a request gets 429 with Retry-After.
	RateLimit float64
	RateBurst int
	// AllowPrivate lifts the address rule for webhook endpoints and callback_url
	// (WEBPAGE_ALLOW_PRIVATE): loopback, private and link-local addresses are accepted.
	AllowPrivate bool
	// MaxBatchItems caps the items of a batch (MAX_BATCH_ITEMS, default 1000).
	MaxBatchItems int
	// EventKeepAlive is how often an idle event stream sends a keep-alive comment (default
	// 15s).
	EventKeepAlive time.Duration
	// Billing prices the usage invoice (BILLING_PRICES, BILLING_CURRENCY).
	Billing Billing
	// NoUsage turns usage metering off (USAGE_METERING=off): searches are not counted and
	// quotas not checked. For benchmarks that price metering.
	NoUsage bool
}

// Deps are the API's connections.
type Deps struct {
	NATS      *nats.Conn
	JetStream jetstream.JetStream
	Uploads   jetstream.ObjectStore
	Statuses  *taskstatus.Store
	Docs      *docstore.Store
	// Idempotency is the IDEMPOTENCY bucket; without it Idempotency-Key is ignored.
	Idempotency jetstream.KeyValue
	// Embedder embeds search queries, with the workers' provider and model; without it search
	// ranks by full text only.
	Embedder embed.Embedder
	Logger   *slog.Logger
}

// Server serves the API.
type Server struct {
	cfg       Config
	nc        *nats.Conn
	js        jetstream.JetStream
	uploads   *upload.Store // the uploaded bytes; nil without Deps.Uploads
	statuses  *taskstatus.Store
	docs      *docstore.Store
	taskQueue *jobqueue.Enqueuer // the one enqueue and cancel path
	idem      jetstream.KeyValue
	embedder  embed.Embedder
	log       *slog.Logger
	engine    *gin.Engine
	now       func() time.Time
	// marks writes the outbox marks of enqueued tasks in batches (outbox.go).
	marks *batch.Batcher[docstore.PublishMark]

	// rollupWatermark is the usage roll-up's last watermark, in Unix nanoseconds (usage.go).
	rollupWatermark atomic.Int64
	// quotas knows which tenants have a quota (usage.go).
	quotas quotaTenants

	// Metrics (metrics.go): GET /metrics, the HTTP collectors, the queue reading.
	metricsHandler http.Handler
	httpMetrics    *metrics.API
	queueStats     *metrics.QueueCollector

	// streamsDone ends the open event streams (events.go) once closed by StopStreams.
	streamsDone chan struct{}
	stopStreams sync.Once

	// background runs the work that outlives a request (removing a refused batch's objects
	// while NATS is away); bgCtx ends it at Close.
	background sync.WaitGroup
	bgCtx      context.Context
	bgCancel   context.CancelFunc
	// scheduleMetrics counts the materializer's fires and skipped runs (materializer.go).
	scheduleMetrics *metrics.Schedules
}

// New returns a Server with every route registered.
func New(cfg Config, d Deps) *Server {
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = 50 << 20
	}
	if cfg.MaxBatchItems <= 0 {
		cfg.MaxBatchItems = defaultMaxBatchItems
	}
	if cfg.EventKeepAlive <= 0 {
		cfg.EventKeepAlive = defaultEventKeepAlive
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Billing.Currency == "" {
		cfg.Billing.Currency = "USD"
	}
	s := &Server{
		cfg: cfg, nc: d.NATS, js: d.JetStream, statuses: d.Statuses, docs: d.Docs,
		idem: d.Idempotency, embedder: d.Embedder, log: d.Logger, now: time.Now, streamsDone: make(chan struct{}),
	}
	if d.Uploads != nil {
		s.uploads = upload.New(upload.Config{}, upload.Deps{Objects: d.Uploads, JetStream: d.JetStream, Logger: d.Logger})
	}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	s.marks = newPublishMarks(d.Docs, d.Logger, outboxMarkGather)
	var announcer jobqueue.Announcer
	if d.NATS != nil {
		announcer = d.NATS
	}
	s.taskQueue = jobqueue.NewEnqueuer(jobqueue.EnqueuerDeps{
		Tasks: d.Docs, Statuses: d.Statuses, JetStream: d.JetStream, Announcer: announcer, Logger: d.Logger,
		Marks: func(taskID, stream string, seq uint64) {
			s.marks.Add(docstore.PublishMark{TaskID: taskID, Stream: stream, Seq: seq})
		},
	})
	s.initMetrics(d.JetStream)
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.ContextWithFallback = true
	e.HandleMethodNotAllowed = true
	e.Use(s.observeHTTP(), s.recoverer(), s.accessLog())
	e.NoRoute(func(c *gin.Context) { s.fail(c, errNotFound("no such route")) })
	e.NoMethod(func(c *gin.Context) {
		s.fail(c, &httpError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: "method not allowed on this route"})
	})
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.serveMetrics)
	e.GET("/api/v1/openapi.json", s.serveOpenAPI)
	// Operator routes take the admin token (API_ADMIN_TOKEN), not a tenant token (admin.go).
	admin := e.Group("/api/v1/queues", s.authenticateAdmin())
	admin.GET("", s.listQueues)
	admin.POST("/:priority/pause", s.pauseQueue)
	admin.POST("/:priority/resume", s.resumeQueue)
	// Usage and quotas of any tenant (usage.go).
	adminV1 := e.Group("/api/v1/admin", s.authenticateAdmin())
	adminV1.GET("/usage", s.adminUsage)
	adminV1.GET("/tenants/:tenant/quota", s.getQuota)
	adminV1.PUT("/tenants/:tenant/quota", s.putQuota)

	v1 := e.Group("/api/v1", s.authenticate(), s.rateLimit(), s.checkParams())
	v1.POST("/documents/agent/:agent_id/upload", s.idempotent(), s.upload)
	v1.POST("/documents/agent/:agent_id/webpage", s.idempotent(), s.webpage)
	v1.POST("/documents/agent/:agent_id/crawl", s.idempotent(), s.crawl)
	v1.POST("/documents/agent/:agent_id/batch", s.idempotent(), s.submitBatch)
	v1.GET("/batches/:batch_id", s.getBatch)
	v1.DELETE("/batches/:batch_id", s.cancelBatch)
	v1.POST("/batches/:batch_id/retry", s.idempotent(), s.retryBatch)
	v1.GET("/batches/:batch_id/events", s.batchEvents)
	v1.GET("/documents/agent/:agent_id", s.listDocuments)
	v1.GET("/documents/:id", s.getDocument)
	v1.DELETE("/documents/:id", s.deleteDocument)
	v1.PATCH("/documents/:id", s.patchDocument)
	v1.GET("/documents/:id/chunks", s.listChunks)
	v1.POST("/documents/:id/reindex", s.idempotent(), s.reindexDocument)
	v1.GET("/tasks/:task_id", s.getTask)
	v1.GET("/tasks/:task_id/events", s.taskEvents)
	v1.DELETE("/tasks/:task_id", s.cancelTask)
	v1.POST("/webhooks", s.idempotent(), s.createWebhook)
	v1.GET("/webhooks", s.listWebhooks)
	v1.DELETE("/webhooks/:id", s.deleteWebhook)
	v1.GET("/dlq", s.listDeadLetters)
	v1.POST("/dlq/:id/retry", s.idempotent(), s.retryDeadLetter)
	v1.DELETE("/dlq/:id", s.deleteDeadLetter)
	v1.GET("/agents/:agent_id/search", s.search)
	// Schedules (schedules.go); their fires become tasks in materializer.go.
	v1.POST("/schedules", s.idempotent(), s.createSchedule)
	v1.GET("/schedules", s.listSchedules)
	v1.GET("/schedules/:id", s.getSchedule)
	v1.PATCH("/schedules/:id", s.patchSchedule)
	v1.DELETE("/schedules/:id", s.deleteSchedule)
	v1.POST("/schedules/:id/pause", s.pauseSchedule)
	v1.POST("/schedules/:id/resume", s.resumeSchedule)
	v1.POST("/schedules/:id/trigger", s.triggerSchedule)
	v1.GET("/schedules/:id/runs", s.listScheduleRuns)
	v1.GET("/usage", s.getUsage)
	v1.GET("/usage/invoice", s.getInvoice)
	v1.POST("/agents/:agent_id/search", s.searchPost)
	// The operator dashboard at /ui/ (ui.go).
	s.mountUI(e)
	s.engine = e
	return s
}

// outboxMarkGather is how long the outbox marks of uploads gather before one UPDATE writes them.
const outboxMarkGather = 20 * time.Millisecond

// Close writes the outbox marks of the jobs published so far. Call it once the HTTP server has
// stopped taking requests; a mark it cannot write only leaves the job to the sweeper.
func (s *Server) Close(ctx context.Context) {
	s.bgCancel()
	s.background.Wait()
	s.marks.Close(ctx)
}

// Handler is the http.Handler of the API.
func (s *Server) Handler() http.Handler { return s.engine }

// Engine exposes the gin engine, e.g. to list its routes.
func (s *Server) Engine() *gin.Engine { return s.engine }

func (s *Server) healthz(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

// readyz reports ready when NATS and PostgreSQL both answer.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	checks := gin.H{"nats": "ok", "postgres": "ok"}
	ok := true
	if !s.nc.IsConnected() {
		checks["nats"], ok = "disconnected", false
	} else if _, err := s.js.AccountInfo(ctx); err != nil {
		checks["nats"], ok = "jetstream unavailable", false
	}
	if err := s.docs.Ping(ctx); err != nil {
		checks["postgres"], ok = "unreachable", false
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	c.JSON(status, gin.H{"ready": ok, "checks": checks})
}

func (s *Server) recoverer() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("handler panic", "path", c.FullPath(), "panic", v)
				s.fail(c, errInternal)
			}
		}()
		c.Next()
	}
}

func (s *Server) accessLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !s.log.Enabled(c.Request.Context(), slog.LevelDebug) {
			c.Next()
			return
		}
		start := time.Now()
		c.Next()
		attrs := []any{"method", c.Request.Method, "route", c.FullPath(), "status", c.Writer.Status(), "duration", time.Since(start)}
		if id, ok := c.Get(ctxTaskID); ok {
			attrs = append(attrs, "task_id", id)
		}
		s.log.Debug("request", attrs...)
	}
}
