package docstore

import (
	"context"
	"fmt"
	"time"
)

// Statistics after large writes. PostgreSQL plans search by its statistics of chunks; a table
// that grew far beyond them (a large ingest before autovacuum's next analysis) gets plans made
// for a few rows: the full-text ranking then reads every chunk of the agent (47 s for the
// first queries after a 325k-chunk ingest, before this), and common words are not known as
// such (common.go).
const (
	// statisticsCheckEvery is how often a Store's writer looks at the table's changes.
	statisticsCheckEvery = 30 * time.Second
	// analyzeMinRows and analyzeFraction: chunks is analysed once more rows changed since its
	// last analysis than the larger of the two.
	analyzeMinRows  = 10000
	analyzeFraction = 0.1
	// statisticsLockKey lets one service at a time analyse the table.
	statisticsLockKey = 0x71756972_65737461 // "quiresta"
)

// RefreshStatistics analyses chunks (ANALYZE) when more of its rows changed since its last
// analysis (by autovacuum or here) than max(10,000, 10% of its rows), unless another service
// is analysing it at the moment; it reports whether it did. The writer ([Store.Complete],
// [Store.ReplaceEmbeddings]) calls it at most every 30 s; a bulk load that bypasses the writer
// should call it once done. An analysis of a large table takes seconds.
func (s *Store) RefreshStatistics(ctx context.Context) (bool, error) {
	var changed, rows int64
	if err := s.pool.QueryRow(ctx, `SELECT n_mod_since_analyze, n_live_tup FROM pg_stat_user_tables
		WHERE relid = 'chunks'::regclass`).Scan(&changed, &rows); err != nil {
		return false, fmt.Errorf("docstore: chunk statistics: %w", err)
	}
	if float64(changed) <= max(analyzeMinRows, analyzeFraction*float64(rows)) {
		return false, nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("docstore: chunk statistics: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(statisticsLockKey)).Scan(&locked); err != nil || !locked {
		return false, err
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(statisticsLockKey))
	}()
	if _, err := conn.Exec(ctx, `ANALYZE chunks`); err != nil {
		return false, fmt.Errorf("docstore: analyze chunks: %w", err)
	}
	s.commonMu.Lock()
	s.commonAt = time.Time{} // read the new common words at the next search
	s.commonMu.Unlock()
	return true, nil
}

// refreshStatisticsAfterWrite is the writer's RefreshStatistics, at most every 30 s per Store.
// A failure is left to the next check (autovacuum analyses the table meanwhile).
func (s *Store) refreshStatisticsAfterWrite(ctx context.Context) {
	s.statsMu.Lock()
	due := time.Since(s.statsAt) >= statisticsCheckEvery
	if due {
		s.statsAt = time.Now()
	}
	s.statsMu.Unlock()
	if due {
		_, _ = s.RefreshStatistics(context.WithoutCancel(ctx))
	}
}
