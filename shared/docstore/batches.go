package docstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quirehq/quire/shared/job"
)

// Batch is a set of submissions accepted together (DESIGN §13). Its state is derived from its
// tasks by [Store.BatchStatus]; the row keeps only who submitted it and what for.
type Batch struct {
	ID          string
	TenantID    string
	AgentID     string
	CallbackURL string // receives batch.completed
	Metadata    []byte // a JSON object, or nil
	CreatedAt   time.Time
}

// insertBatchDocument is InsertDocument's statement: the documents row and its task.
const insertBatchDocument = `
	WITH ins AS (
		INSERT INTO documents (tenant_id, agent_id, kind, filename, url, content_type, size_bytes, sha256, status, task_id, priority, job, metadata)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14)
		RETURNING id, created_at, updated_at
	), task AS (` + insertDocumentTask + `)
	SELECT id, created_at, updated_at FROM ins`

// InsertBatch records b and its documents (status queued) with their tasks, all in one
// transaction: either every row is written or none. The tasks are PENDING and unpublished,
// for the caller to publish (and the sweeper, should it stop first). It sets the IDs and
// timestamps of b and docs.
func (s *Store) InsertBatch(ctx context.Context, b *Batch, docs []*Document) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var cb *string
		if b.CallbackURL != "" {
			cb = &b.CallbackURL
		}
		if err := tx.QueryRow(ctx, `INSERT INTO batches (batch_id, tenant_id, agent_id, callback_url, metadata)
			VALUES ($1, $2, $3, $4, $5) RETURNING created_at`, b.ID, b.TenantID, b.AgentID, cb, jsonOrNull(b.Metadata)).Scan(&b.CreatedAt); err != nil {
			return err
		}
		var pb pgx.Batch
		taskIDs := make([]string, len(docs))
		for i, d := range docs {
			if d.Status == "" {
				d.Status = job.DocQueued
			}
			taskIDs[i] = d.TaskID
			pb.Queue(insertBatchDocument, d.TenantID, d.AgentID, d.Kind, d.Filename, d.URL, d.ContentType, d.SizeBytes, d.SHA256,
				d.Status, d.TaskID, d.Priority, jsonOrNull(d.Job), documentPayload(d), metadataOrEmpty(d.Metadata)).QueryRow(func(row pgx.Row) error {
				return row.Scan(&d.ID, &d.CreatedAt, &d.UpdatedAt)
			})
		}
		if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE tasks SET batch_id = $1 WHERE task_id = ANY($2)`, b.ID, taskIDs)
		return err
	})
	if err != nil {
		return fmt.Errorf("docstore: insert batch of %d: %w", len(docs), err)
	}
	return nil
}

// BatchStatus returns the status of tenant's batch id as JSON (the batch_status function of
// migration 00031: batch_id, state, total, counts, progress, created_at, finished_at);
// job.ErrNotFound if tenant has no such batch.
func (s *Store) BatchStatus(ctx context.Context, tenantID, id string) ([]byte, error) {
	var st []byte
	err := s.pool.QueryRow(ctx, `SELECT batch_status(batch_id) FROM batches WHERE batch_id = $1 AND tenant_id = $2`, id, tenantID).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("docstore: batch %s: %w", id, job.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("docstore: batch %s: %w", id, err)
	}
	return st, nil
}

// BatchTasks returns the tasks of tenant's batch id in one of states (every task when none
// is given), oldest first; job.ErrNotFound if tenant has no such batch.
func (s *Store) BatchTasks(ctx context.Context, tenantID, id string, states ...job.State) ([]*Task, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM batches WHERE batch_id = $1 AND tenant_id = $2)`, id, tenantID).Scan(&exists); err != nil {
		return nil, fmt.Errorf("docstore: batch %s tasks: %w", id, err)
	}
	if !exists {
		return nil, fmt.Errorf("docstore: batch %s tasks: %w", id, job.ErrNotFound)
	}
	ss := make([]string, len(states))
	for i, st := range states {
		ss[i] = string(st)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+taskColumns+` FROM tasks t
		WHERE t.batch_id = $1 AND t.tenant_id = $2 AND (cardinality($3::text[]) = 0 OR t.state = ANY($3))
		ORDER BY t.created_at, t.task_id`, id, tenantID, ss)
	if err != nil {
		return nil, fmt.Errorf("docstore: batch %s tasks: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Task, error) { return scanTask(r) })
	if err != nil {
		return nil, fmt.Errorf("docstore: batch %s tasks: %w", id, err)
	}
	return out, nil
}
