package docstore

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ExplainVectorRanking returns PostgreSQL's plan of the HNSW ranking of q's n best chunks.
func (s *Store) ExplainVectorRanking(ctx context.Context, q SearchQuery, n int) (string, error) {
	settings, query, args := hnswQuery(q, n)
	var plan []string
	err := readNoJIT(ctx, s.pool, func(tx pgx.Tx) error {
		for _, set := range settings {
			if _, err := tx.Exec(ctx, set); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, "EXPLAIN "+query, args...)
		if err != nil {
			return err
		}
		plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return strings.Join(plan, "\n"), err
}

// ExplainTextRanking returns the plans of the statements of the full-text ranking of q.
func (s *Store) ExplainTextRanking(ctx context.Context, q SearchQuery) (string, error) {
	var out []string
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx)
	if !q.Filter.IsZero() {
		if q.filterDocs, q.selective, err = s.selectiveFilter(ctx, q); err != nil {
			return "", err
		}
	}
	_, err = s.textRankingExplain(ctx, q, 100, func(query string, args []any) {
		rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+query, args...)
		if err != nil {
			out = append(out, err.Error())
			return
		}
		plan, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		out = append(out, strings.Join(plan, "\n"))
	})
	return strings.Join(out, "\n----\n"), err
}

// SetExactFilterChunks sets how many chunks a filter may select for search to read only
// its documents' chunks; -1: never.
func (s *Store) SetExactFilterChunks(n int) { s.exactFilterChunks = n }
