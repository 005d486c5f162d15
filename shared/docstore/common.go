package docstore

import (
	"context"
	"slices"
	"time"
)

// commonWordsTTL is how long [Store.commonWords] keeps what it read from the statistics.
const commonWordsTTL = time.Minute

// commonWords returns the lexemes that more than commonWordRows chunks hold, as PostgreSQL's
// statistics of chunks.tsv estimate them (its most common elements and their frequencies,
// times the table's row count): none before the table was first analysed. It reads them at
// most once a minute; when reading fails it answers none (every word then counts as rare).
func (s *Store) commonWords(ctx context.Context) []string {
	s.commonMu.Lock()
	defer s.commonMu.Unlock()
	if time.Since(s.commonAt) < commonWordsTTL {
		return s.common
	}
	s.commonAt = time.Now()
	var words []string
	var freqs []float64
	var rows float64
	err := s.pool.QueryRow(ctx, `SELECT st.most_common_elems::text::text[], st.most_common_elem_freqs, greatest(c.reltuples, 0)
		FROM pg_stats st JOIN pg_class c ON c.relname = st.tablename AND c.relnamespace = st.schemaname::regnamespace
		WHERE st.tablename = 'chunks' AND st.attname = 'tsv' AND st.schemaname = current_schema()`).Scan(&words, &freqs, &rows)
	if err != nil || len(freqs) < len(words) {
		s.common = nil
		return nil
	}
	var common []string
	for i, w := range words {
		if freqs[i]*rows > commonWordRows {
			common = append(common, w)
		}
	}
	slices.Sort(common)
	s.common = common
	return common
}
