package docstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Approximate vector search with pgvector, where the database has it.
//
// [Open] detects whether `CREATE EXTENSION vector` is possible (the extension is installed in
// the server and the role may create it, or it exists already). With it, chunks get the
// column embedding_vec, a stored generated column holding the chunk's embedding as a pgvector
// vector (NULL for no embedding, and for one pgvector cannot hold: NaN or infinite
// components), and search ranks by an HNSW index: one partial index per embeddings model and
// dimension (chunks.embedding_model, the length), created the first time the writer stores
// chunks of that model and length, or ahead of that by [Store.EnsureVectorIndex]. The index
// lives in the same PostgreSQL as the rows and changes in their transactions: API replicas
// have nothing to keep in sync. Without pgvector (or for more than 2,000 dimensions, HNSW's
// limit, or before a model's index exists) search stays exact, as [sketchIndex] does it.
//
// The column is added by Open rather than by a migration, so that the migrations run alike
// on servers with and without the extension; a server that gains pgvector later gets the
// column (and its values for stored chunks: the table is rewritten once) at the next Open.

// maxHNSWDims is the most dimensions an HNSW index of vector takes.
const maxHNSWDims = 2000

// HNSW search tuning: efSearch is the candidate list of a search (at least the depth a
// ranking contributes to the fusion); maxScanTuples bounds how far an iterative scan goes to
// find enough chunks that pass the agent's and the filter's conditions.
const (
	hnswEfSearch      = searchDepth
	hnswMaxScanTuples = 40000
)

// vectorLockKey serialises the services that enable pgvector or build its indexes.
const vectorLockKey = 0x71756972_65766563 // "quirevec"

// embeddingVecExpr is the generated column's expression: the embedding as a vector where
// pgvector can hold it.
const embeddingVecExpr = `CASE WHEN array_ndims(embedding) = 1 AND array_length(embedding, 1) BETWEEN 1 AND 16000
	AND array_position(embedding, NULL) IS NULL
	AND NOT (embedding && ARRAY['NaN'::real, 'Infinity'::real, '-Infinity'::real])
	THEN embedding::vector END`

// enableVector makes pgvector available to the store if it can: it reports whether chunks
// have embedding_vec, and if not, why.
func enableVector(ctx context.Context, pool *pgxpool.Pool) (bool, string, error) {
	var ok bool
	var reason string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(vectorLockKey)); err != nil {
			return err
		}
		var available, installed, column bool
		if err := tx.QueryRow(ctx, `SELECT
			EXISTS (SELECT FROM pg_available_extensions WHERE name = 'vector'),
			EXISTS (SELECT FROM pg_extension WHERE extname = 'vector'),
			EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname = 'embedding_vec' AND NOT attisdropped)`,
		).Scan(&available, &installed, &column); err != nil {
			return err
		}
		if !installed {
			if !available {
				reason = "the pgvector extension is not installed in this PostgreSQL server"
				return nil
			}
			if _, err := tx.Exec(ctx, `SAVEPOINT vector`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS vector`); err != nil {
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) {
					return err
				}
				reason = "CREATE EXTENSION vector failed: " + pgErr.Message
				_, err = tx.Exec(ctx, `ROLLBACK TO SAVEPOINT vector`)
				return err
			}
		}
		if !column {
			if _, err := tx.Exec(ctx, `ALTER TABLE chunks ADD COLUMN embedding_vec vector GENERATED ALWAYS AS (`+embeddingVecExpr+`) STORED`); err != nil {
				return err
			}
		}
		ok = true
		return nil
	})
	if err != nil {
		return false, "", fmt.Errorf("docstore: enable pgvector: %w", err)
	}
	return ok, reason, nil
}

// VectorIndex reports whether search can rank by pgvector HNSW indexes; if not, reason says
// why (search is then exact, reading every chunk of the agent).
func (s *Store) VectorIndex() (ok bool, reason string) { return s.vector, s.vectorReason }

// hnswIndexName is the name of the HNSW index of model's vectors of dims dimensions.
func hnswIndexName(model string, dims int) string {
	sum := sha256.Sum256([]byte(model))
	return "chunks_hnsw_" + hex.EncodeToString(sum[:6]) + "_" + strconv.Itoa(dims)
}

// EnsureVectorIndex creates the HNSW index of chunks embedded by model with dims dimensions
// if it does not exist yet (a no-op without pgvector, and beyond 2,000 dimensions). Building
// it blocks chunk writes meanwhile, for as long as it takes to index the chunks already stored
// with that model: call it at start-up for the configured model to build it before there are
// any. It waits at most 10 s for the lock on chunks (writers holding it), then fails.
func (s *Store) EnsureVectorIndex(ctx context.Context, model string, dims int) error {
	if !s.vector || model == "" || dims < 1 || dims > maxHNSWDims {
		return nil
	}
	name := hnswIndexName(model, dims)
	if _, ok := s.hnsw.Load(name); ok {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, q := range []string{`SET LOCAL lock_timeout = '10s'`, `SET LOCAL maintenance_work_mem = '256MB'`} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(vectorLockKey)); err != nil {
			return err
		}
		var ddl string
		if err := tx.QueryRow(ctx, `SELECT format('CREATE INDEX IF NOT EXISTS %I ON chunks USING hnsw ((embedding_vec::vector(%s)) vector_cosine_ops)
			WITH (m = 16, ef_construction = 64) WHERE embedding_model = %L AND vector_dims(embedding_vec) = %s', $1::text, $2::int, $3::text, $2::int)`,
			name, dims, model).Scan(&ddl); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, ddl)
		return err
	})
	if err != nil {
		return fmt.Errorf("docstore: vector index of %s (%d dimensions): %w", model, dims, err)
	}
	s.hnsw.Store(name, true)
	return nil
}

