package docstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Search tuning. RRFK is the k of reciprocal rank fusion (Cormack et al.'s 60); Depth is how
// many chunks each ranking contributes to the fusion; VectorCandidates is how many chunks the
// sign-sketch scan hands to exact cosine scoring.
const (
	RRFK             = 60
	searchDepth      = 100
	vectorCandidates = 1000
	maxSearchK       = 50
	// textCandidates caps each candidate set of the full-text ranking, anyCandidates the set
	// of chunks holding any of the query's words (the weakest matches); commonWordRows is how
	// many chunks hold a common word (textRanking).
	textCandidates = 500
	anyCandidates  = 4 * searchDepth
	commonWordRows = 5000
)

// ErrBadQuery reports a search query that cannot be run (no text and no vector, K out of range).
var ErrBadQuery = errors.New("docstore: bad search query")

// SearchQuery asks for an agent's chunks best matching a text and its embedding.
type SearchQuery struct {
	TenantID, AgentID string
	// Text is matched with PostgreSQL full-text search ('simple' configuration: no stemming,
	// no stop words). A plain query (no quotes, no -word, no "or") matches chunks holding any of
	// its words, those holding all of them first; otherwise it follows websearch_to_tsquery.
	Text string
	// Embedding is Text embedded by Model; chunks of documents embedded by another model (or
	// to another length) are left out of the vector ranking. Nil: full-text ranking only.
	Embedding []float32
	Model     string
	// K is the number of hits (1..50, default 10).
	K int
	// Filter keeps only chunks of the documents it selects, inside both rankings; nil keeps all.
	Filter *Filter

	// filterDocs are the documents Filter selects, when they hold at most exactFilterChunks
	// chunks (Search finds them first): both rankings then read those documents' chunks only.
	filterDocs []int64
	selective  bool
}

// SearchHit is one chunk found by [Store.Search].
type SearchHit struct {
	ChunkID    int64  `json:"chunk_id"`
	DocumentID int64  `json:"document_id"`
	Filename   string `json:"filename"`
	URL        string `json:"url"`
	Title      string `json:"title"`
	Page       int    `json:"page"`
	Heading    string `json:"heading"`
	Ordinal    int    `json:"ordinal"`
	Content    string `json:"content"`
	// Metadata is the document's metadata object.
	Metadata json.RawMessage `json:"metadata"`
	// Score is the reciprocal rank fusion score: the sum over the two rankings of
	// 1/(60+rank), at most 2/61.
	Score float64 `json:"score"`
	// TextRank and VectorRank are the chunk's 1-based places in each ranking; 0 when it is
	// not among a ranking's first 100.
	TextRank   int `json:"text_rank,omitempty"`
	VectorRank int `json:"vector_rank,omitempty"`

	// Location is the chunk's position (see [ChunkRow.Location]); nil when it has none.
	Location json.RawMessage `json:"location"`
}

// Search returns the K chunks of one agent of one tenant that best match q: the full-text
// ranking (ts_rank) and the vector ranking (cosine similarity) each give their best 100, fused
// by reciprocal rank fusion. Another tenant's or agent's chunks never appear.
//
// The full-text ranking is exact. The vector ranking is exact while the agent has at most 1000
// chunks of the query's model; beyond that, exact cosine similarity ranks the 1000 chunks whose
// sign sketches agree best with the query's, so a chunk can be missed when its sketch ranks it
// lower than its true similarity would (see the recall figure in search_test.go). Both scans
// read every chunk of the agent: cost grows linearly with the agent's chunks.
func (s *Store) Search(ctx context.Context, q SearchQuery) ([]SearchHit, error) {
	if q.K == 0 {
		q.K = 10
	}
	q.Text = strings.TrimSpace(q.Text)
	if q.K < 1 || q.K > maxSearchK {
		return nil, fmt.Errorf("%w: k %d is not in 1..%d", ErrBadQuery, q.K, maxSearchK)
	}
	if q.Text == "" && len(q.Embedding) == 0 {
		return nil, fmt.Errorf("%w: no text and no embedding", ErrBadQuery)
	}
	if !q.Filter.IsZero() {
		var err error
		if q.filterDocs, q.selective, err = s.selectiveFilter(ctx, q); err != nil {
			return nil, err
		}
	}
	// The two rankings run at once, on two connections.
	var text, vector []int64
	var textErr, vectorErr error
	var wg sync.WaitGroup
	if q.Text != "" {
		wg.Go(func() { text, textErr = s.textRanking(ctx, q, searchDepth) })
	}
	if len(q.Embedding) > 0 {
		wg.Go(func() {
			var x vectorIndex
			if x, vectorErr = s.vectorRanking(ctx, q); vectorErr == nil {
				vector, vectorErr = x.nearest(ctx, q, searchDepth)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(textErr, vectorErr); err != nil {
		return nil, err
	}
	hits := fuse(text, vector, q.K)
	if len(hits) == 0 {
		return []SearchHit{}, nil
	}
	return s.hitDetails(ctx, q.TenantID, hits)
}

// fuse merges rankings by reciprocal rank fusion and keeps the best k; ties go to the
// smaller chunk id, so results are stable.
func fuse(text, vector []int64, k int) []SearchHit {
	byID := map[int64]*SearchHit{}
	add := func(ids []int64, set func(h *SearchHit, rank int)) {
		for i, id := range ids {
			h := byID[id]
			if h == nil {
				h = &SearchHit{ChunkID: id}
				byID[id] = h
			}
			h.Score += 1 / float64(RRFK+i+1)
			set(h, i+1)
		}
	}
	add(text, func(h *SearchHit, r int) { h.TextRank = r })
	add(vector, func(h *SearchHit, r int) { h.VectorRank = r })
	out := make([]SearchHit, 0, len(byID))
	for _, h := range byID {
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b SearchHit) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ChunkID, b.ChunkID)
	})
	return out[:min(k, len(out))]
}

// plainQuery reports whether text uses none of websearch_to_tsquery's operators.
func plainQuery(text string) bool {
	if strings.Contains(text, `"`) {
		return false
	}
	for _, w := range strings.Fields(text) {
		if strings.HasPrefix(w, "-") || strings.EqualFold(w, "or") {
			return false
		}
	}
	return true
}

// anyMatch is the candidate condition of the chunks holding any of the query's words.
const anyMatch = "c.tsv @@ tq.q_any"

// textRanking returns the ids of the agent's n best full-text matches for q.Text.
//
// Each ranking reads at most textCandidates chunks per candidate set (anyCandidates of those
// holding any word), so that its cost does not grow with the agent: chunks holding every word
// of the query first (when there are n of them, the others need not be read), then chunks
// holding any of them. A word that more than
// commonWordRows chunks hold (by the table's statistics, see [Store.commonWords]) is a common
// word: a plain query that has rarer words too first ranks the chunks holding those, and reads
// the common words' chunks only when they are fewer than n. Where a candidate set is larger
// than textCandidates, the chunks ranked are the first found, not necessarily the best.
func (s *Store) textRanking(ctx context.Context, q SearchQuery, n int) ([]int64, error) {
	return s.textRankingExplain(ctx, q, n, nil)
}

// textRankingExplain is textRanking; explain, if set, sees each statement before it runs.
func (s *Store) textRankingExplain(ctx context.Context, q SearchQuery, n int, explain func(query string, args []any)) ([]int64, error) {
	// all: websearch_to_tsquery (every word, phrases, negations); any: an OR of the query's
	// words, for plain queries only; rare: an OR of the query's words that are not common.
	plain := plainQuery(q.Text)
	anyExpr := `websearch_to_tsquery('simple', $3)`
	if plain {
		anyExpr = `(SELECT quire_tsquery_or(plainto_tsquery('simple', lex))
			FROM unnest(tsvector_to_array(to_tsvector('simple', $3))) AS lex)`
	}
	common := s.commonWords(ctx)
	args := sqlArgs{q.TenantID, q.AgentID, q.Text, n, textCandidates, common}
	docFilter := q.chunkFilter(&args)
	candidates := func(match string) string {
		limit := "$5"
		if match == anyMatch {
			limit = strconv.Itoa(anyCandidates)
		}
		return `(SELECT c.id FROM chunks c, tq WHERE c.tenant_id = $1 AND c.agent_id = $2 AND tq.q_any IS NOT NULL AND ` +
			match + docFilter + ` LIMIT ` + limit + `)`
	}
	query := func(matches []string) string {
		sets := make([]string, len(matches))
		for i, m := range matches {
			sets[i] = candidates(m)
		}
		// NOT MATERIALIZED: each use of tq is a subquery whose value the planner can give a GIN
		// index as its search condition.
		return `WITH tq AS NOT MATERIALIZED (SELECT websearch_to_tsquery('simple', $3) AS q_all, ` + anyExpr + ` AS q_any,
			(SELECT quire_tsquery_or(plainto_tsquery('simple', lex))
				FROM unnest(tsvector_to_array(to_tsvector('simple', $3))) AS lex WHERE lex <> ALL ($6::text[])) AS q_rare)
		SELECT x.id FROM chunks x, tq WHERE x.id IN (` + strings.Join(sets, " UNION ") + `)
		ORDER BY x.tsv @@ tq.q_all DESC, ts_rank(x.tsv, tq.q_any, 1) DESC, x.id
		LIMIT $4`
	}
	var ids []int64
	err := readNoJIT(ctx, s.pool, func(tx pgx.Tx) error {
		stages := [][]string{{"c.tsv @@ tq.q_all"}, {"c.tsv @@ tq.q_all", anyMatch}}
		if plain && len(common) > 0 {
			var words, commonHeld int
			if err := tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE lex = ANY ($2::text[]))
				FROM unnest(tsvector_to_array(to_tsvector('simple', $1))) AS lex`, q.Text, common).Scan(&words, &commonHeld); err != nil {
				return err
			}
			if commonHeld > 0 && commonHeld < words {
				rare := "c.tsv @@ tq.q_rare"
				stages = [][]string{{rare}, {rare, "c.tsv @@ tq.q_all"}, {rare, "c.tsv @@ tq.q_all", anyMatch}}
			}
		}
		for _, matches := range stages {
			if explain != nil {
				explain(query(matches), args)
			}
			rows, err := tx.Query(ctx, query(matches), args...)
			if err != nil {
				return err
			}
			if ids, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil || len(ids) >= n {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("docstore: full-text search: %w", err)
	}
	return ids, nil
}

// readNoJIT runs f in a read-only transaction without JIT compilation: these queries call
// functions over every row of an agent, and compiling them costs more than it saves (about a
// second at 100k chunks).
func readNoJIT(ctx context.Context, pool *pgxpool.Pool, f func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL jit = off"); err != nil {
			return err
		}
		return f(tx)
	})
}

// vectorIndex ranks an agent's chunks by similarity to a query vector. sketchIndex, which
// needs no extension, is the implementation every test here runs; an approximate index such as
// pgvector's HNSW would be another where the extension exists.
type vectorIndex interface {
	nearest(ctx context.Context, q SearchQuery, n int) ([]int64, error)
}

// sketchIndex scans the sign sketches of the agent's chunks of the query's model (from
// chunks_sketch_idx; the length test sits in the ORDER BY so that the planner estimates the
// agent's row count right and hash-joins documents), keeps the candidates whose sketches agree best with the query's
// (ternary dot product over the square root of the chunk's non-zero count), and ranks those
// by exact cosine similarity, computed here.
type sketchIndex struct {
	pool       *pgxpool.Pool
	candidates int
}

var _ vectorIndex = sketchIndex{}

func (x sketchIndex) nearest(ctx context.Context, q SearchQuery, n int) ([]int64, error) {
	pos, neg := signBits(q.Embedding)
	type scored struct {
		id  int64
		sim float64
	}
	var out []scored
	args := sqlArgs{q.TenantID, q.AgentID, q.Model, len(q.Embedding), pos, neg, x.candidates}
	filter := q.Filter.where(&args)
	err := readNoJIT(ctx, x.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id
			WHERE c.tenant_id = $1 AND c.agent_id = $2 AND d.tenant_id = $1 AND d.agent_id = $2 AND d.embedding_model = $3
				AND `+filter+`
			ORDER BY CASE WHEN length(c.embedding_pos) = $4 THEN
				(bit_count(c.embedding_pos & $5::bit varying) + bit_count(c.embedding_neg & $6::bit varying)
				- bit_count(c.embedding_pos & $6::bit varying) - bit_count(c.embedding_neg & $5::bit varying))::float8
				/ sqrt(greatest(bit_count(c.embedding_pos) + bit_count(c.embedding_neg), 1)) END DESC NULLS LAST, c.id
			LIMIT $7`, args...)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT id, embedding FROM chunks WHERE id = ANY($1)`, ids)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (scored, error) {
			var sc scored
			var e []float32
			if err := r.Scan(&sc.id, &e); err != nil {
				return sc, err
			}
			if len(e) != len(q.Embedding) {
				sc.id = 0 // another length: not comparable
			}
			sc.sim = cosine(q.Embedding, e)
			return sc, nil
		})
		return err
	})
	out = slices.DeleteFunc(out, func(sc scored) bool { return sc.id == 0 })
	if err != nil {
		return nil, fmt.Errorf("docstore: vector search: %w", err)
	}
	slices.SortFunc(out, func(a, b scored) int {
		if c := cmp.Compare(b.sim, a.sim); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	ids := make([]int64, 0, min(n, len(out)))
	for _, sc := range out[:min(n, len(out))] {
		ids = append(ids, sc.id)
	}
	return ids, nil
}

// cosine is the cosine similarity of a and b; 0 when either is zero or their lengths differ.
func cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// hitDetails fills in the chunk and document fields of hits, keeping their order.
func (s *Store) hitDetails(ctx context.Context, tenantID string, hits []SearchHit) ([]SearchHit, error) {
	ids := make([]int64, len(hits))
	for i, h := range hits {
		ids[i] = h.ChunkID
	}
	rows, err := s.pool.Query(ctx, `
		SELECT c.id, c.document_id, d.filename, d.url, d.title, c.page, c.heading, c.location::text, c.ordinal, c.content, d.metadata
		FROM chunks c JOIN documents d ON d.id = c.document_id
		WHERE c.id = ANY($1) AND c.tenant_id = $2 AND d.tenant_id = $2`, ids, tenantID)
	if err != nil {
		return nil, fmt.Errorf("docstore: search hits: %w", err)
	}
	defer rows.Close()
	at := make(map[int64]int, len(hits))
	for i, h := range hits {
		at[h.ChunkID] = i
	}
	found := make([]bool, len(hits))
	for rows.Next() {
		var id int64
		var h SearchHit
		var loc *string
		if err := rows.Scan(&id, &h.DocumentID, &h.Filename, &h.URL, &h.Title, &h.Page, &h.Heading, &loc, &h.Ordinal, &h.Content, &h.Metadata); err != nil {
			return nil, fmt.Errorf("docstore: search hits: %w", err)
		}
		i := at[id]
		hits[i].DocumentID, hits[i].Filename, hits[i].URL, hits[i].Title = h.DocumentID, h.Filename, h.URL, h.Title
		hits[i].Page, hits[i].Heading, hits[i].Ordinal, hits[i].Content = h.Page, h.Heading, h.Ordinal, h.Content
		hits[i].Metadata = h.Metadata
		found[i] = true
		if loc != nil {
			hits[i].Location = json.RawMessage(*loc)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("docstore: search hits: %w", err)
	}
	// A chunk deleted between ranking and reading is dropped.
	out := hits[:0]
	for i, h := range hits {
		if found[i] {
			out = append(out, h)
		}
	}
	return out, nil
}

// selectiveFilter returns the documents q.Filter selects and true when they hold at most
// exactFilterChunks chunks; otherwise false.
func (s *Store) selectiveFilter(ctx context.Context, q SearchQuery) ([]int64, bool, error) {
	limit := exactFilterChunks
	if s.exactFilterChunks != 0 {
		limit = s.exactFilterChunks
	}
	if limit < 0 {
		return nil, false, nil
	}
	args := sqlArgs{q.TenantID, q.AgentID, limit}
	var ids []int64
	var chunks int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}'), coalesce(sum(chunk_count), 0) FROM (
		SELECT d.id, d.chunk_count FROM documents d WHERE d.tenant_id = $1 AND d.agent_id = $2 AND `+q.Filter.where(&args)+`
		LIMIT $3 + 1) AS sel`, args...).Scan(&ids, &chunks)
	if err != nil {
		return nil, false, fmt.Errorf("docstore: search filter: %w", err)
	}
	if len(ids) > limit || chunks > int64(limit) {
		return nil, false, nil
	}
	return ids, true, nil
}

// chunkFilter is the condition on chunks c that keeps the chunks of q.Filter's documents
// ("" for no filter), binding its values after args'.
func (q SearchQuery) chunkFilter(args *sqlArgs) string {
	switch {
	case q.Filter.IsZero():
		return ""
	case q.selective:
		return ` AND c.document_id = ANY(` + args.add(q.filterDocs) + `::bigint[])`
	}
	return ` AND c.document_id IN (SELECT d.id FROM documents d WHERE d.tenant_id = $1 AND d.agent_id = $2 AND ` +
		q.Filter.where(args) + `)`
}
