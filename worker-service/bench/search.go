package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/quirehq/quire/shared/docstore"
)

// The search figure: one agent's chunks generated straight into PostgreSQL with COPY (a
// Zipf-distributed vocabulary, clustered 384-dimension embeddings, 500 chunks per document,
// documents labelled so that a metadata filter selects 1% of them), then hybrid searches
// through docstore.Store.Search as the API runs them: p50/p99 latency unfiltered and with the
// 1% filter, the first queries right after the load, and recall@10 of the vector ranking
// against exact cosine similarity computed here.
const (
	searchDims      = 384
	searchClusters  = 1000
	searchVocab     = 30000
	chunkWords      = 120
	chunksPerDoc    = 500
	searchQueries   = 200
	recallQueries   = 50
	searchModel     = "bench-clustered-384"
	searchTenant    = "bench"
	searchAgent     = "big"
	filterShards    = 100 // metadata.shard takes 100 values: one of them is 1% of the chunks
	searchLoadBatch = 5000
)

// searchCorpus is the generated agent: its vectors (by chunk id) and what queries draw from.
type searchCorpus struct {
	words   []string
	zipf    *rand.Zipf
	rng     *rand.Rand
	centres [][]float32
	ids     []int64
	vecs    [][]float32
}

func newSearchCorpus(seed uint64) *searchCorpus {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	c := &searchCorpus{rng: r, zipf: rand.NewZipf(r, 1.07, 2, searchVocab-1)}
	syllables := []string{"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "do", "gi", "hu", "fe", "an", "or", "el", "is", "um", "ba"}
	seen := map[string]bool{}
	for len(c.words) < searchVocab {
		n := 1 + r.IntN(4)
		var b strings.Builder
		for range n {
			b.WriteString(syllables[r.IntN(len(syllables))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			c.words = append(c.words, w)
		}
	}
	c.centres = make([][]float32, searchClusters)
	for i := range c.centres {
		c.centres[i] = c.point(nil, 1)
	}
	return c
}

// point is a random vector: around centre with the given spread, or standard normal.
func (c *searchCorpus) point(centre []float32, spread float64) []float32 {
	v := make([]float32, searchDims)
	for d := range v {
		x := spread * c.rng.NormFloat64()
		if centre != nil {
			x += float64(centre[d])
		}
		v[d] = float32(x)
	}
	return v
}

func (c *searchCorpus) text(words int) string {
	var b strings.Builder
	for i := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.words[c.zipf.Uint64()])
	}
	return b.String()
}

// sketchBits is docstore's sign sketch of v (sketch.go), for the exact path's pre-filter.
func sketchBits(v []float32) (pos, neg pgtype.Bits) {
	n := (len(v) + 7) / 8
	p, m := make([]byte, n), make([]byte, n)
	for i, x := range v {
		bit := byte(0x80) >> (i % 8)
		switch {
		case x > 0 || x != x:
			p[i/8] |= bit
		case x < 0:
			m[i/8] |= bit
		}
	}
	return pgtype.Bits{Bytes: p, Len: int32(len(v)), Valid: true}, pgtype.Bits{Bytes: m, Len: int32(len(v)), Valid: true}
}

// load stores n chunks of the agent: documents first, then the chunks by COPY.
func (c *searchCorpus) load(ctx context.Context, pool *pgxpool.Pool, n int) error {
	docs := (n + chunksPerDoc - 1) / chunksPerDoc
	// Every documents row points at its task.
	if _, err := pool.Exec(ctx, `INSERT INTO tasks (task_id, tenant_id, kind, priority, payload, state, published_at, finished_at)
		SELECT 'bench-search-' || i, $1, 'document', 'high', '{}'::jsonb, 'SUCCESS', now(), now()
		FROM generate_series(0, $2 - 1) AS i`, searchTenant, docs); err != nil {
		return err
	}
	rows, err := pool.Query(ctx, `INSERT INTO documents (tenant_id, agent_id, kind, filename, status, task_id, chunk_count, embedding_model, metadata, completed_at)
		SELECT $1, $2, 'document', 'doc-' || i || '.txt', 'completed', 'bench-search-' || i, $3, $4,
			jsonb_build_object('shard', i % $5, 'lang', CASE WHEN i % 3 = 0 THEN 'de' ELSE 'en' END), now()
		FROM generate_series(0, $6 - 1) AS i ORDER BY i RETURNING id`, searchTenant, searchAgent, chunksPerDoc, searchModel, filterShards, docs)
	if err != nil {
		return err
	}
	docIDs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	cols := []string{"document_id", "tenant_id", "agent_id", "ordinal", "content", "token_count", "embedding", "embedding_pos", "embedding_neg", "embedding_model"}
	c.vecs = make([][]float32, 0, n)
	for start := 0; start < n; start += searchLoadBatch {
		batch := make([][]any, 0, searchLoadBatch)
		for i := start; i < min(start+searchLoadBatch, n); i++ {
			v := c.point(c.centres[c.rng.IntN(searchClusters)], 0.45)
			c.vecs = append(c.vecs, v)
			pos, neg := sketchBits(v)
			batch = append(batch, []any{docIDs[i/chunksPerDoc], searchTenant, searchAgent, i % chunksPerDoc, c.text(chunkWords), chunkWords, v, pos, neg, searchModel})
		}
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"chunks"}, cols, pgx.CopyFromRows(batch)); err != nil {
			return fmt.Errorf("copy chunks: %w", err)
		}
	}
	rows, err = pool.Query(ctx, `SELECT id FROM chunks WHERE tenant_id = $1 AND agent_id = $2 ORDER BY document_id, ordinal`, searchTenant, searchAgent)
	if err != nil {
		return err
	}
	c.ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	if err == nil && len(c.ids) != n {
		err = fmt.Errorf("%d chunks stored, want %d", len(c.ids), n)
	}
	return err
}

