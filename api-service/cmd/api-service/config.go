package main

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/quirehq/quire/api-service/internal/api"
	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/jobqueue"

	"github.com/quirehq/quire/shared/logging"
)

// config is the API's environment (DESIGN §8).
type config struct {
	NATSURL        string        `envconfig:"NATS_URL" default:"nats://127.0.0.1:4222"`
	NATSCreds      string        `envconfig:"NATS_CREDS"`
	DatabaseURL    string        `envconfig:"DATABASE_URL" required:"true"`
	HTTPAddr       string        `envconfig:"HTTP_ADDR" default:":8080"`
	APITokens      string        `envconfig:"API_TOKENS" required:"true"`
	AdminToken     string        `envconfig:"API_ADMIN_TOKEN"`
	MaxUploadBytes int64         `envconfig:"MAX_UPLOAD_BYTES" default:"52428800"`
	ResultTTL      time.Duration `envconfig:"RESULT_TTL" default:"1h"`
	StreamReplicas int           `envconfig:"STREAM_REPLICAS" default:"1"`
	AckWait        time.Duration `envconfig:"ACK_WAIT" default:"30s"`
	DLQMaxAge      time.Duration `envconfig:"DLQ_MAX_AGE" default:"168h"`
	LogLevel       string        `envconfig:"LOG_LEVEL" default:"info"`
	// SweepInterval is how often queued documents whose job was never published are
	// re-published; OutboxMinAge is how old such a document must be.
	SweepInterval time.Duration `envconfig:"OUTBOX_SWEEP_INTERVAL" default:"15s"`
	OutboxMinAge  time.Duration `envconfig:"OUTBOX_MIN_AGE" default:"30s"`

	// MaxBatchItems caps the items (files, archive entries, URLs) of one batch.
	MaxBatchItems int `envconfig:"MAX_BATCH_ITEMS" default:"1000"`
	// WebpageAllowPrivate lets webhook endpoints and callback_url point at private, loopback
	// and link-local addresses (tests and on-prem), as it lets workers fetch them.
	WebpageAllowPrivate bool `envconfig:"WEBPAGE_ALLOW_PRIVATE" default:"false"`

	// RateLimit is each tenant's requests per second on /api/v1 (0: no limit); RateBurst the
	// burst above it (0: RateLimit rounded up, at least 1).
	RateLimit float64 `envconfig:"API_RATE_LIMIT" default:"0"`
	RateBurst int     `envconfig:"API_RATE_BURST" default:"0"`

	// The embeddings provider of search queries: set the same values as the workers', so that
	// queries and chunks are embedded alike.
	EmbeddingsProvider     string  `envconfig:"EMBEDDINGS_PROVIDER" default:"local"`
	OpenAIAPIKey           string  `envconfig:"OPENAI_API_KEY"`
	OpenAIBaseURL          string  `envconfig:"OPENAI_BASE_URL"`
	EmbeddingsModel        string  `envconfig:"EMBEDDINGS_MODEL"`
	EmbeddingsDimensions   int     `envconfig:"EMBEDDINGS_DIMENSIONS"`
	EmbeddingsRateLimitRPS float64 `envconfig:"EMBEDDINGS_RATE_LIMIT_RPS" default:"0"`
	EmbeddingsRateLimitTPM int     `envconfig:"EMBEDDINGS_RATE_LIMIT_TPM" default:"0"`

	// Usage and billing (DESIGN §12): prices per unit of each metric ("metric=price,..."), the
	// currency they are in, and metering on or off (off: searches not counted, quotas not
	// checked; for benchmarks).
	BillingPrices   string `envconfig:"BILLING_PRICES"`
	BillingCurrency string `envconfig:"BILLING_CURRENCY" default:"USD"`
	UsageMetering   string `envconfig:"USAGE_METERING" default:"on"`
}

func loadConfig() (config, error) {
	var c config
	if err := envconfig.Process("", &c); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, c.validate()
}

// tokens parses API_TOKENS, "tenant:token,tenant:token", into token → tenant.
func (c config) tokens() (map[string]string, error) {
	out := map[string]string{}
	for pair := range strings.SplitSeq(c.APITokens, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		tenant, token, ok := strings.Cut(pair, ":")
		tenant, token = strings.TrimSpace(tenant), strings.TrimSpace(token)
		if !ok || tenant == "" || token == "" {
			return nil, errors.New("API_TOKENS: want tenant:token[,tenant:token...]")
		}
		if len(token) < 16 {
			return nil, fmt.Errorf("API_TOKENS: the token of tenant %q is shorter than 16 characters", tenant)
		}
		if _, dup := out[token]; dup {
			return nil, fmt.Errorf("API_TOKENS: a token of tenant %q is used twice", tenant)
		}
		out[token] = tenant
	}
	if len(out) == 0 {
		return nil, errors.New("API_TOKENS: no token configured (want tenant:token)")
	}
	return out, nil
}

// billing parses BILLING_PRICES and BILLING_CURRENCY.
func (c config) billing() (api.Billing, error) {
	return api.ParseBilling(c.BillingPrices, c.BillingCurrency)
}

func (c config) validate() error {
	var errs []error
	if _, err := c.billing(); err != nil {
		errs = append(errs, err)
	}
	if c.UsageMetering != "on" && c.UsageMetering != "off" {
		errs = append(errs, fmt.Errorf("USAGE_METERING: %q is not on or off", c.UsageMetering))
	}
	if err := jobqueue.CheckURL(c.NATSURL); err != nil {
		errs = append(errs, err)
	}
	if err := docstore.CheckURL(c.DatabaseURL); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.tokens(); err != nil {
		errs = append(errs, err)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		errs = append(errs, errors.New("API_ADMIN_TOKEN: shorter than 16 characters"))
	}
	if c.MaxBatchItems < 1 {
		errs = append(errs, fmt.Errorf("MAX_BATCH_ITEMS: %d is not positive (default 1000)", c.MaxBatchItems))
	}
	if c.MaxUploadBytes < 1 {
		errs = append(errs, fmt.Errorf("MAX_UPLOAD_BYTES: %d is not positive", c.MaxUploadBytes))
	}
	if c.RateLimit < 0 || math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0) {
		errs = append(errs, fmt.Errorf("API_RATE_LIMIT: %v is not a rate (want requests per second per tenant, 0 for no limit)", c.RateLimit))
	}
	if c.RateBurst < 0 {
		errs = append(errs, fmt.Errorf("API_RATE_BURST: %d is negative (want 0 for the default, or the burst size)", c.RateBurst))
	}
	if c.ResultTTL < time.Second {
		errs = append(errs, fmt.Errorf("RESULT_TTL: %v is under the 1s minimum", c.ResultTTL))
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("STREAM_REPLICAS: %d is not in 1..5", c.StreamReplicas))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("ACK_WAIT: %v is under 1s", c.AckWait))
	}
	if c.SweepInterval <= 0 || c.OutboxMinAge <= 0 {
		errs = append(errs, errors.New("OUTBOX_SWEEP_INTERVAL and OUTBOX_MIN_AGE: must be positive"))
	}
	if c.EmbeddingsProvider != "local" && c.EmbeddingsProvider != "openai" {
		errs = append(errs, fmt.Errorf("EMBEDDINGS_PROVIDER: %q is not local or openai", c.EmbeddingsProvider))
	}
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
