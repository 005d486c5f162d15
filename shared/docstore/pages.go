package docstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/quirehq/quire/shared/job"
)

// Web pages are documents of kind webpage with their URL recorded. A crawl keeps one document
// per page of an agent and refreshes it on the next crawl (see [Store.RequeuePage]), so a
// re-crawl replaces a page's chunks instead of adding a second copy. For a web page, sha256
// is the SHA-256 of the extracted text the stored chunks were made from (not of the fetched
// bytes, which change with every ad or timestamp): a refetch whose text hashes the same keeps
// its chunks ([Store.KeepPage]).

// LatestPage returns the newest webpage document of an agent with exactly this URL;
// job.ErrNotFound if there is none.
func (s *Store) LatestPage(ctx context.Context, tenantID, agentID, url string) (*Document, error) {
	d, err := scanDocument(s.pool.QueryRow(ctx, `SELECT `+documentColumns+` FROM documents
		WHERE tenant_id = $1 AND agent_id = $2 AND kind = 'webpage' AND url = $3
		ORDER BY id DESC LIMIT 1`, tenantID, agentID, url))
	if err != nil {
		return nil, fmt.Errorf("docstore: page %s: %w", url, err)
	}
	return d, nil
}

// RequeuePage hands the page document d (as read by [Store.LatestPage]) to a new task: the
// row takes taskID and priority, becomes queued and unpublished, and its error is cleared.
// Its chunks, sha256 and chunk count stay (the page stays searchable) until the new job
// replaces or keeps them. It fails with job.ErrConflict when a job is on the page (queued or
// processing) or the row changed since d was read, and job.ErrNotFound when it was deleted.
func (s *Store) RequeuePage(ctx context.Context, d *Document, taskID, priority string) error {
	return s.RequeuePageJob(ctx, d, &job.Job{
		TaskID: taskID, Kind: job.KindWebpage, TenantID: d.TenantID, AgentID: d.AgentID,
		Priority: job.Priority(priority), URL: d.URL,
	})
}

// RequeuePageJob is [Store.RequeuePage] for the webpage job j (task id and priority j's): the
// same statement records j's task, its payload j with the row's document id.
func (s *Store) RequeuePageJob(ctx context.Context, d *Document, j *job.Job) error {
	j.V, j.DocumentID = job.Version, d.ID
	payload, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("docstore: requeue page %d: %w", d.ID, err)
	}
	taskID, priority := j.TaskID, string(j.Priority)
	tag, err := s.pool.Exec(ctx, `WITH d AS (
			UPDATE documents SET task_id = $3, priority = $4, status = 'queued', error = '',
				published_at = NULL, completed_at = NULL, updated_at = now()
			WHERE id = $1 AND task_id = $2 AND kind = 'webpage' AND status NOT IN ('queued', 'processing')
			RETURNING id, tenant_id
		), t AS (
			INSERT INTO tasks (task_id, tenant_id, kind, priority, payload, document_id)
			SELECT $3, d.tenant_id, 'webpage', $4, $5::jsonb, d.id FROM d
		)
		SELECT FROM d`,
		d.ID, d.TaskID, taskID, priority, string(payload))
	if err != nil {
		return fmt.Errorf("docstore: requeue page %d: %w", d.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("docstore: requeue page %d: busy or changed: %w", d.ID, job.ErrConflict)
	}
	return nil
}

// RestorePage undoes [Store.RequeuePage] for a job that was not published after all: the
// row gets back d's task id, priority, status, error and timestamps, provided it is still
// held by taskID; taskID's task is removed if its job was never published. It restores a
// document of any kind handed to a new task (a re-index too).
func (s *Store) RestorePage(ctx context.Context, d *Document, taskID string) error {
	_, err := s.pool.Exec(ctx, `WITH d AS (
			UPDATE documents SET task_id = $2, priority = $3, status = $4, error = $5,
				published_at = $6, completed_at = $7, updated_at = now()
			WHERE id = $1 AND task_id = $8 RETURNING id
		)
		DELETE FROM tasks WHERE task_id = $8 AND published_at IS NULL AND EXISTS (SELECT FROM d)`,
		d.ID, d.TaskID, d.Priority, d.Status, d.Error, d.PublishedAt, d.CompletedAt, taskID)
	if err != nil {
		return fmt.Errorf("docstore: restore page %d: %w", d.ID, err)
	}
	return nil
}

// RecordPageContent records, after [Store.Complete], what a web page's chunks were made
// from: the SHA-256 (hex) of its extracted text, and the media type and size of the fetched
// body.
func (s *Store) RecordPageContent(ctx context.Context, id int64, sha256, contentType string, size int64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE documents SET sha256 = $2, content_type = $3, size_bytes = $4, updated_at = now()
		WHERE id = $1`, id, sha256, contentType, size); err != nil {
		return fmt.Errorf("docstore: record page %d content: %w", id, err)
	}
	return nil
}

// KeepPage marks document id completed without touching its chunks, for a page whose text
// did not change since they were stored, and its task SUCCESS, in one statement; the title is
// updated. It fails like [Store.Complete]: job.ErrConflict if the document was cancelled,
// job.ErrNotFound if it was deleted.
func (s *Store) KeepPage(ctx context.Context, id int64, title string) error {
	tag, err := s.pool.Exec(ctx, `WITH d AS (
			UPDATE documents SET status = 'completed', title = $2, error = '',
				updated_at = now(), completed_at = now() WHERE id = $1 AND status <> 'cancelled' RETURNING task_id
		), t AS (
			UPDATE tasks SET state = 'SUCCESS', error = '', finished_at = now()
			FROM d WHERE tasks.task_id = d.task_id AND tasks.state <> 'REVOKED'
		)
		SELECT FROM d`, id, title)
	if err != nil {
		return fmt.Errorf("docstore: keep page %d: %w", id, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM documents WHERE id = $1`, id).Scan(&n); err != nil {
		return fmt.Errorf("docstore: keep page %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("docstore: keep page %d: %w", id, job.ErrNotFound)
	}
	return fmt.Errorf("docstore: keep page %d: cancelled: %w", id, job.ErrConflict)
}
