package docstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// CrawledPages returns the webpage documents of an agent that a crawl found (their job has a
// parent crawl), oldest first, at most limit: the pages a re-crawl that syncs may remove.
func (s *Store) CrawledPages(ctx context.Context, tenantID, agentID string, limit int) ([]*Document, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+documentColumns+` FROM documents
		WHERE tenant_id = $1 AND agent_id = $2 AND kind = 'webpage' AND job ->> 'parent_task_id' IS NOT NULL
		ORDER BY id LIMIT $3`, tenantID, agentID, limit)
	if err != nil {
		return nil, fmt.Errorf("docstore: crawled pages: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Document, error) { return scanDocument(r) })
	if err != nil {
		return nil, fmt.Errorf("docstore: crawled pages: %w", err)
	}
	return out, nil
}
