package docstore_test

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/pgtest"
)

var taskSeq atomic.Int64

// addDoc stores a completed document of tenant/agent whose chunks hold contents, embedded by
// vec (nil: no embedding) under model.
func addDoc(t testing.TB, s *docstore.Store, tenant, agent, name, model string, vec func(string) []float32, contents ...string) *docstore.Document {
	t.Helper()
	d := &docstore.Document{TenantID: tenant, AgentID: agent, Kind: job.KindDocument, Filename: name,
		TaskID: fmt.Sprintf("task-%d", taskSeq.Add(1)), Priority: "high"}
	if strings.HasPrefix(name, "https://") {
		d.Kind, d.Filename, d.URL = job.KindWebpage, "", name
	}
	ctx := t.Context()
	if err := s.InsertDocument(ctx, d); err != nil {
		t.Fatal(err)
	}
	chunks := make([]docstore.Chunk, len(contents))
	for i, c := range contents {
		chunks[i] = docstore.Chunk{Ordinal: i, Content: c, TokenCount: len(strings.Fields(c)), Page: i + 1, Heading: "Section " + name}
		if vec != nil {
			chunks[i].Embedding = vec(c)
		}
	}
	if err := s.Complete(ctx, d.ID, docstore.Completion{Title: "Title of " + name, EmbeddingModel: model, Chunks: chunks}); err != nil {
		t.Fatal(err)
	}
	return d
}

func localVec(t testing.TB) func(string) []float32 {
	l, err := embed.NewLocal(384)
	if err != nil {
		t.Fatal(err)
	}
	return func(s string) []float32 {
		v, err := l.Embed(t.Context(), []string{s})
		if err != nil {
			t.Fatal(err)
		}
		return v[0]
	}
}

