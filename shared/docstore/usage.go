package docstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Usage metrics (DESIGN §12). Every metric but [MetricStorageBytes] is a counter: its
// quantity over a period is the sum of its events. MetricStorageBytes is a level: the bytes a
// tenant keeps (its chunks' text and the uploads kept for its dead letters), measured when an
// hour is rolled up; over a period it is the largest hourly measure.
const (
	MetricDocuments       = "documents"
	MetricPages           = "pages"
	MetricBytesIngested   = "bytes_ingested"
	MetricChunks          = "chunks"
	MetricEmbeddingTokens = "embedding_tokens"
	MetricSearches        = "searches"
	MetricStorageBytes    = "storage_bytes"
)

// Metrics lists the usage metrics in the order reports show them.
var Metrics = []string{MetricDocuments, MetricPages, MetricBytesIngested, MetricChunks,
	MetricEmbeddingTokens, MetricSearches, MetricStorageBytes}

// Usage is what a [Completion] is metered as. [Store.Complete] records it in the transaction
// that commits the document (documents 1, pages, bytes_ingested, chunks, embedding_tokens,
// as one usage_events row), once per task: a second commit of the same task, such as a
// duplicate delivery's, counts nothing. The zero Usage records nothing (metering off).
type Usage struct {
	// Pages is the document's pages (a PDF's pages, 1 for a web page).
	Pages int
	// Bytes is the size of what was ingested: the upload, or the fetched body of a web page.
	Bytes int64
	// EmbeddingTokens is the tokens sent to the embeddings provider, as it counts them.
	EmbeddingTokens int
}

// recordCompletionUsage is the statement of [Store.Complete] that meters a completed document
// $1: pages $2, bytes_ingested $3, chunks $4 and embedding_tokens $5, under the document's
// tenant, agent and task.
const recordCompletionUsage = `INSERT INTO usage_events (tenant_id, agent_id, task_id, document_id, documents, pages, bytes_ingested, chunks, embedding_tokens)
	SELECT d.tenant_id, d.agent_id, d.task_id, d.id, 1, $2, $3, $4, $5
	FROM documents d WHERE d.id = $1 AND d.status = 'completed'
	ON CONFLICT (task_id) WHERE task_id IS NOT NULL DO NOTHING`

// recordReembeddingUsage is the statement of [Store.ReplaceEmbeddings] that meters the
// re-embedding of document $1: its chunks' tokens, sent to the provider again, as
// embedding_tokens of its current task (once per task).
const recordReembeddingUsage = `INSERT INTO usage_events (tenant_id, agent_id, task_id, document_id, embedding_tokens)
	SELECT d.tenant_id, d.agent_id, d.task_id, d.id, sum(c.token_count)
	FROM documents d JOIN chunks c ON c.document_id = d.id
	WHERE d.id = $1
	GROUP BY d.id HAVING sum(c.token_count) > 0
	ON CONFLICT (task_id) WHERE task_id IS NOT NULL DO NOTHING`

// RecordSearch counts one search by agent of tenant.
func (s *Store) RecordSearch(ctx context.Context, tenantID, agentID string) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO usage_events (tenant_id, agent_id, searches) VALUES ($1, $2, 1)`,
		tenantID, agentID); err != nil {
		return fmt.Errorf("docstore: record search: %w", err)
	}
	return nil
}

// RollupSettle is how long after an hour ends it is rolled up: an event is stamped with the
// start of its transaction, so a transaction running across the hour's end commits an event
// of that hour a little after it.
const RollupSettle = time.Minute

// RollupResult is what one roll-up did.
type RollupResult struct {
	// From and To bound the hours rolled up, [From, To); equal when there was nothing to do.
	From, To time.Time
	// Rows is the usage_hourly rows written.
	Rows int64
	// Watermark is the start of the first hour not rolled up yet.
	Watermark time.Time
}

// RollupUsage writes usage_hourly for every hour that ended at least [RollupSettle] before now
// and is not rolled up yet (from the watermark; on the first run, from the hour of the oldest
// event), in one transaction, and moves the watermark past them: a late run covers every hour
// it missed, once. Re-running an hour replaces its rows. A concurrent caller waits for the
// first to commit and then finds nothing left to do. storage_bytes is measured now and written
// for each hour rolled up.
func (s *Store) RollupUsage(ctx context.Context, now time.Time) (RollupResult, error) {
	var res RollupResult
	end := now.Add(-RollupSettle).UTC().Truncate(time.Hour)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The row lock serialises roll-ups; the first one ever creates the row.
		if _, err := tx.Exec(ctx, `INSERT INTO usage_rollup_state (watermark)
			SELECT coalesce(date_trunc('hour', min(occurred_at), 'UTC'), $1) FROM usage_events
			ON CONFLICT (id) DO NOTHING`, end); err != nil {
			return err
		}
		var wm time.Time
		if err := tx.QueryRow(ctx, `SELECT watermark FROM usage_rollup_state WHERE id FOR UPDATE`).Scan(&wm); err != nil {
			return err
		}
		res.From, res.To, res.Watermark = wm.UTC(), wm.UTC(), wm.UTC()
		if !end.After(wm) {
			return nil
		}
		n, err := rollupHours(ctx, tx, wm, end)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE usage_rollup_state SET watermark = $1, rolled_at = now() WHERE id`, end); err != nil {
			return err
		}
		res.To, res.Rows, res.Watermark = end, n, end
		return nil
	})
	if err != nil {
		return RollupResult{}, fmt.Errorf("docstore: roll up usage: %w", err)
	}
	return res, nil
}