// hnswReady reports whether model's HNSW index of dims dimensions exists (created by this
// Store or any other).
func (s *Store) hnswReady(ctx context.Context, model string, dims int) (bool, error) {
	if !s.vector || model == "" || dims < 1 || dims > maxHNSWDims {
		return false, nil
	}
	name := hnswIndexName(model, dims)
	if _, ok := s.hnsw.Load(name); ok {
		return true, nil
	}
	var valid bool
	err := s.pool.QueryRow(ctx, `SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE c.relname = $1 AND i.indrelid = 'chunks'::regclass`, name).Scan(&valid)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("docstore: vector index of %s: %w", model, err)
	}
	if valid {
		s.hnsw.Store(name, true)
	}
	return valid, nil
}

// ensureVectorIndexOf creates the index the chunks of c need, after they are stored. It
// leaves a failure to the next writer (search stays exact until the index exists).
func (s *Store) ensureVectorIndexOf(ctx context.Context, model string, dims int) {
	_ = s.EnsureVectorIndex(context.WithoutCancel(ctx), model, dims)
}

// hnswIndex ranks an agent's chunks by cosine distance through pgvector's HNSW index of the
// query's model and dimension. The scan is iterative (hnsw.iterative_scan = relaxed_order):
// it goes on through the graph until it has found n chunks of the agent that pass the filter
// (or hnswMaxScanTuples were read), so a filter never leaves fewer hits than exist among
// those; where the agent's or the filter's chunks are few, the planner's estimate chooses
// the exact path (the chunks found by the agent's or the document's index, sorted by
// distance) instead.
type hnswIndex struct {
	pool *pgxpool.Pool
}

var _ vectorIndex = hnswIndex{}

// vectorLiteral renders v in pgvector's text form.
func vectorLiteral(v []float32) string {
	b := make([]byte, 0, len(v)*10+2)
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(x), 'g', -1, 32)
	}
	return string(append(b, ']'))
}

