package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/jobqueue"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/logging"
	"github.com/quirehq/quire/worker-service/internal/chunk"
)

// config is the worker's environment (DESIGN §8).
type config struct {
	NATSURL         string        `envconfig:"NATS_URL" default:"nats://127.0.0.1:4222"`
	NATSCreds       string        `envconfig:"NATS_CREDS"`
	DatabaseURL     string        `envconfig:"DATABASE_URL" required:"true"`
	MetricsAddr     string        `envconfig:"METRICS_ADDR" default:":9090"`
	StreamReplicas  int           `envconfig:"STREAM_REPLICAS" default:"1"`
	Queues          string        `envconfig:"WORKER_QUEUES" default:"high,medium,low"`
	ConcHigh        int           `envconfig:"WORKER_CONCURRENCY_HIGH" default:"4"`
	ConcMedium      int           `envconfig:"WORKER_CONCURRENCY_MEDIUM" default:"8"`
	ConcLow         int           `envconfig:"WORKER_CONCURRENCY_LOW" default:"16"`
	MaxRetries      int           `envconfig:"MAX_RETRIES" default:"3"`
	RetryBaseDelay  time.Duration `envconfig:"RETRY_BASE_DELAY" default:"60s"`
	RetryMaxDelay   time.Duration `envconfig:"RETRY_MAX_DELAY" default:"600s"`
	AckWait         time.Duration `envconfig:"ACK_WAIT" default:"30s"`
	JobTimeout      time.Duration `envconfig:"JOB_TIMEOUT" default:"30m"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"30s"`
	// ProgressInterval is the least time between two status writes of a running job (0: every
	// progress report is written at once).
	ProgressInterval time.Duration `envconfig:"PROGRESS_INTERVAL" default:"250ms"`
	DLQMaxAge        time.Duration `envconfig:"DLQ_MAX_AGE" default:"168h"`
	ResultTTL        time.Duration `envconfig:"RESULT_TTL" default:"1h"`

	EmbeddingsProvider   string `envconfig:"EMBEDDINGS_PROVIDER" default:"local"`
	OpenAIAPIKey         string `envconfig:"OPENAI_API_KEY"`
	OpenAIBaseURL        string `envconfig:"OPENAI_BASE_URL"`
	EmbeddingsModel      string `envconfig:"EMBEDDINGS_MODEL"`
	EmbeddingsDimensions int    `envconfig:"EMBEDDINGS_DIMENSIONS"` // 0: the provider's (local 384, openai the model's)
	EmbeddingsBatchSize  int    `envconfig:"EMBEDDINGS_BATCH_SIZE" default:"64"`
	ChunkSize            int    `envconfig:"CHUNK_SIZE" default:"512"`
	ChunkOverlap         int    `envconfig:"CHUNK_OVERLAP" default:"64"`
	WebpageAllowPrivate  bool   `envconfig:"WEBPAGE_ALLOW_PRIVATE" default:"false"`
	LogLevel             string `envconfig:"LOG_LEVEL" default:"info"`
	// UsageMetering is on (the default) or off: off records no usage events, for benchmarks
	// that price metering.
	UsageMetering string `envconfig:"USAGE_METERING" default:"on"`

	// Extraction (see internal/extract.Options for what each bounds).
	PDFEngine        string        `envconfig:"PDF_ENGINE" default:"pdfium"`
	ExtractTimeout   time.Duration `envconfig:"EXTRACT_TIMEOUT" default:"60s"`
	ExtractMaxText   int           `envconfig:"EXTRACT_MAX_TEXT_BYTES" default:"33554432"`
	ExtractMaxPages  int           `envconfig:"EXTRACT_MAX_PAGES" default:"5000"`
	PDFWorkers       int           `envconfig:"PDF_WORKERS"`
	PDFMemoryLimitMB int           `envconfig:"PDF_MEMORY_LIMIT_MB"`
	WasmCacheDir     string        `envconfig:"WASM_CACHE_DIR"`
	// OCREngine is tesseract or off; unset (or auto), tesseract when tesseract, pdftoppm and
	// the OCR_LANGUAGES data are installed, off otherwise (decided at start-up and logged).
	OCREngine      string        `envconfig:"OCR_ENGINE"`
	OCRLanguages   string        `envconfig:"OCR_LANGUAGES" default:"eng"`
	OCRPageTimeout time.Duration `envconfig:"OCR_PAGE_TIMEOUT" default:"60s"`
	OCRDPI         int           `envconfig:"OCR_DPI" default:"300"`

	// EmbeddingsRateLimitRPS and EmbeddingsRateLimitTPM cap the process's embeddings requests
	// per second and tokens per minute (0: no limit); EmbeddingsMaxTokensPerRequest caps the
	// tokens of one request (OpenAI allows 300000; TEI's default is 16384).
	EmbeddingsRateLimitRPS        float64 `envconfig:"EMBEDDINGS_RATE_LIMIT_RPS" default:"0"`
	EmbeddingsRateLimitTPM        int     `envconfig:"EMBEDDINGS_RATE_LIMIT_TPM" default:"0"`
	EmbeddingsMaxTokensPerRequest int     `envconfig:"EMBEDDINGS_MAX_TOKENS_PER_REQUEST" default:"300000"`

	// FaultExitOnFilename makes the worker process exit when it processes a document with
	// this filename. It exists for crash-safety tests of the poison-job path; leave it unset.
	FaultExitOnFilename string `envconfig:"QUIRE_FAULT_EXIT_ON_FILENAME"`
	// FaultSlowJob makes every job wait this long (or until cancelled) before it starts working,
	// so that tests can kill, stop or cancel workers mid-job. Leave it unset.
	FaultSlowJob time.Duration `envconfig:"QUIRE_FAULT_SLOW_JOB"`
	// FaultFailOnFilename makes every attempt at a document with this filename fail with a
	// retryable error, for tests of retries and dead letters. Leave it unset.
	FaultFailOnFilename string `envconfig:"QUIRE_FAULT_FAIL_ON_FILENAME"`
}

