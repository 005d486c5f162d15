package docstore_test

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/quirehq/quire/shared/docstore"
)

// requirePGVector fails (CI set) or skips the test when s cannot use pgvector, saying how to
// install it.
func requirePGVector(t *testing.T, s *docstore.Store) {
	t.Helper()
	if ok, reason := s.VectorIndex(); !ok {
		msg := "pgvector is not available (" + reason + "); install it into the PostgreSQL the tests use with: sudo tools/test-tools.sh"
		if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
			t.Fatal(msg + " (CI is set: .ci/run must install it)")
		}
		t.Skip(msg)
	}
}

// clustered returns n unit vectors of dims dimensions around k random centres.
func clustered(r *rand.Rand, n, dims, k int, spread float64) [][]float32 {
	centres := make([][]float64, k)
	for i := range centres {
		centres[i] = make([]float64, dims)
		for d := range centres[i] {
			centres[i][d] = r.NormFloat64()
		}
	}
	out := make([][]float32, n)
	for i := range out {
		c := centres[r.IntN(k)]
		v := make([]float32, dims)
		for d := range v {
			v[d] = float32(c[d] + spread*r.NormFloat64())
		}
		out[i] = v
	}
	return out
}

func cosineSim(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}

// storeVectors stores one document per batch of vectors, returning each vector's chunk
// content key ("v<i>").
func storeVectors(t *testing.T, s *docstore.Store, model string, vecs [][]float32, perDoc int) []*docstore.Document {
	t.Helper()
	var docs []*docstore.Document
	for start := 0; start < len(vecs); start += perDoc {
		end := min(start+perDoc, len(vecs))
		contents := make([]string, 0, end-start)
		for i := start; i < end; i++ {
			contents = append(contents, fmt.Sprintf("v%d", i))
		}
		i := start
		docs = append(docs, addDoc(t, s, "acme", "7", fmt.Sprintf("d%d.txt", start), model, func(string) []float32 {
			v := vecs[i]
			i++
			return v
		}, contents...))
	}
	return docs
}