func search(t *testing.T, s *docstore.Store, tenant, agent, text string, vec func(string) []float32, k int) []docstore.SearchHit {
	t.Helper()
	q := docstore.SearchQuery{TenantID: tenant, AgentID: agent, Text: text, Model: embed.LocalModel, K: k}
	if vec != nil {
		q.Embedding = vec(text)
	}
	hits, err := s.Search(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func TestSearchIsTenantAndAgentScoped(t *testing.T) {
	s, _ := open(t)
	vec := localVec(t)
	mine := addDoc(t, s, "acme", "7", "reactor.txt", embed.LocalModel, vec,
		"The cooling pump of the reactor failed during the night shift.",
		"Lunch menu: soup and bread.")
	addDoc(t, s, "other", "7", "theirs.txt", embed.LocalModel, vec, "The cooling pump of the reactor failed during the night shift.")
	addDoc(t, s, "acme", "8", "agent8.txt", embed.LocalModel, vec, "The cooling pump of the reactor failed during the night shift.")

	hits := search(t, s, "acme", "7", "reactor cooling pump", vec, 10)
	if len(hits) == 0 {
		t.Fatal("no hits")
	}
	for _, h := range hits {
		if h.DocumentID != mine.ID {
			t.Fatalf("hit from document %d of another tenant or agent: %+v", h.DocumentID, h)
		}
	}
	top := hits[0]
	if top.Ordinal != 0 || top.Page != 1 || top.Filename != "reactor.txt" || top.Title != "Title of reactor.txt" ||
		top.Heading != "Section reactor.txt" || !strings.Contains(top.Content, "cooling pump") {
		t.Fatalf("top hit = %+v", top)
	}
	if top.TextRank != 1 || top.VectorRank != 1 || top.Score != 2.0/61 {
		t.Fatalf("top hit ranks text %d vector %d score %v, want 1, 1, 2/61", top.TextRank, top.VectorRank, top.Score)
	}
	if got := search(t, s, "nobody", "7", "reactor cooling pump", vec, 10); len(got) != 0 {
		t.Fatalf("a tenant without documents got %d hits", len(got))
	}
	theirs := search(t, s, "other", "7", "reactor cooling pump", vec, 10)
	if len(theirs) != 1 || theirs[0].DocumentID == mine.ID {
		t.Fatalf("other tenant's hits = %+v", theirs)
	}
}

func TestSearchVectorRankingKeepsToTheQueryModel(t *testing.T) {
	s, _ := open(t)
	vec := localVec(t)
	same := addDoc(t, s, "acme", "7", "same.txt", embed.LocalModel, vec, "quarterly revenue grew in the northern region")
	other := addDoc(t, s, "acme", "7", "other.txt", "text-embedding-3-small", vec, "quarterly revenue grew in the northern region")
	short := addDoc(t, s, "acme", "7", "short.txt", embed.LocalModel, func(string) []float32 { return []float32{1, 0, 0} },
		"quarterly revenue grew in the northern region")

	// Vector only: the chunks of other models and other lengths are not compared.
	hits, err := s.Search(t.Context(), docstore.SearchQuery{TenantID: "acme", AgentID: "7",
		Embedding: vec("quarterly revenue"), Model: embed.LocalModel, K: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 || hits[0].DocumentID != same.ID || hits[0].TextRank != 0 {
		t.Fatalf("vector-only hits = %+v, want only document %d", hits, same.ID)
	}
	// Full text finds all three; only the same-model chunk has a vector rank.
	hits = search(t, s, "acme", "7", "quarterly revenue", vec, 10)
	ranks := map[int64]int{}
	for _, h := range hits {
		ranks[h.DocumentID] = h.VectorRank
	}
	if len(hits) != 3 || ranks[same.ID] != 1 || ranks[other.ID] != 0 || ranks[short.ID] != 0 {
		t.Fatalf("hybrid hits = %+v", hits)
	}
	if hits[0].DocumentID != same.ID {
		t.Fatalf("the chunk ranked by both lists is not first: %+v", hits)
	}
}

func TestSearchFullTextSyntax(t *testing.T) {
	s, _ := open(t)
	a := addDoc(t, s, "acme", "7", "a.txt", "", nil, "alpha beta gamma")
	b := addDoc(t, s, "acme", "7", "b.txt", "", nil, "alpha delta")
	c := addDoc(t, s, "acme", "7", "c.txt", "", nil, "epsilon beta")
	tests := []struct {
		query string
		want  []int64
	}{
		{"alpha beta", []int64{a.ID, b.ID, c.ID}}, // any word; all words first
		{"alpha -beta", []int64{b.ID}},            // websearch negation
		{`"beta gamma"`, []int64{a.ID}},           // phrase
		{"delta or epsilon", []int64{b.ID, c.ID}},
		{"zeta", nil},
		{"the", nil}, // no such word
		{"!!! ???", nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var got []int64
			for _, h := range search(t, s, "acme", "7", tt.query, nil, 10) {
				got = append(got, h.DocumentID)
			}
			if tt.query == "delta or epsilon" {
				slices.Sort(got)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("documents %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSearchRejectsBadQueries(t *testing.T) {
	s, _ := open(t)
	for _, q := range []docstore.SearchQuery{
		{TenantID: "acme", AgentID: "7", K: 10},
		{TenantID: "acme", AgentID: "7", Text: "x", K: 51},
		{TenantID: "acme", AgentID: "7", Text: "x", K: -1},
	} {
		if _, err := s.Search(t.Context(), q); !errors.Is(err, docstore.ErrBadQuery) {
			t.Errorf("Search(%+v) = %v, want ErrBadQuery", q, err)
		}
	}
}

// labelled is a small relevance set: each query must find its document.
var labelled = struct {
	docs    map[string][]string
	queries map[string]string // query -> document name
}{
	docs: map[string][]string{
		"install-linux.md": {
			"Install Quire on Linux: download the tarball, unpack it into /opt/quire and run the installer script.",
			"On Debian and Ubuntu the package installs a systemd unit; enable it with systemctl enable quire.",
		},
		"billing-faq.md": {
			"Invoices are issued on the first day of every month and paid by credit card or bank transfer.",
			"To change the billing address, open the account settings and edit the invoice recipient.",
		},
		"password-reset.md": {
			"Forgot your password? Use the reset link on the sign-in page; the email with the link expires after one hour.",
			"Administrators can force a password reset for any user from the users page.",
		},
		"api-rate-limits.md": {
			"The HTTP API allows 600 requests per minute per token; above that it answers 429 with a Retry-After header.",
			"Batch endpoints count each item against the rate limit separately.",
		},
		"backup-restore.md": {
			"Nightly backups of the PostgreSQL database are kept for thirty days in object storage.",
			"Restore a backup with pg_restore into an empty database, then restart the services.",
		},
		"gdpr-privacy.md": {
			"Personal data is processed under the GDPR; customers may request export or deletion of their data.",
			"Deletion requests are completed within thirty days and confirmed by email.",
		},
		"kubernetes-scaling.md": {
			"Worker pods scale on JetStream consumer lag with the KEDA scaler; set the lag threshold per queue.",
			"The high priority pool keeps at least two replicas so uploads never wait for a cold start.",
		},
		"pdf-extraction.md": {
			"Scanned PDFs without a text layer produce no text; run OCR before uploading them.",
			"Encrypted PDF files are rejected with a permanent error and land in the dead letter queue.",
		},
	},
	queries: map[string]string{
		"how do I install on ubuntu":             "install-linux.md",
		"systemd unit":                           "install-linux.md",
		"when are invoices issued":               "billing-faq.md",
		"change billing address":                 "billing-faq.md",
		"reset link expired":                     "password-reset.md",
		"forgot password":                        "password-reset.md",
		"429 retry-after requests per minute":    "api-rate-limits.md",
		"rate limit for batch items":             "api-rate-limits.md",
		"restore database backup":                "backup-restore.md",
		"how long are backups kept":              "backup-restore.md",
		"delete my personal data":                "gdpr-privacy.md",
		"GDPR export request":                    "gdpr-privacy.md",
		"scale workers on consumer lag":          "kubernetes-scaling.md",
		"minimum replicas for the priority pool": "kubernetes-scaling.md",
		"scanned pdf has no text":                "pdf-extraction.md",
		"encrypted PDF dead letter":              "pdf-extraction.md",
	},
}

// TestSearchRelevance measures recall@5 (the query's document among the first five hits) and
// top-1 accuracy on the labelled set, with the local embedder and with full text only.
func TestSearchRelevance(t *testing.T) {
	s, _ := open(t)
	vec := localVec(t)
	ids := map[string]int64{}
	for name, chunks := range labelled.docs {
		ids[name] = addDoc(t, s, "acme", "7", name, embed.LocalModel, vec, chunks...).ID
	}
	for _, mode := range []struct {
		name string
		vec  func(string) []float32
		text bool
	}{{"hybrid", vec, true}, {"full text only", nil, true}, {"vector only", vec, false}} {
		var at5, at1 int
		for q, want := range labelled.queries {
			var hits []docstore.SearchHit
			if mode.text {
				hits = search(t, s, "acme", "7", q, mode.vec, 5)
			} else {
				var err error
				hits, err = s.Search(t.Context(), docstore.SearchQuery{TenantID: "acme", AgentID: "7", Embedding: vec(q), Model: embed.LocalModel, K: 5})
				if err != nil {
					t.Fatal(err)
				}
			}
			for i, h := range hits {
				if h.DocumentID == ids[want] {
					at5++
					if i == 0 {
						at1++
					}
					break
				}
			}
			if len(hits) == 0 || hits[0].DocumentID != ids[want] {
				t.Logf("%s: %q: first hit is not %s", mode.name, q, want)
			}
		}
		n := len(labelled.queries)
		t.Logf("%s: recall@5 %d/%d = %.2f, top-1 %d/%d = %.2f", mode.name, at5, n, float64(at5)/float64(n), at1, n, float64(at1)/float64(n))
		if mode.name == "hybrid" && (at5 < n || at1 < n*7/8) {
			t.Fatalf("hybrid: recall@5 %d/%d, top-1 %d/%d; want all and at least 7/8", at5, n, at1, n)
		}
	}
}

// TestSearchVectorRecallBeyondCandidates checks the approximate path: with more chunks than
// the sign-sketch stage hands on, the vector ranking's first 10 must still be mostly the true
// 10 nearest by cosine similarity (dense, clustered vectors like a model's).
func TestSearchVectorRecallBeyondCandidates(t *testing.T) {
	s, _ := open(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const dims, n, queries = 256, 4000, 20
	// Dense vectors around 40 topic centres, like a real model's clusters.
	centres := make([][]float32, 40)
	for i := range centres {
		centres[i] = randVec(rng, dims, nil, 0)
	}
	contents := make([]string, n)
	vecs := map[string][]float32{}
	for i := range contents {
		contents[i] = fmt.Sprintf("chunk %d", i)
		vecs[contents[i]] = randVec(rng, dims, centres[i%len(centres)], 0.8)
	}
	for i := 0; i < n; i += 500 {
		addDoc(t, s, "acme", "7", fmt.Sprintf("doc%d.txt", i), "dense", func(c string) []float32 { return vecs[c] }, contents[i:i+500]...)
	}
	var found, total int
	for range queries {
		q := randVec(rng, dims, centres[rng.IntN(len(centres))], 0.8)
		hits, err := s.Search(t.Context(), docstore.SearchQuery{TenantID: "acme", AgentID: "7", Embedding: q, Model: "dense", K: 10})
		if err != nil {
			t.Fatal(err)
		}
		// The true 10 nearest, by brute force.
		type scored struct {
			content string
			sim     float64
		}
		all := make([]scored, 0, n)
		for _, c := range contents {
			all = append(all, scored{c, embed.Cosine(q, vecs[c])})
		}
		slices.SortFunc(all, func(a, b scored) int {
			switch {
			case a.sim > b.sim:
				return -1
			case a.sim < b.sim:
				return 1
			}
			return 0
		})
		truth := map[string]bool{}
		for _, sc := range all[:10] {
			truth[sc.content] = true
		}
		for _, h := range hits {
			if truth[h.Content] {
				found++
			}
		}
		total += 10
	}
	recall := float64(found) / float64(total)
	t.Logf("vector recall@10 over %d chunks (%d exact-scored candidates): %.3f", n, 1000, recall)
	if recall < 0.9 {
		t.Fatalf("vector recall@10 = %.3f, want at least 0.9", recall)
	}
}

// randVec is a random unit-ish vector: around centre with the given spread, or uniform.
func randVec(rng *rand.Rand, dims int, centre []float32, spread float64) []float32 {
	v := make([]float32, dims)
	for i := range v {
		x := rng.NormFloat64()
		if centre != nil {
			x = float64(centre[i]) + spread*x
		}
		v[i] = float32(x)
	}
	return v
}

// BenchmarkSearch measures hybrid query latency for one agent holding 10k and 100k chunks
// (local embedder, 384 dimensions, 60 words per chunk: nine in ten drawn from a Zipf
// distribution over 20,000 words, one in ten from the labelled set's words, so that each query
// word occurs in a few percent of the chunks). Run with
// go test -run '^$' -bench Search -benchtime 20x ./docstore/
func BenchmarkSearch(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("chunks=%d", n), func(b *testing.B) {
			url := pgtest.NewDB(b)
			s, err := docstore.Open(b.Context(), url)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(s.Close)
			vec := localVec(b)
			rng := rand.New(rand.NewPCG(3, 4))
			zipf := rand.NewZipf(rng, 1.1, 1, 19_999)
			labelledWords := strings.Fields(strings.Join(slices.Concat(slices.Collect(maps.Values(labelled.docs))...), " "))
			start := time.Now()
			for d := 0; d < n; d += 1000 {
				contents := make([]string, 1000)
				for i := range contents {
					var sb strings.Builder
					for range 60 {
						if rng.IntN(10) == 0 {
							sb.WriteString(labelledWords[rng.IntN(len(labelledWords))])
						} else {
							fmt.Fprintf(&sb, "w%d", zipf.Uint64())
						}
						sb.WriteByte(' ')
					}
					contents[i] = sb.String()
				}
				addDoc(b, s, "acme", "7", fmt.Sprintf("doc%d.txt", d), embed.LocalModel, vec, contents...)
			}
			// Another agent's chunks share the table.
			addDoc(b, s, "acme", "other", "x.txt", embed.LocalModel, vec, "reset link expired")
			b.Logf("stored %d chunks in %v", n, time.Since(start))
			// Steady state: autovacuum has marked the pages all-visible (index-only scans).
			conn, err := pgx.Connect(b.Context(), url)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := conn.Exec(b.Context(), "VACUUM ANALYZE chunks"); err != nil {
				b.Fatal(err)
			}
			_ = conn.Close(b.Context())
			queries := slices.Sorted(maps.Keys(labelled.queries))
			b.ResetTimer()
			for i := range b.N {
				q := queries[i%len(queries)]
				if _, err := s.Search(b.Context(), docstore.SearchQuery{TenantID: "acme", AgentID: "7", Text: q,
					Embedding: vec(q), Model: embed.LocalModel, K: 10}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSearchManyAllWordMatches: with more chunks holding every word than a ranking keeps, the
// any-word matches are not needed and never appear.
func TestSearchManyAllWordMatches(t *testing.T) {
	s, _ := open(t)
	contents := make([]string, 120)
	for i := range contents {
		contents[i] = fmt.Sprintf("alpha beta item %d", i)
	}
	all := addDoc(t, s, "acme", "7", "all.txt", "", nil, contents...)
	addDoc(t, s, "acme", "7", "any.txt", "", nil, "alpha alpha alpha alpha")
	hits := search(t, s, "acme", "7", "alpha beta", nil, 50)
	if len(hits) != 50 {
		t.Fatalf("%d hits, want 50", len(hits))
	}
	for i, h := range hits {
		if h.DocumentID != all.ID || h.TextRank != i+1 {
			t.Fatalf("hit %d = %+v, want a chunk of document %d holding both words", i, h, all.ID)
		}
	}
}
