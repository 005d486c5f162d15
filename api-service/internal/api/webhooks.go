package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/netguard"
)

// webhookEvents are the events a webhook can subscribe to (DESIGN §13).
var webhookEvents = []string{"task.succeeded", "task.failed", "task.revoked", "batch.completed"}

// maxWebhooks caps a tenant's registered webhooks.
const maxWebhooks = 20

// defaultDispatchInterval is how often the dispatcher publishes recorded webhook deliveries.
const defaultDispatchInterval = time.Second

type webhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

// webhookResponse is a registered webhook; Secret is answered once, at registration.
type webhookResponse struct {
	ID        int64     `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func webhookOf(w *docstore.Webhook) webhookResponse {
	return webhookResponse{ID: w.ID, URL: w.URL, Events: w.Events, CreatedAt: w.CreatedAt}
}

// checkHookURL checks the endpoint of a webhook or a callback_url (field name): an absolute
// http or https URL whose host is not, and does not resolve to, a private, loopback or
// link-local address (the web fetcher's address rule; WEBPAGE_ALLOW_PRIVATE lifts it). The
// worker checks the address again when it delivers.
func (s *Server) checkHookURL(ctx context.Context, name, raw string) (string, error) {
	u, err := checkPageURL(raw)
	if err != nil {
		return "", errBadRequest(name + ": " + err.Error())
	}
	if err := netguard.CheckURL(ctx, u, s.cfg.AllowPrivate); err != nil {
		return "", errBadRequest(name + ": " + err.Error() + " (private, loopback and link-local addresses are refused)")
	}
	return u, nil
}

// checkCallbackURL checks a submission's optional callback_url: the endpoint rules of
// [Server.checkHookURL], and a tenant with a registered webhook, whose secret (the newest
// webhook's) signs callback deliveries.
func (s *Server) checkCallbackURL(ctx context.Context, tenant, raw string) (string, error) {
	if strings.TrimSpace(raw) == "" {
		return "", nil
	}
	u, err := s.checkHookURL(ctx, "callback_url", raw)
	if err != nil {
		return "", err
	}
	ok, err := s.docs.HasWebhook(ctx, tenant)
	if err != nil {
		s.log.Error("callback_url: webhook lookup", "err", err)
		return "", errUnavailable
	}
	if !ok {
		return "", errBadRequest("callback_url: register a webhook first (POST /api/v1/webhooks); its secret signs callback deliveries")
	}
	return u, nil
}

// createWebhook serves POST /api/v1/webhooks: {"url","events"?} (events default to all).
// 201 with the webhook and its signing secret, which is never answered again.
func (s *Server) createWebhook(c *gin.Context) {
	ctx := c.Request.Context()
	tenant := tenantOf(c)
	var req webhookRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	u, err := s.checkHookURL(ctx, "url", req.URL)
	if err != nil {
		s.fail(c, err)
		return
	}
	events := slices.Clone(webhookEvents)
	if len(req.Events) > 0 {
		events = nil
		for _, e := range req.Events {
			if !slices.Contains(webhookEvents, e) {
				s.fail(c, errBadRequest("events: unknown event "+strconv.Quote(e)+" (want "+strings.Join(webhookEvents, ", ")+")"))
				return
			}
			if !slices.Contains(events, e) {
				events = append(events, e)
			}
		}
	}
	have, err := s.docs.ListWebhooks(ctx, tenant)
	if err != nil {
		s.log.Error("webhooks: list", "err", err)
		s.fail(c, errUnavailable)
		return
	}
	if len(have) >= maxWebhooks {
		s.fail(c, errConflict("a tenant has at most "+strconv.Itoa(maxWebhooks)+" webhooks; delete one first"))
		return
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // never fails (crypto/rand)
	w := &docstore.Webhook{TenantID: tenant, URL: u, Events: events, Secret: "whsec_" + hex.EncodeToString(raw)}
	if err := s.docs.CreateWebhook(ctx, w); err != nil {
		s.log.Error("webhooks: create", "err", err)
		s.fail(c, errUnavailable)
		return
	}
	resp := webhookOf(w)
	resp.Secret = w.Secret
	c.JSON(http.StatusCreated, resp)
}

// listWebhooks serves GET /api/v1/webhooks: the tenant's webhooks, newest first, without
// their secrets.
func (s *Server) listWebhooks(c *gin.Context) {
	hooks, err := s.docs.ListWebhooks(c.Request.Context(), tenantOf(c))
	if err != nil {
		s.log.Error("webhooks: list", "err", err)
		s.fail(c, errUnavailable)
		return
	}
	out := make([]webhookResponse, len(hooks))
	for i := range hooks {
		out[i] = webhookOf(&hooks[i])
	}
	c.JSON(http.StatusOK, gin.H{"webhooks": out})
}

// deleteWebhook serves DELETE /api/v1/webhooks/{id}; deliveries already recorded for it are
// dropped.
func (s *Server) deleteWebhook(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		s.fail(c, errNotFound("webhook not found"))
		return
	}
	err = s.docs.DeleteWebhook(c.Request.Context(), tenantOf(c), id)
	switch {
	case errors.Is(err, job.ErrNotFound):
		s.fail(c, errNotFound("webhook not found"))
		return
	case err != nil:
		s.log.Error("webhooks: delete", "err", err)
		s.fail(c, errUnavailable)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": id, "deleted": true})
}

// RunDispatcher publishes, every interval until ctx ends, the webhook deliveries that ended
// tasks recorded (the tasks table is their outbox), through the one enqueue path. Every API
// replica may run it: a delivery published twice is one message (its task id is the
// Nats-Msg-Id). interval 0 means one second.
func (s *Server) RunDispatcher(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = defaultDispatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Dispatch(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("webhook dispatch failed", "err", err)
			}
		}
	}
}

// Dispatch publishes the recorded webhook deliveries not yet published and returns how many.
func (s *Server) Dispatch(ctx context.Context) (int, error) {
	tasks, err := s.docs.UnpublishedDeliveries(ctx, 500)
	if err != nil {
		return 0, err
	}
	return s.publishRecorded(ctx, tasks, "webhook delivery published")
}
