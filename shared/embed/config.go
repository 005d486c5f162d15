package embed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// ErrPermanent marks an embeddings failure that cannot succeed on retry: the endpoint refused
// the request itself (HTTP 400, 404, 413 or 422: an input too long for the model, an unknown
// model, a wrong dimension count) or returned vectors of the wrong shape. Callers test for it
// with errors.Is and give up on the job instead of retrying it.
var ErrPermanent = errors.New("embed: permanent failure")

// Providers accepted by [Config.Provider].
const (
	ProviderLocal  = "local"
	ProviderOpenAI = "openai"
)

// Config selects and tunes an [Embedder]; [New] builds it. The fields mirror the services'
// EMBEDDINGS_* and OPENAI_* environment variables.
type Config struct {
	// Provider is "local" (the default; [Local]) or "openai" (any OpenAI-compatible endpoint).
	Provider string
	// APIKey is the bearer token of the endpoint (OPENAI_API_KEY); local servers such as
	// Ollama or vLLM usually need none.
	APIKey string
	// BaseURL is the endpoint up to and including the version path (OPENAI_BASE_URL), e.g.
	// http://localhost:11434/v1 for Ollama; default https://api.openai.com/v1. A host under
	// .openai.azure.com selects Azure OpenAI, where Model names the deployment.
	BaseURL string
	// Model is the embeddings model (EMBEDDINGS_MODEL); default text-embedding-3-small.
	Model string
	// Dimensions is the vector length (EMBEDDINGS_DIMENSIONS). 0 means the provider's
	// default: 384 for local; for openai the model's native size, learnt from the first
	// response when the model is not one of OpenAI's. It is sent as the request's
	// `dimensions` only to models that accept it (text-embedding-3-*); for every model,
	// vectors of another length are a permanent error.
	Dimensions int
	// BatchSize caps the inputs of one request (EMBEDDINGS_BATCH_SIZE, default 64).
	BatchSize int
	// MaxTokensPerRequest caps the tokens of one request as counted by Counter
	// (EMBEDDINGS_MAX_TOKENS_PER_REQUEST, default 300000, OpenAI's limit; TEI's default
	// --max-batch-tokens is 16384). An input that alone exceeds it is sent on its own.
	MaxTokensPerRequest int
	// RateLimitRPS caps requests per second across every caller of the embedder
	// (EMBEDDINGS_RATE_LIMIT_RPS); 0 means no limit.
	RateLimitRPS float64
	// RateLimitTPM caps tokens per minute across every caller of the embedder, as counted by
	// Counter (EMBEDDINGS_RATE_LIMIT_TPM); 0 means no limit.
	RateLimitTPM int
	// MaxRetries is how many times a request is retried after a 408, 409, 429, 5xx or a
	// network error (default 5; negative means none). Delays grow exponentially from 500ms to
	// 30s with jitter, or follow the server's Retry-After (or retry-after-ms) header.
	MaxRetries int
	// MaxRetryAfter is the longest Retry-After honoured in-process (default 2m); a longer
	// one fails the call with a retryable error, so the job backs off instead of holding a slot.
	MaxRetryAfter time.Duration
	// Timeout bounds one HTTP request (default 60s). Ignored when HTTPClient is set.
	Timeout time.Duration
	// HTTPClient sends the requests (default a client with Timeout).
	HTTPClient *http.Client
	// Counter counts the tokens of an input for batching and the token rate limit (default
	// [ByteCounter], an upper bound for byte-level BPE tokenizers; pass the model's own
	// tokenizer for fuller batches).
	Counter Counter
	// Base64 asks the endpoint for base64-encoded vectors (encoding_format "base64"), a
	// quarter of the JSON size. Not every OpenAI-compatible server supports it.
	Base64 bool
	// Logger receives retry warnings (default discards).
	Logger *slog.Logger
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Provider == "" {
		c.Provider = ProviderLocal
	}
	if c.Provider == ProviderOpenAI && c.Model == "" {
		c.Model = "text-embedding-3-small"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 64
	}
	if c.MaxTokensPerRequest <= 0 {
		c.MaxTokensPerRequest = 300_000
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 5
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = 2 * time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.Timeout}
	}
	if c.Counter == nil {
		c.Counter = ByteCounter{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	switch c.Provider {
	case ProviderLocal, ProviderOpenAI:
	default:
		errs = append(errs, fmt.Errorf("EMBEDDINGS_PROVIDER: %q is not local or openai", c.Provider))
	}
	if c.Dimensions < 0 || c.Dimensions > 16384 {
		errs = append(errs, fmt.Errorf("EMBEDDINGS_DIMENSIONS: %d is not in 0..16384", c.Dimensions))
	}
	if c.BatchSize > 2048 {
		errs = append(errs, fmt.Errorf("EMBEDDINGS_BATCH_SIZE: %d is over 2048", c.BatchSize))
	}
	if c.RateLimitRPS < 0 {
		errs = append(errs, fmt.Errorf("EMBEDDINGS_RATE_LIMIT_RPS: %v is negative", c.RateLimitRPS))
	}
	if c.RateLimitTPM < 0 {
		errs = append(errs, fmt.Errorf("EMBEDDINGS_RATE_LIMIT_TPM: %d is negative", c.RateLimitTPM))
	}
	if c.Provider == ProviderOpenAI {
		if c.BaseURL != "" {
			if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("OPENAI_BASE_URL: %q is not an http(s) URL (try http://localhost:11434/v1)", c.BaseURL))
			}
		}
		if c.APIKey == "" && c.BaseURL == "" {
			errs = append(errs, errors.New("OPENAI_API_KEY: required for api.openai.com (or set OPENAI_BASE_URL for a local server)"))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

// New returns the Embedder that cfg selects: [Local] or [OpenAI]. It makes no request; an
// unreachable endpoint shows up on the first Embed. ctx is reserved for providers that must
// load something at start.
func New(ctx context.Context, cfg Config) (Embedder, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Provider == ProviderLocal {
		return NewLocal(cfg.Dimensions)
	}
	return NewOpenAI(cfg)
}

// Counter counts the tokens of a text the way the embeddings model does. Implementations
// are safe for concurrent use. The worker's chunk package provides cl100k/o200k counters.
type Counter interface {
	Count(s string) int
}

// ByteCounter counts one token per byte plus one: never less than a byte-level BPE tokenizer
// (OpenAI's, most open models') counts, so batches it bounds never exceed a token limit, at
// the price of about four times fewer inputs per request than the real count allows.
type ByteCounter struct{}

// Count implements [Counter].
func (ByteCounter) Count(s string) int { return len(s) + 1 }