// RollupHours rewrites usage_hourly for the hours in [from, to) (truncated to hours) without
// moving the watermark: an operator's repair of hours already rolled up.
func (s *Store) RollupHours(ctx context.Context, from, to time.Time) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		n, err = rollupHours(ctx, tx, from.UTC().Truncate(time.Hour), to.UTC().Truncate(time.Hour))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("docstore: roll up usage hours: %w", err)
	}
	return n, nil
}

// rollupHours replaces the usage_hourly rows of [from, to) with the sums of their events, and
// writes each tenant's and agent's current storage_bytes for every one of those hours.
func rollupHours(ctx context.Context, tx pgx.Tx, from, to time.Time) (int64, error) {
	if _, err := tx.Exec(ctx, `DELETE FROM usage_hourly WHERE hour >= $1 AND hour < $2`, from, to); err != nil {
		return 0, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO usage_hourly (tenant_id, agent_id, metric, hour, quantity)
		SELECT tenant_id, agent_id, metric, date_trunc('hour', occurred_at, 'UTC'), sum(quantity)
		FROM usage_event_metrics WHERE occurred_at >= $1 AND occurred_at < $2
		GROUP BY 1, 2, 3, 4`, from, to)
	if err != nil {
		return 0, err
	}
	n := tag.RowsAffected()
	tag, err = tx.Exec(ctx, `INSERT INTO usage_hourly (tenant_id, agent_id, metric, hour, quantity)
		SELECT st.tenant_id, st.agent_id, 'storage_bytes', h, st.bytes
		FROM (`+storageQuery+`) st, generate_series($1::timestamptz, $2::timestamptz - interval '1 hour', interval '1 hour') AS h
		WHERE st.bytes > 0`, from, to)
	if err != nil {
		return 0, err
	}
	return n + tag.RowsAffected(), nil
}

// storageQuery is each tenant's and agent's storage: the bytes of its chunks' text and of the
// uploads kept for its failed documents (their dead letters keep the bytes for a retry).
const storageQuery = `SELECT tenant_id, agent_id, sum(bytes)::bigint AS bytes FROM (
		SELECT tenant_id, agent_id, octet_length(content)::bigint AS bytes FROM chunks
		UNION ALL
		SELECT tenant_id, agent_id, size_bytes FROM documents WHERE status = 'failed' AND kind = 'document'
	) s GROUP BY tenant_id, agent_id`

// UsageWatermark returns the roll-up's watermark (the start of the first hour not rolled up)
// and whether there is one yet.
func (s *Store) UsageWatermark(ctx context.Context) (time.Time, bool, error) {
	var wm time.Time
	err := s.pool.QueryRow(ctx, `SELECT watermark FROM usage_rollup_state WHERE id`).Scan(&wm)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("docstore: usage watermark: %w", err)
	}
	return wm.UTC(), true, nil
}

// Granularities of [UsageQuery].
const (
	GranularityHour  = "hour"
	GranularityDay   = "day"
	GranularityMonth = "month"
)

// UsageQuery selects usage for [Store.Usage].
type UsageQuery struct {
	// TenantID is required; AgentID, if set, keeps that agent's usage only.
	TenantID, AgentID string
	// From and To bound the hours, [From, To), in UTC.
	From, To time.Time
	// Granularity is hour, day or month (UTC periods).
	Granularity string
}

// UsageRow is the quantity of one metric over one period.
type UsageRow struct {
	Period   time.Time `json:"period"`
	Metric   string    `json:"metric"`
	Quantity int64     `json:"quantity"`
}

// Usage returns q's tenant's usage per period and metric, by period then metric name: the
// rolled-up hours from usage_hourly and, past the roll-up's watermark, the events themselves,
// so the current hour is included live. storage_bytes of a live hour is the current storage.
func (s *Store) Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error) {
	switch q.Granularity {
	case GranularityHour, GranularityDay, GranularityMonth:
	default:
		return nil, fmt.Errorf("%w: granularity %q is not hour, day or month", ErrBadQuery, q.Granularity)
	}
	rows, err := s.pool.Query(ctx, `WITH wm AS (
			SELECT coalesce((SELECT watermark FROM usage_rollup_state WHERE id), '-infinity'::timestamptz) AS t
		), hourly AS (
			SELECT metric, hour, sum(quantity)::bigint AS quantity FROM usage_hourly, wm
			WHERE tenant_id = $1 AND ($2 = '' OR agent_id = $2) AND hour >= $3 AND hour < $4 AND hour < wm.t
			GROUP BY metric, hour
			UNION ALL
			SELECT metric, date_trunc('hour', occurred_at, 'UTC'), sum(quantity)::bigint FROM usage_event_metrics, wm
			WHERE tenant_id = $1 AND ($2 = '' OR agent_id = $2) AND occurred_at >= greatest($3, wm.t) AND occurred_at < $4
			GROUP BY metric, 2
			UNION ALL
			SELECT 'storage_bytes', date_trunc('hour', now(), 'UTC'), sum(st.bytes)::bigint FROM (`+storageQuery+`) st, wm
			WHERE st.tenant_id = $1 AND ($2 = '' OR st.agent_id = $2)
				AND date_trunc('hour', now(), 'UTC') >= greatest($3, wm.t) AND date_trunc('hour', now(), 'UTC') < $4
			HAVING sum(st.bytes) > 0
		)
		SELECT date_trunc($5, hour, 'UTC') AS period, metric,
			CASE WHEN metric = 'storage_bytes' THEN max(quantity) ELSE sum(quantity) END::bigint
		FROM hourly GROUP BY 1, 2 ORDER BY 1, 2`,
		q.TenantID, q.AgentID, q.From.UTC(), q.To.UTC(), q.Granularity)
	if err != nil {
		return nil, fmt.Errorf("docstore: usage of tenant %s: %w", q.TenantID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UsageRow, error) {
		var u UsageRow
		err := r.Scan(&u.Period, &u.Metric, &u.Quantity)
		u.Period = u.Period.UTC()
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("docstore: usage of tenant %s: %w", q.TenantID, err)
	}
	return out, nil
}

// TenantUsage is one tenant's quantity of one metric, for the dashboard.
type TenantUsage struct {
	TenantID string
	Hour     time.Time
	Metric   string
	Quantity int64
}

// UsageByTenant returns every tenant's counters per hour in [from, to), rolled up or live
// (storage_bytes left out), by tenant then hour.
func (s *Store) UsageByTenant(ctx context.Context, from, to time.Time) ([]TenantUsage, error) {
	rows, err := s.pool.Query(ctx, `WITH wm AS (
			SELECT coalesce((SELECT watermark FROM usage_rollup_state WHERE id), '-infinity'::timestamptz) AS t
		)
		SELECT tenant_id, hour, metric, sum(quantity)::bigint FROM (
			SELECT tenant_id, hour, metric, quantity FROM usage_hourly, wm
			WHERE hour >= $1 AND hour < $2 AND hour < wm.t AND metric <> 'storage_bytes'
			UNION ALL
			SELECT tenant_id, date_trunc('hour', occurred_at, 'UTC'), metric, quantity FROM usage_event_metrics, wm
			WHERE occurred_at >= greatest($1, wm.t) AND occurred_at < $2
		) u GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("docstore: usage by tenant: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TenantUsage, error) {
		var u TenantUsage
		err := r.Scan(&u.TenantID, &u.Hour, &u.Metric, &u.Quantity)
		u.Hour = u.Hour.UTC()
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("docstore: usage by tenant: %w", err)
	}
	return out, nil
}

// Quota is a tenant's limits; nil is unlimited.
type Quota struct {
	DocumentsPerMonth       *int64 `json:"documents_per_month"`
	EmbeddingTokensPerMonth *int64 `json:"embedding_tokens_per_month"`
	StorageBytes            *int64 `json:"storage_bytes"`
}

// GetQuota returns tenant's quota; all unlimited when none was set.
func (s *Store) GetQuota(ctx context.Context, tenantID string) (Quota, error) {
	var q Quota
	err := s.pool.QueryRow(ctx, `SELECT documents_per_month, embedding_tokens_per_month, storage_bytes
		FROM tenant_quotas WHERE tenant_id = $1`, tenantID).Scan(&q.DocumentsPerMonth, &q.EmbeddingTokensPerMonth, &q.StorageBytes)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Quota{}, fmt.Errorf("docstore: quota of tenant %s: %w", tenantID, err)
	}
	return q, nil
}