func vectorSearch(t *testing.T, s *docstore.Store, model string, q []float32, k int) []docstore.SearchHit {
	t.Helper()
	hits, err := s.Search(t.Context(), docstore.SearchQuery{TenantID: "acme", AgentID: "7", Embedding: q, Model: model, K: k})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// requireHNSWPlan fails unless PostgreSQL plans the vector ranking of q through an HNSW index.
func requireHNSWPlan(t *testing.T, s *docstore.Store, model string, q []float32) {
	t.Helper()
	plan, err := s.ExplainVectorRanking(t.Context(), docstore.SearchQuery{TenantID: "acme", AgentID: "7", Embedding: q, Model: model}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "chunks_hnsw_") {
		t.Fatalf("the vector ranking does not use the HNSW index:\n%s", plan)
	}
}

func TestHNSWAgreesWithExactSearch(t *testing.T) {
	s, _ := open(t)
	requirePGVector(t, s)
	const (
		n, dims, clusters, queries, k = 3000, 64, 30, 40, 10
		model                         = "test-clustered-64"
	)
	r := rand.New(rand.NewPCG(1, 2))
	vecs := clustered(r, n+queries, dims, clusters, 0.35)
	stored, qs := vecs[:n], vecs[n:]
	storeVectors(t, s, model, stored, 500)
	requireHNSWPlan(t, s, model, qs[0])

	var recall float64
	for _, q := range qs {
		type scored struct {
			i   int
			sim float64
		}
		exact := make([]scored, n)
		for i, v := range stored {
			exact[i] = scored{i, cosineSim(q, v)}
		}
		slices.SortFunc(exact, func(a, b scored) int { return cmp.Compare(b.sim, a.sim) })
		want := map[string]bool{}
		for _, e := range exact[:k] {
			want[fmt.Sprintf("v%d", e.i)] = true
		}
		hits := vectorSearch(t, s, model, q, k)
		if len(hits) != k {
			t.Fatalf("%d hits, want %d", len(hits), k)
		}
		for _, h := range hits {
			if want[h.Content] {
				recall += 1.0 / float64(k*queries)
			}
		}
	}
	t.Logf("recall@%d of the HNSW ranking against exact cosine similarity: %.3f over %d queries", k, recall, queries)
	if recall < 0.95 {
		t.Fatalf("recall@%d = %.3f, want at least 0.95", k, recall)
	}
}

func TestHNSWIndexFollowsDeletesAndReprocessing(t *testing.T) {
	s, url := open(t)
	requirePGVector(t, s)
	// No vacuum while the test runs: deleted and replaced rows stay in the index's graph, as
	// they do between two vacuums, and the outcome does not depend on when autovacuum starts.
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `ALTER TABLE chunks SET (autovacuum_enabled = off)`); err != nil {
		t.Fatal(err)
	}
	const model, dims = "test-model-32", 32
	r := rand.New(rand.NewPCG(3, 4))
	vecs := clustered(r, 2000, dims, 4, 0.2)
	docs := storeVectors(t, s, model, vecs, 500) // four documents
	requireHNSWPlan(t, s, model, vecs[7])

	top := func(q []float32) []docstore.SearchHit { return vectorSearch(t, s, model, q, 10) }
	// The first document's vectors are found, among others.
	probe := vecs[7]
	hits := top(probe)
	if len(hits) != 10 || hits[0].Content != "v7" {
		t.Fatalf("nearest to v7 = %+v", hits[:min(1, len(hits))])
	}
	// Deleted: none of its chunks is found any more, and the search still returns 10.
	if err := s.DeleteDocument(t.Context(), "acme", docs[0].ID); err != nil {
		t.Fatal(err)
	}
	hits = top(probe)
	if len(hits) != 10 {
		t.Fatalf("after the delete: %d hits, want 10", len(hits))
	}
	for _, h := range hits {
		if h.DocumentID == docs[0].ID {
			t.Fatalf("a deleted document's chunk was found: %+v", h)
		}
	}
	// Re-processed with other vectors: the new ones are found, the old ones are gone.
	fresh := clustered(r, 500, dims, 4, 0.2)
	contents := make([]string, 500)
	for j := range contents {
		contents[j] = fmt.Sprintf("fresh%d", j)
	}
	chunks := make([]docstore.Chunk, len(contents))
	for j, c := range contents {
		chunks[j] = docstore.Chunk{Ordinal: j, Content: c, TokenCount: 1, Embedding: fresh[j]}
	}
	old := vecs[600] // of docs[1]
	if err := s.Complete(t.Context(), docs[1].ID, docstore.Completion{EmbeddingModel: model, Chunks: chunks}); err != nil {
		t.Fatal(err)
	}
	// The probe's own chunk is among the nearest the index finds (HNSW is approximate, and the
	// replaced rows stay in its graph until a vacuum).
	hits = top(fresh[3])
	if len(hits) != 10 || !slices.ContainsFunc(hits, func(h docstore.SearchHit) bool { return h.Content == "fresh3" && h.DocumentID == docs[1].ID }) {
		t.Fatalf("nearest to a re-processed chunk = %+v, want fresh3 among them", hits)
	}
	for _, h := range top(old) {
		if h.DocumentID == docs[1].ID && h.Content == "v600" {
			t.Fatalf("a replaced chunk was found: %+v", h)
		}
	}
	// Re-embedded with another model: the new model's index serves it, the old one no longer
	// finds the document.
	ordinals := make([]int, 500)
	other := clustered(r, 500, dims, 1, 0.05)
	for j := range ordinals {
		ordinals[j] = j
	}
	if err := s.ReplaceEmbeddings(t.Context(), docs[2].ID, "test-model-b", ordinals, other); err != nil {
		t.Fatal(err)
	}
	requireHNSWPlan(t, s, "test-model-b", other[5])
	hits = vectorSearch(t, s, "test-model-b", other[5], 10)
	if len(hits) != 10 || hits[0].DocumentID != docs[2].ID || hits[0].Content != "v1005" {
		t.Fatalf("nearest by the new model = %+v", hits[:min(1, len(hits))])
	}
	for _, h := range top(vecs[1005]) {
		if h.DocumentID == docs[2].ID {
			t.Fatalf("a re-embedded chunk was found by its old model: %+v", h)
		}
	}
}
