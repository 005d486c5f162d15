package docstore

import (
	"context"
	"fmt"
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