// exactTop is the k chunks most similar to q by cosine similarity, over every vector.
func (c *searchCorpus) exactTop(q []float32, k int) map[int64]bool {
	type scored struct {
		i   int
		sim float64
	}
	best := make([]scored, 0, k+1)
	var qn float64
	for _, x := range q {
		qn += float64(x) * float64(x)
	}
	for i, v := range c.vecs {
		var dot, vn float64
		for d, x := range v {
			dot += float64(x) * float64(q[d])
			vn += float64(x) * float64(x)
		}
		sim := dot / math.Sqrt(qn*vn)
		if len(best) == k && sim <= best[k-1].sim {
			continue
		}
		at, _ := slices.BinarySearchFunc(best, sim, func(s scored, t float64) int {
			if s.sim > t {
				return -1
			}
			return 1
		})
		best = slices.Insert(best, at, scored{i, sim})
		if len(best) > k {
			best = best[:k]
		}
	}
	out := map[int64]bool{}
	for _, b := range best {
		out[c.ids[b.i]] = true
	}
	return out
}

type searchRun struct {
	p50, p99, first time.Duration
	hits            float64 // mean hits per query
}

// measure runs queries hybrid searches; with common, their words are among the vocabulary's
// ten most frequent.
func (c *searchCorpus) measure(ctx context.Context, docs *docstore.Store, filter *docstore.Filter, queries int, common bool) (searchRun, error) {
	var lat []time.Duration
	var hits int
	for i := range queries {
		text := c.text(2 + i%5)
		if common {
			text = c.words[1+c.rng.IntN(10)] + " " + c.words[1+c.rng.IntN(10)]
		}
		q := docstore.SearchQuery{TenantID: searchTenant, AgentID: searchAgent, Model: searchModel, K: 10, Filter: filter,
			Text: text, Embedding: c.point(c.centres[c.rng.IntN(searchClusters)], 0.45)}
		start := time.Now()
		h, err := docs.Search(ctx, q)
		if err != nil {
			return searchRun{}, err
		}
		lat = append(lat, time.Since(start))
		hits += len(h)
	}
	first := lat[0]
	return searchRun{p50: percentile(lat, 50), p99: percentile(lat, 99), first: first, hits: float64(hits) / float64(queries)}, nil
}

func (c *searchCorpus) recall(ctx context.Context, docs *docstore.Store, filter *docstore.Filter) (float64, error) {
	var found, want int
	for range recallQueries {
		v := c.point(c.centres[c.rng.IntN(searchClusters)], 0.45)
		hits, err := docs.Search(ctx, docstore.SearchQuery{TenantID: searchTenant, AgentID: searchAgent, Model: searchModel, K: 10, Embedding: v, Filter: filter})
		if err != nil {
			return 0, err
		}
		exact := c.exactTop(v, 10)
		want += len(exact)
		for _, h := range hits {
			if exact[h.ChunkID] {
				found++
			}
		}
	}
	return float64(found) / float64(want), nil
}

