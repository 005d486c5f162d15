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