// ocrLanguages is the shape of OCR_LANGUAGES: tesseract language codes joined by "+".
var ocrLanguages = regexp.MustCompile(`^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$`)

func loadConfig() (config, error) {
	var c config
	if err := envconfig.Process("", &c); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, c.validate()
}

// slots parses WORKER_QUEUES into the slots per priority.
func (c config) slots() (map[job.Priority]int, error) {
	out := map[job.Priority]int{}
	for name := range strings.SplitSeq(c.Queues, ",") {
		if strings.TrimSpace(name) == "" {
			continue
		}
		p, err := job.ParsePriority(name)
		if err != nil {
			return nil, fmt.Errorf("WORKER_QUEUES: %w", err)
		}
		out[p] = map[job.Priority]int{job.PriorityHigh: c.ConcHigh, job.PriorityMedium: c.ConcMedium, job.PriorityLow: c.ConcLow}[p]
	}
	if len(out) == 0 {
		return nil, errors.New("WORKER_QUEUES: no queue named (try high,medium,low)")
	}
	return out, nil
}

func (c config) validate() error {
	var errs []error
	if c.UsageMetering != "on" && c.UsageMetering != "off" {
		errs = append(errs, fmt.Errorf("USAGE_METERING: %q is not on or off", c.UsageMetering))
	}
	if err := jobqueue.CheckURL(c.NATSURL); err != nil {
		errs = append(errs, err)
	}
	if err := docstore.CheckURL(c.DatabaseURL); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.slots(); err != nil {
		errs = append(errs, err)
	}
	for name, v := range map[string]int{"WORKER_CONCURRENCY_HIGH": c.ConcHigh, "WORKER_CONCURRENCY_MEDIUM": c.ConcMedium, "WORKER_CONCURRENCY_LOW": c.ConcLow} {
		if v < 1 || v > 1024 {
			errs = append(errs, fmt.Errorf("%s: %d is not in 1..1024", name, v))
		}
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("STREAM_REPLICAS: %d is not in 1..5", c.StreamReplicas))
	}
	if c.MaxRetries < 0 || c.MaxRetries > 100 {
		errs = append(errs, fmt.Errorf("MAX_RETRIES: %d is not in 0..100", c.MaxRetries))
	}
	if c.RetryBaseDelay <= 0 || c.RetryMaxDelay < c.RetryBaseDelay {
		errs = append(errs, fmt.Errorf("RETRY_BASE_DELAY/RETRY_MAX_DELAY: want 0 < base <= max, have %v and %v", c.RetryBaseDelay, c.RetryMaxDelay))
	}
	if c.ProgressInterval < 0 || c.ProgressInterval > 10*time.Second {
		errs = append(errs, fmt.Errorf("PROGRESS_INTERVAL: %v is not in 0..10s", c.ProgressInterval))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("ACK_WAIT: %v is under 1s", c.AckWait))
	}
	for name, d := range map[string]time.Duration{"JOB_TIMEOUT": c.JobTimeout, "SHUTDOWN_TIMEOUT": c.ShutdownTimeout, "DLQ_MAX_AGE": c.DLQMaxAge, "RESULT_TTL": c.ResultTTL} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, have %v", name, d))
		}
	}
	if c.ResultTTL > 0 && c.ResultTTL < time.Second {
		errs = append(errs, fmt.Errorf("RESULT_TTL: %v is under the 1s minimum", c.ResultTTL))
	}
	switch c.EmbeddingsProvider {
	case "local":
	case "openai":
		if c.OpenAIAPIKey == "" && c.OpenAIBaseURL == "" {
			errs = append(errs, errors.New("OPENAI_API_KEY: required when EMBEDDINGS_PROVIDER=openai (or set OPENAI_BASE_URL for a local server)"))
		}
	default:
		errs = append(errs, fmt.Errorf("EMBEDDINGS_PROVIDER: %q is not local or openai", c.EmbeddingsProvider))
	}
	if c.EmbeddingsBatchSize < 1 || c.EmbeddingsBatchSize > 2048 {
		errs = append(errs, fmt.Errorf("EMBEDDINGS_BATCH_SIZE: %d is not in 1..2048", c.EmbeddingsBatchSize))
	}
	if c.ChunkSize < 16 || c.ChunkSize > 8192 {
		errs = append(errs, fmt.Errorf("CHUNK_SIZE: %d is not in 16..8192", c.ChunkSize))
	}
	if c.ChunkOverlap < 0 || c.ChunkOverlap >= c.ChunkSize {
		errs = append(errs, fmt.Errorf("CHUNK_OVERLAP: %d must be at least 0 and below CHUNK_SIZE", c.ChunkOverlap))
	}
	if c.PDFEngine != "pdfium" && c.PDFEngine != "pdftotext" {
		errs = append(errs, fmt.Errorf("PDF_ENGINE: %q is not pdfium or pdftotext", c.PDFEngine))
	}
	if c.ExtractTimeout <= 0 || c.ExtractMaxText <= 0 || c.ExtractMaxPages <= 0 || c.PDFWorkers < 0 || c.PDFMemoryLimitMB < 0 {
		errs = append(errs, errors.New("EXTRACT_TIMEOUT, EXTRACT_MAX_TEXT_BYTES, EXTRACT_MAX_PAGES, PDF_WORKERS, PDF_MEMORY_LIMIT_MB: must be positive"))
	}
	switch c.OCREngine {
	case "", "auto", "tesseract", "off":
	default:
		errs = append(errs, fmt.Errorf("OCR_ENGINE: %q is not tesseract, off or auto", c.OCREngine))
	}
	if !ocrLanguages.MatchString(c.OCRLanguages) {
		errs = append(errs, fmt.Errorf("OCR_LANGUAGES: %q is not tesseract language codes joined by + (eng+deu)", c.OCRLanguages))
	}
	if c.OCRPageTimeout <= 0 {
		errs = append(errs, fmt.Errorf("OCR_PAGE_TIMEOUT: %s must be positive", c.OCRPageTimeout))
	}
	if c.OCRDPI < 72 || c.OCRDPI > 1200 {
		errs = append(errs, fmt.Errorf("OCR_DPI: %d is not in 72..1200", c.OCRDPI))
	}
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// chunking is the chunk options of CHUNK_SIZE and CHUNK_OVERLAP, counting tokens with counter.
// CHUNK_OVERLAP=0 means chunks without overlap (chunk.Options reads a zero Overlap as its
// default, 64).
func (c config) chunking(counter chunk.Counter) chunk.Options {
	o := chunk.Options{Size: c.ChunkSize, Overlap: c.ChunkOverlap, Counter: counter}
	if o.Overlap == 0 {
		o.Overlap = -1
	}
	return o
}
