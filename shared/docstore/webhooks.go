package docstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quirehq/quire/shared/job"
)

// Webhook is a tenant's registered endpoint. The statement that makes a task final records
// one `webhook` task per subscribed endpoint (and per callback_url) in the same transaction
// (migration 00030): the tasks table is the outbox of deliveries too.
type Webhook struct {
	ID        int64
	TenantID  string
	URL       string
	Events    []string
	Secret    string
	CreatedAt time.Time
}

// CreateWebhook records w, setting its ID and CreatedAt.
func (s *Store) CreateWebhook(ctx context.Context, w *Webhook) error {
	if err := s.pool.QueryRow(ctx, `INSERT INTO webhooks (tenant_id, url, events, secret) VALUES ($1, $2, $3, $4)
		RETURNING id, created_at`, w.TenantID, w.URL, w.Events, w.Secret).Scan(&w.ID, &w.CreatedAt); err != nil {
		return fmt.Errorf("docstore: create webhook: %w", err)
	}
	return nil
}

// ListWebhooks returns tenant's webhooks, newest first, without their secrets.
func (s *Store) ListWebhooks(ctx context.Context, tenantID string) ([]Webhook, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, tenant_id, url, events, created_at FROM webhooks
		WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("docstore: list webhooks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Webhook, error) {
		var w Webhook
		err := r.Scan(&w.ID, &w.TenantID, &w.URL, &w.Events, &w.CreatedAt)
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("docstore: list webhooks: %w", err)
	}
	return out, nil
}

// DeleteWebhook removes tenant's webhook id; job.ErrNotFound if tenant has none such.
// Deliveries already recorded for it are dropped when they run.
func (s *Store) DeleteWebhook(ctx context.Context, tenantID string, id int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	if err != nil {
		return fmt.Errorf("docstore: delete webhook %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("docstore: delete webhook %d: %w", id, job.ErrNotFound)
	}
	return nil
}

// WebhookSecret returns the secret that signs a delivery of tenant: webhook id's own, or, for
// a callback_url delivery (id 0), the secret of the tenant's newest webhook. job.ErrNotFound
// when that webhook is gone (or the tenant has none).
func (s *Store) WebhookSecret(ctx context.Context, tenantID string, id int64) (string, error) {
	var secret string
	var err error
	if id != 0 {
		err = s.pool.QueryRow(ctx, `SELECT secret FROM webhooks WHERE tenant_id = $1 AND id = $2`, tenantID, id).Scan(&secret)
	} else {
		err = s.pool.QueryRow(ctx, `SELECT secret FROM webhooks WHERE tenant_id = $1
			ORDER BY created_at DESC, id DESC LIMIT 1`, tenantID).Scan(&secret)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("docstore: webhook secret of %s/%d: %w", tenantID, id, job.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("docstore: webhook secret of %s/%d: %w", tenantID, id, err)
	}
	return secret, nil
}

// HasWebhook reports whether tenant has registered a webhook (whose secret signs its
// callback_url deliveries).
func (s *Store) HasWebhook(ctx context.Context, tenantID string) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM webhooks WHERE tenant_id = $1)`, tenantID).Scan(&ok); err != nil {
		return false, fmt.Errorf("docstore: has webhook: %w", err)
	}
	return ok, nil
}

// UnpublishedDeliveries returns up to limit webhook deliveries not yet published, oldest
// first. Nothing else publishes them, so they are due at once, unlike the orphans of
// [Store.UnpublishedTasks].
func (s *Store) UnpublishedDeliveries(ctx context.Context, limit int) ([]*Task, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+taskColumns+` FROM tasks t
		WHERE t.kind = 'webhook' AND t.published_at IS NULL AND t.state = 'PENDING'
		ORDER BY t.created_at LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("docstore: unpublished deliveries: %w", err)
	}
	defer rows.Close()
	var out []*Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("docstore: unpublished deliveries: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("docstore: unpublished deliveries: %w", err)
	}
	return out, nil
}
