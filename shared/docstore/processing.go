package docstore

import (
	"context"
	"fmt"
)

// MarkProcessingMany moves the documents among ids that are still queued to processing, in
// one statement: the batched form of StartProcessing's mark for jobs on their first run. A
// document that moved on meanwhile (completed, failed or cancelled before its mark was
// written) keeps its state.
func (s *Store) MarkProcessingMany(ctx context.Context, ids []int64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE documents SET status = 'processing', error = '', updated_at = now()
		WHERE id = ANY($1) AND status = 'queued'`, ids); err != nil {
		return fmt.Errorf("docstore: mark %d documents processing: %w", len(ids), err)
	}
	return nil
}