// QuotaTenants lists the tenants that have a quota.
func (s *Store) QuotaTenants(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT tenant_id FROM tenant_quotas`)
	if err != nil {
		return nil, fmt.Errorf("docstore: tenants with a quota: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("docstore: tenants with a quota: %w", err)
	}
	return out, nil
}

// SetQuota replaces tenant's quota; a quota with every limit nil removes it.
func (s *Store) SetQuota(ctx context.Context, tenantID string, q Quota) error {
	var err error
	if q.DocumentsPerMonth == nil && q.EmbeddingTokensPerMonth == nil && q.StorageBytes == nil {
		_, err = s.pool.Exec(ctx, `DELETE FROM tenant_quotas WHERE tenant_id = $1`, tenantID)
	} else {
		_, err = s.pool.Exec(ctx, `INSERT INTO tenant_quotas (tenant_id, documents_per_month, embedding_tokens_per_month, storage_bytes)
			VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE SET documents_per_month = EXCLUDED.documents_per_month,
			embedding_tokens_per_month = EXCLUDED.embedding_tokens_per_month, storage_bytes = EXCLUDED.storage_bytes, updated_at = now()`,
			tenantID, q.DocumentsPerMonth, q.EmbeddingTokensPerMonth, q.StorageBytes)
	}
	if err != nil {
		return fmt.Errorf("docstore: set quota of tenant %s: %w", tenantID, err)
	}
	return nil
}

// QuotaExceededError says which quota a submission would exceed.
type QuotaExceededError struct {
	Quota       string // documents_per_month, embedding_tokens_per_month or storage_bytes
	Used, Limit int64
}

func (e *QuotaExceededError) Error() string {
	return fmt.Sprintf("quota %s exceeded: %d used of %d", e.Quota, e.Used, e.Limit)
}

// CheckQuota returns a [*QuotaExceededError] if tenant cannot submit n more documents in the
// month of now: documents completed this month plus those queued or processing, plus n, over
// documents_per_month; embedding tokens this month at or over embedding_tokens_per_month; or
// its storage at or over storage_bytes. A tenant without a quota costs one index look-up; the
// usage is only read for the limits that are set.
func (s *Store) CheckQuota(ctx context.Context, tenantID string, n int, now time.Time) error {
	month := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	var (
		q                    Quota
		docs, tokens, stored *int64
	)
	err := s.pool.QueryRow(ctx, `WITH wm AS (
			SELECT coalesce((SELECT watermark FROM usage_rollup_state WHERE id), '-infinity'::timestamptz) AS t
		), q AS (
			SELECT * FROM tenant_quotas WHERE tenant_id = $1
		), used AS (
			SELECT metric, sum(quantity)::bigint AS quantity FROM (
				SELECT metric, quantity FROM usage_hourly, wm
				WHERE tenant_id = $1 AND hour >= $2 AND hour < wm.t AND metric IN ('documents', 'embedding_tokens')
				UNION ALL
				SELECT metric, quantity FROM usage_event_metrics, wm
				WHERE tenant_id = $1 AND occurred_at >= greatest($2, wm.t) AND metric IN ('documents', 'embedding_tokens')
			) u WHERE EXISTS (SELECT FROM q WHERE q.documents_per_month IS NOT NULL OR q.embedding_tokens_per_month IS NOT NULL)
			GROUP BY metric
		)
		SELECT q.documents_per_month, q.embedding_tokens_per_month, q.storage_bytes,
			CASE WHEN q.documents_per_month IS NOT NULL THEN
				coalesce((SELECT quantity FROM used WHERE metric = 'documents'), 0) +
				(SELECT count(*) FROM documents WHERE tenant_id = $1 AND status IN ('queued', 'processing')) END,
			CASE WHEN q.embedding_tokens_per_month IS NOT NULL THEN coalesce((SELECT quantity FROM used WHERE metric = 'embedding_tokens'), 0) END,
			CASE WHEN q.storage_bytes IS NOT NULL THEN
				coalesce((SELECT sum(bytes)::bigint FROM (`+storageQuery+`) st WHERE st.tenant_id = $1), 0) END
		FROM q`, tenantID, month).Scan(&q.DocumentsPerMonth, &q.EmbeddingTokensPerMonth, &q.StorageBytes, &docs, &tokens, &stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("docstore: check quota of tenant %s: %w", tenantID, err)
	}
	switch {
	case q.DocumentsPerMonth != nil && *docs+int64(n) > *q.DocumentsPerMonth:
		return &QuotaExceededError{Quota: "documents_per_month", Used: *docs, Limit: *q.DocumentsPerMonth}
	case q.EmbeddingTokensPerMonth != nil && *tokens >= *q.EmbeddingTokensPerMonth:
		return &QuotaExceededError{Quota: "embedding_tokens_per_month", Used: *tokens, Limit: *q.EmbeddingTokensPerMonth}
	case q.StorageBytes != nil && *stored >= *q.StorageBytes:
		return &QuotaExceededError{Quota: "storage_bytes", Used: *stored, Limit: *q.StorageBytes}
	}
	return nil
}