// runSearch runs the search figure at each size.
func runSearch(ctx context.Context, e *env, sizes []int, logf func(string, ...any)) ([]row, error) {
	var rows []row
	for _, n := range sizes {
		url, err := e.newDB(ctx)
		if err != nil {
			return nil, err
		}
		docs, err := docstore.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			docs.Close()
			return nil, err
		}
		r, err := runSearchAt(ctx, docs, pool, n, logf)
		pool.Close()
		docs.Close()
		if err != nil {
			return nil, err
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

func runSearchAt(ctx context.Context, docs *docstore.Store, pool *pgxpool.Pool, n int, logf func(string, ...any)) ([]row, error) {
	hnsw, reason := docs.VectorIndex()
	if !hnsw {
		logf("search: no pgvector (%s): the vector ranking is exact", reason)
	}
	c := newSearchCorpus(uint64(n))
	start := time.Now()
	if err := c.load(ctx, pool, n); err != nil {
		return nil, err
	}
	loaded := time.Since(start)
	logf("search: %d chunks of one agent loaded with COPY in %v", n, loaded.Round(time.Millisecond))
	start = time.Now()
	if err := docs.EnsureVectorIndex(ctx, searchModel, searchDims); err != nil {
		return nil, err
	}
	built := time.Since(start)
	logf("search: HNSW index built in %v", built.Round(time.Millisecond))
	// A bulk load bypasses the writer, which refreshes the statistics after large writes.
	start = time.Now()
	analysed, err := docs.RefreshStatistics(ctx)
	if err != nil {
		return nil, err
	}
	logf("search: statistics refreshed (%v) in %v", analysed, time.Since(start).Round(time.Millisecond))
	// The first queries after the load, as a client right after a large ingest meets them.
	cold, err := c.measure(ctx, docs, nil, 5, false)
	if err != nil {
		return nil, err
	}
	logf("search: first 5 queries after the load: first %v, p50 %v, max %v", cold.first.Round(time.Millisecond), cold.p50.Round(time.Millisecond), cold.p99.Round(time.Millisecond))
	// Autovacuum vacuums the table after a large insert (migration 00012 makes it prompt):
	// the figures below are those of a vacuumed table.
	start = time.Now()
	if _, err := pool.Exec(ctx, `VACUUM chunks`); err != nil {
		return nil, err
	}
	logf("search: VACUUM chunks took %v", time.Since(start).Round(time.Millisecond))
	plain, err := c.measure(ctx, docs, nil, searchQueries, false)
	if err != nil {
		return nil, err
	}
	commonRun, err := c.measure(ctx, docs, nil, searchQueries/2, true)
	if err != nil {
		return nil, err
	}
	f, err := docstore.ParseFilter([]byte(fmt.Sprintf(`{"metadata.shard": %d}`, 7)))
	if err != nil {
		return nil, err
	}
	filtered, err := c.measure(ctx, docs, f, searchQueries, false)
	if err != nil {
		return nil, err
	}
	recall, err := c.recall(ctx, docs, nil)
	if err != nil {
		return nil, err
	}
	logf("search: %d chunks: hybrid p50 %v p99 %v; two common words p50 %v p99 %v; 1%% filter p50 %v p99 %v (%.1f hits); vector recall@10 %.3f",
		n, plain.p50, plain.p99, commonRun.p50, commonRun.p99, filtered.p50, filtered.p99, filtered.hits, recall)
	goal := 30.0
	if n >= 1_000_000 {
		goal = 50
	}
	label := fmt.Sprintf("%dk", n/1000)
	if n >= 1_000_000 {
		label = fmt.Sprintf("%gM", float64(n)/1e6)
	}
	return []row{
		{
			Figure: fmt.Sprintf("search, %s chunks of one agent: hybrid p50 / p99 (ms; %d queries of 2-6 Zipf words + a clustered vector; load %v by COPY, HNSW build %v)",
				label, searchQueries, loaded.Round(time.Second), built.Round(time.Second)),
			Quire: fmt.Sprintf("%.1f / %.1f", ms(plain.p50), ms(plain.p99)),
			Goal:  fmt.Sprintf("p50 ≤ %.0f ms", goal), Met: met(ms(plain.p50) <= goal),
		},
		{
			Figure: fmt.Sprintf("search, %s chunks: two of the ten most common words + a vector, p50 / p99 (ms)", label),
			Quire:  fmt.Sprintf("%.1f / %.1f", ms(commonRun.p50), ms(commonRun.p99)),
			Ratio:  fmt.Sprintf("%.2f× (p50)", ms(commonRun.p50)/ms(plain.p50)),
		},
		{
			Figure: fmt.Sprintf("search, %s chunks: with a filter matching 1%% of them, p50 / p99 (ms)", label),
			Quire:  fmt.Sprintf("%.1f / %.1f", ms(filtered.p50), ms(filtered.p99)),
			Ratio:  fmt.Sprintf("%.2f× unfiltered (p50)", ms(filtered.p50)/ms(plain.p50)),
			Goal:   "no slower than unfiltered", Met: met(filtered.p50 <= plain.p50+plain.p50/10),
		},
		{
			Figure: fmt.Sprintf("search, %s chunks: vector recall@10 against exact cosine similarity (%d queries)", label, recallQueries),
			Quire:  fmt.Sprintf("%.3f", recall), Goal: "≥ 0.95", Met: met(recall >= 0.95),
		},
		{
			Figure: fmt.Sprintf("search, %s chunks: the 5 first queries right after the load (statistics refreshed, not vacuumed): p50 / max (ms)", label),
			Quire:  fmt.Sprintf("%.0f / %.0f", ms(cold.p50), ms(cold.p99)),
		},
	}, nil
}

// searchSizes are the chunk counts of the search figure (-search-chunks).
var searchSizes []int

func parseCounts(v string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(v, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err != nil || n < chunksPerDoc {
			return nil, fmt.Errorf("search-chunks: %q is not a count of at least %d", f, chunksPerDoc)
		}
		out = append(out, n)
	}
	return out, nil
}
