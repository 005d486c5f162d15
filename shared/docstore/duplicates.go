package docstore

import (
	"context"
	"fmt"
	"time"

	"github.com/quirehq/quire/shared/job"
)

// FindCompletedBySHA returns the newest completed uploaded document (kind document) of an
// agent of a tenant whose bytes have this SHA-256 (lower-case hex, as the upload records it),
// so a re-upload of the same file can answer with it instead of extracting and embedding
// again; job.ErrNotFound if there is none. Documents still queued or processing, failed or
// cancelled never match, and neither do web pages (their sha256 is that of their text).
// The caller decides whether a match embedded with another model (EmbeddingModel) counts.
func (s *Store) FindCompletedBySHA(ctx context.Context, tenantID, agentID, sha256 string) (*Document, error) {
	d, err := scanDocument(s.pool.QueryRow(ctx, `SELECT `+documentColumns+` FROM documents
		WHERE tenant_id = $1 AND agent_id = $2 AND sha256 = $3 AND sha256 <> '' AND kind = 'document' AND status = 'completed'
		ORDER BY id DESC LIMIT 1`, tenantID, agentID, sha256))
	if err != nil {
		return nil, fmt.Errorf("docstore: find completed document by sha256: %w", err)
	}
	return d, nil
}

// InsertUnlessDuplicate inserts d, an upload, like InsertDocument, unless FindCompletedBySHA
// finds a document of d's agent with d's bytes, embedded with model (any model when model is
// ""; a document without a model counts too). Then nothing is inserted and that document's id
// is returned; otherwise 0, with d's ID and timestamps set, and d's task recorded as by
// InsertDocument. Look-up and inserts are one statement, one round trip.
func (s *Store) InsertUnlessDuplicate(ctx context.Context, d *Document, model string) (int64, error) {
	if d.Status == "" {
		d.Status = job.DocQueued
	}
	var dupID, id *int64
	var created, updated *time.Time
	err := s.pool.QueryRow(ctx, `
		WITH newest AS (
			SELECT id, embedding_model FROM documents
			WHERE tenant_id = $1 AND agent_id = $2 AND sha256 = $8 AND sha256 <> '' AND kind = 'document' AND status = 'completed'
			ORDER BY id DESC LIMIT 1
		), dup AS (
			SELECT id FROM newest WHERE $13::text = '' OR embedding_model = '' OR embedding_model = $13::text
		), ins AS (
			INSERT INTO documents (tenant_id, agent_id, kind, filename, url, content_type, size_bytes, sha256, status, task_id, priority, job, metadata)
			SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::bigint, $8::text, $9::text, $10::text, $11::text, $12::jsonb, $15::jsonb
			WHERE NOT EXISTS (SELECT 1 FROM dup)
			RETURNING id, created_at, updated_at
		), task AS (
			INSERT INTO tasks (task_id, tenant_id, kind, priority, payload, state, document_id, created_at)
			SELECT $10::text, $1::text, $3::text, $11::text, $14::jsonb || jsonb_build_object('document_id', ins.id),
				`+taskStateOfStatus+`, ins.id, ins.created_at FROM ins
		)
		SELECT (SELECT id FROM dup), ins.id, ins.created_at, ins.updated_at FROM (VALUES (1)) AS one (x) LEFT JOIN ins ON true`,
		d.TenantID, d.AgentID, d.Kind, d.Filename, d.URL, d.ContentType, d.SizeBytes, d.SHA256, d.Status, d.TaskID, d.Priority, jsonOrNull(d.Job), model,
		documentPayload(d), metadataOrEmpty(d.Metadata),
	).Scan(&dupID, &id, &created, &updated)
	if err != nil {
		return 0, fmt.Errorf("docstore: insert document unless duplicate: %w", err)
	}
	if dupID != nil {
		return *dupID, nil
	}
	if id == nil || created == nil || updated == nil {
		return 0, fmt.Errorf("docstore: insert document unless duplicate: no row inserted")
	}
	d.ID, d.CreatedAt, d.UpdatedAt = *id, *created, *updated
	return 0, nil
}