// hnswQuery is the statement of a ranking of n chunks through the HNSW index, with its
// arguments and the settings it runs with.
func hnswQuery(q SearchQuery, n int) (settings []string, query string, args sqlArgs) {
	dims := strconv.Itoa(len(q.Embedding))
	args = sqlArgs{q.TenantID, q.AgentID, q.Model, vectorLiteral(q.Embedding), n}
	docFilter := q.chunkFilter(&args)
	settings = []string{
		// The partial index's predicate holds only for the query's model as a constant.
		`SET LOCAL plan_cache_mode = force_custom_plan`,
		`SET LOCAL hnsw.ef_search = ` + strconv.Itoa(max(hnswEfSearch, n)),
		`SET LOCAL hnsw.iterative_scan = relaxed_order`,
		`SET LOCAL hnsw.max_scan_tuples = ` + strconv.Itoa(hnswMaxScanTuples),
	}
	query = `SELECT c.id, c.embedding_vec::vector(` + dims + `) <=> $4::text::vector(` + dims + `) AS dist FROM chunks c
		WHERE c.tenant_id = $1 AND c.agent_id = $2 AND c.embedding_model = $3 AND vector_dims(c.embedding_vec) = ` + dims + docFilter + `
		ORDER BY c.embedding_vec::vector(` + dims + `) <=> $4::text::vector(` + dims + `)
		LIMIT $5`
	return settings, query, args
}

// exactFilterChunks is the most chunks a filter may select for the vector ranking to compute
// all their distances instead of walking the HNSW graph.
const exactFilterChunks = 20000

// exactVectorQuery is hnswQuery's ranking computed exactly over the filter's chunks: the
// ORDER BY expression is not the index's, so the planner cannot walk the graph.
func exactVectorQuery(q SearchQuery, n int) (settings []string, query string, args sqlArgs) {
	dims := strconv.Itoa(len(q.Embedding))
	args = sqlArgs{q.TenantID, q.AgentID, q.Model, vectorLiteral(q.Embedding), n}
	query = `SELECT c.id, c.embedding_vec <=> $4::text::vector AS dist FROM chunks c
		WHERE c.tenant_id = $1 AND c.agent_id = $2 AND c.embedding_model = $3 AND vector_dims(c.embedding_vec) = ` + dims + `
` + q.chunkFilter(&args) + `
		ORDER BY dist LIMIT $5`
	return nil, query, args
}

func (x hnswIndex) nearest(ctx context.Context, q SearchQuery, n int) ([]int64, error) {
	settings, query, args := hnswQuery(q, n)
	if q.selective {
		// A filter that selects few chunks is answered exactly: their distances, sorted, cost
		// less than walking the graph past all the chunks it leaves out.
		settings, query, args = exactVectorQuery(q, n)
	}
	type scored struct {
		id   int64
		dist float64
	}
	var out []scored
	err := readNoJIT(ctx, x.pool, func(tx pgx.Tx) error {
		for _, set := range settings {
			if _, err := tx.Exec(ctx, set); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (scored, error) {
			var sc scored
			var dist *float64
			err := r.Scan(&sc.id, &dist)
			if dist != nil {
				sc.dist = *dist
			} else {
				sc.dist = 2 // a zero vector: no direction, ranked last
			}
			return sc, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("docstore: vector search: %w", err)
	}
	// relaxed_order may return neighbours slightly out of order.
	slices.SortStableFunc(out, func(a, b scored) int {
		if c := cmp.Compare(a.dist, b.dist); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	ids := make([]int64, len(out))
	for i, sc := range out {
		ids[i] = sc.id
	}
	return ids, nil
}

// vectorRanking picks the vector index of a query: HNSW where its index exists, the exact
// sketch scan otherwise.
func (s *Store) vectorRanking(ctx context.Context, q SearchQuery) (vectorIndex, error) {
	ok, err := s.hnswReady(ctx, q.Model, len(q.Embedding))
	if err != nil {
		return nil, err
	}
	if ok {
		return hnswIndex{pool: s.pool}, nil
	}
	return sketchIndex{pool: s.pool, candidates: vectorCandidates}, nil
}
