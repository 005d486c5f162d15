package docstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cross-tenant reads for the operator dashboard (the admin token sees every tenant). Nothing
// here is reachable with a tenant token: the tenant-scoped API uses the methods that take a
// tenant id.

// AdminFilter selects documents across tenants for [Store.RecentDocuments]. Empty fields
// select everything.
type AdminFilter struct {
	TenantID string
	AgentID  string
	// Statuses keeps only documents with one of these statuses.
	Statuses []string
	// Priority keeps only documents queued on this priority ("high", "medium", "low").
	Priority string
	// Before keeps only documents with a smaller id (the cursor of the previous page).
	Before int64
	// Limit is the page size (default 50, at most 500).
	Limit int
}

// RecentDocuments lists documents of every tenant, newest first (by id, the primary key, so a
// page costs an index scan however large the table). It is the operator's list of recent tasks:
// every task has a documents row.
func (s *Store) RecentDocuments(ctx context.Context, f AdminFilter) ([]*Document, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	statuses := f.Statuses
	if statuses == nil {
		statuses = []string{}
	}
	rows, err := s.pool.Query(ctx, `SELECT `+documentColumns+` FROM documents
		WHERE ($1 = '' OR tenant_id = $1) AND ($2 = '' OR agent_id = $2)
		  AND (cardinality($3::text[]) = 0 OR status = ANY($3::text[]))
		  AND ($4 = '' OR priority = $4) AND ($5 = 0 OR id < $5)
		ORDER BY id DESC LIMIT $6`, f.TenantID, f.AgentID, statuses, f.Priority, f.Before, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("docstore: recent documents: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Document, error) { return scanDocument(r) })
	if err != nil {
		return nil, fmt.Errorf("docstore: recent documents: %w", err)
	}
	return out, nil
}

// FindTask returns the document of a task whatever its tenant; job.ErrNotFound if none.
func (s *Store) FindTask(ctx context.Context, taskID string) (*Document, error) {
	d, err := scanDocument(s.pool.QueryRow(ctx, `SELECT `+documentColumns+` FROM documents WHERE task_id = $1`, taskID))
	if err != nil {
		return nil, fmt.Errorf("docstore: find task %s: %w", taskID, err)
	}
	return d, nil
}

// AgentSummary counts the documents of one agent of one tenant by status.
type AgentSummary struct {
	TenantID   string
	AgentID    string
	Documents  int
	Queued     int // queued or processing
	Completed  int
	Failed     int
	Cancelled  int
	Chunks     int64
	LastUpload time.Time
}

// AgentSummaries counts every agent's documents and chunks, agents with the newest upload
// first, at most limit agents (default 100, at most 1000). It reads the whole documents table
// (one aggregate pass), which suits an operator page, not a hot path.
func (s *Store) AgentSummaries(ctx context.Context, tenantID string, limit int) ([]AgentSummary, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT tenant_id, agent_id, count(*),
			count(*) FILTER (WHERE status IN ('queued', 'processing')),
			count(*) FILTER (WHERE status = 'completed'),
			count(*) FILTER (WHERE status = 'failed'),
			count(*) FILTER (WHERE status = 'cancelled'),
			coalesce(sum(chunk_count), 0), max(created_at)
		FROM documents WHERE ($1 = '' OR tenant_id = $1)
		GROUP BY tenant_id, agent_id ORDER BY max(created_at) DESC, tenant_id, agent_id LIMIT $2`, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("docstore: agent summaries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AgentSummary, error) {
		var a AgentSummary
		err := r.Scan(&a.TenantID, &a.AgentID, &a.Documents, &a.Queued, &a.Completed, &a.Failed, &a.Cancelled, &a.Chunks, &a.LastUpload)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("docstore: agent summaries: %w", err)
	}
	return out, nil
}
