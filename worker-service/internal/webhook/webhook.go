// Package webhook delivers events to webhook endpoints: the handler of `webhook` jobs. A
// delivery is recorded by the statement that ends a task (the tasks table is its outbox), then
// published on medium; this handler signs and posts it, the worker runtime retries it with
// backoff and dead-letters it after the last attempt (a dead letter can be replayed through
// the DLQ routes, with the same delivery id).
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/worker-service/internal/webfetch"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// Headers of a delivery.
const (
	HeaderEvent     = "Quire-Event"
	HeaderDelivery  = "Quire-Delivery"
	HeaderSignature = "Quire-Signature"
)

// Args is the payload of a webhook job.
type Args struct {
	// URL is the endpoint.
	URL string `json:"url"`
	// WebhookID is the registered webhook delivered to; 0 for a submission's callback_url.
	WebhookID int64 `json:"webhook_id,omitempty"`
	// Event is the body, sent as it is: {"id","type","created_at","data"}.
	Event json.RawMessage `json:"event"`
}

// Secrets finds the secret that signs a delivery (*docstore.Store): the webhook's own, or for
// a callback_url (id 0) the tenant's newest webhook's; job.ErrNotFound when there is none.
type Secrets interface {
	WebhookSecret(ctx context.Context, tenantID string, id int64) (string, error)
}

// Poster sends a delivery through the SSRF guard (*webfetch.Fetcher): nil for a 2xx reply.
type Poster interface {
	Post(ctx context.Context, rawURL string, header http.Header, body []byte) error
}

// Defaults of a [Handler]'s retry policy.
const (
	DefaultRetries   = 5
	DefaultBaseDelay = 30 * time.Second
	DefaultMaxDelay  = time.Hour
)

// Handler delivers webhook jobs. Register it for [job.KindWebhook].
type Handler struct {
	Secrets Secrets
	Poster  Poster
	// Retries is how many times a failed delivery is retried (default DefaultRetries; a
	// negative value means none).
	Retries int
	// BaseDelay and MaxDelay shape the backoff: BaseDelay * 2^(attempt-1), capped at MaxDelay
	// (defaults DefaultBaseDelay, DefaultMaxDelay). A Retry-After from the endpoint lengthens it.
	BaseDelay, MaxDelay time.Duration
	Logger              *slog.Logger
	// Now is the clock of the signature's timestamp (default time.Now).
	Now func() time.Time
}

// MaxRetries implements worker.MaxRetrier.
func (h *Handler) MaxRetries() int {
	switch {
	case h.Retries < 0:
		return 0
	case h.Retries == 0:
		return DefaultRetries
	}
	return h.Retries
}

// RetryDelay implements worker.RetryDelayer.
func (h *Handler) RetryDelay(attempt int) time.Duration {
	base, limit := h.BaseDelay, h.MaxDelay
	if base <= 0 {
		base = DefaultBaseDelay
	}
	if limit <= 0 {
		limit = DefaultMaxDelay
	}
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Sign returns the Quire-Signature of body at t: "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// secret over "<t>.<body>">".
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Handle implements worker.Handler: it posts the event to the endpoint, signed, with the job's
// task id as Quire-Delivery (the same on every attempt and replay). A delivery to a webhook
// deleted meanwhile is dropped. An endpoint refused by the address rule, an invalid URL, or a
// callback_url of a tenant with no webhook to sign it fails at once; any other failure (no
// answer, a non-2xx status) is retried.
func (h *Handler) Handle(ctx context.Context, j *job.Job) error {
	return worker.ArgsFunc(h.deliver).Handle(ctx, j)
}

func (h *Handler) deliver(ctx context.Context, j *job.Job, a Args) error {
	var ev struct {
		Type string `json:"type"`
	}
	if a.URL == "" || json.Unmarshal(a.Event, &ev) != nil || ev.Type == "" {
		return worker.Permanent(fmt.Errorf("webhook: delivery %s: no url or event", j.TaskID))
	}
	secret, err := h.Secrets.WebhookSecret(ctx, j.TenantID, a.WebhookID)
	switch {
	case errors.Is(err, job.ErrNotFound) && a.WebhookID != 0:
		h.logger().Info("webhook deleted; delivery dropped", "task_id", j.TaskID, "webhook_id", a.WebhookID)
		return nil
	case errors.Is(err, job.ErrNotFound):
		return worker.Permanent(fmt.Errorf("webhook: delivery %s: the tenant has no webhook whose secret signs callback deliveries", j.TaskID))
	case err != nil:
		return fmt.Errorf("webhook: delivery %s: %w", j.TaskID, err)
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	hdr := http.Header{}
	hdr.Set("Content-Type", "application/json")
	hdr.Set(HeaderEvent, ev.Type)
	hdr.Set(HeaderDelivery, j.TaskID)
	hdr.Set(HeaderSignature, Sign(secret, now(), a.Event))
	err = h.Poster.Post(ctx, a.URL, hdr, a.Event)
	var he *webfetch.HTTPError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, webfetch.ErrBlockedAddress) || errors.Is(err, webfetch.ErrInvalidURL):
		return worker.Permanent(fmt.Errorf("webhook: delivery %s: %w", j.TaskID, err))
	case errors.As(err, &he) && he.RetryAfter > 0:
		return worker.RetryAfter(fmt.Errorf("webhook: delivery %s: %w", j.TaskID, err), he.RetryAfter)
	}
	return fmt.Errorf("webhook: delivery %s: %w", j.TaskID, err)
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}
