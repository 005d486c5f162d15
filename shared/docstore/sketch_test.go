package docstore

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/pgtest"
)

// sketchVectors are embeddings of real text by the local model, dense random vectors, and the
// edge cases of the sign: zeros of both signs, NaN, infinities, lengths that are not whole
// bytes, an empty vector and none at all.
func sketchVectors(t *testing.T) [][]float32 {
	t.Helper()
	local, err := embed.NewLocal(384)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{
		"Quire ingests documents, splits them into chunks and embeds every chunk.",
		"The worker drains the job stream; each job runs extract, chunk, embed and store.",
		"",
		"a",
	}
	vecs, err := local.Embed(t.Context(), texts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dims := range []int{1, 7, 8, 9, 256, 1536} {
		v := make([]float32, dims)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		vecs = append(vecs, v)
	}
	negZero := float32(math.Copysign(0, -1))
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	return append(vecs,
		[]float32{0, negZero, 1, -1, nan, inf, -inf, math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, 0.5},
		[]float32{},
		nil,
	)
}

// mismatches counts the chunks whose stored sketch differs from quire_sign_bits of their
// embedding, the definition of the sketch.
func mismatches(t *testing.T, pool *pgxpool.Pool) (bad, total int) {
	t.Helper()
	err := pool.QueryRow(t.Context(), `SELECT
		count(*) FILTER (WHERE embedding_pos IS DISTINCT FROM quire_sign_bits(embedding, true)
			OR embedding_neg IS DISTINCT FROM quire_sign_bits(embedding, false)), count(*)
		FROM chunks`).Scan(&bad, &total)
	if err != nil {
		t.Fatal(err)
	}
	return bad, total
}

func sketchChunks(vecs [][]float32) []Chunk {
	chunks := make([]Chunk, len(vecs))
	for i, v := range vecs {
		chunks[i] = Chunk{Ordinal: i, Content: fmt.Sprintf("chunk %d", i), TokenCount: 2, Embedding: v}
	}
	return chunks
}

func addSketchDoc(t *testing.T, s *Store, task string, vecs [][]float32) int64 {
	t.Helper()
	d := &Document{TenantID: "acme", AgentID: "7", Kind: job.KindDocument, Filename: "a.txt", TaskID: task, Priority: "high"}
	if err := s.InsertDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(t.Context(), d.ID, Completion{EmbeddingModel: "m", Chunks: sketchChunks(vecs)}); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// The sign sketches are computed here, not by PostgreSQL: they must be what the SQL definition
// gives for the same vectors, on insert and on reindex.
func TestStoredSketchesMatchTheSQLDefinition(t *testing.T) {
	s, err := Open(t.Context(), pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	vecs := sketchVectors(t)
	id := addSketchDoc(t, s, "t1", vecs)
	if bad, total := mismatches(t, s.pool); bad != 0 || total != len(vecs) {
		t.Fatalf("%d of %d stored sketches differ from quire_sign_bits (want 0 of %d)", bad, total, len(vecs))
	}
	// The embedding arrives intact, and a chunk without one has no sketch.
	var n int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM chunks WHERE document_id = $1 AND ordinal = $2
		AND embedding IS NULL AND embedding_pos IS NULL`, id, len(vecs)-1).Scan(&n); err != nil || n != 1 {
		t.Fatalf("chunk without an embedding: %d rows, %v", n, err)
	}
	var got []float32
	if err := s.pool.QueryRow(t.Context(), `SELECT embedding FROM chunks WHERE document_id = $1 AND ordinal = 4`, id).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(vecs[4]) {
		t.Fatalf("stored embedding %v, want %v", got, vecs[4])
	}

	// Reindex: new vectors (reversed signs, other lengths) replace the sketches too.
	ordinals := make([]int, len(vecs)-1)
	repl := make([][]float32, len(vecs)-1)
	for i := range repl {
		ordinals[i] = i
		for _, x := range vecs[len(vecs)-2-i] {
			repl[i] = append(repl[i], -x)
		}
		if repl[i] == nil {
			repl[i] = []float32{}
		}
	}
	if _, err := s.pool.Exec(t.Context(), `DELETE FROM chunks WHERE document_id = $1 AND ordinal = $2`, id, len(vecs)-1); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceEmbeddings(t.Context(), id, "m2", ordinals, repl); err != nil {
		t.Fatal(err)
	}
	if bad, total := mismatches(t, s.pool); bad != 0 || total != len(repl) {
		t.Fatalf("after reindex %d of %d sketches differ from quire_sign_bits (want 0 of %d)", bad, total, len(repl))
	}
	// The query side agrees with the stored side.
	for _, v := range vecs[:len(vecs)-1] {
		p, m := signBits(v)
		var ok bool
		if err := s.pool.QueryRow(t.Context(), `SELECT quire_sign_bits($1::real[], true) = $2::varbit AND quire_sign_bits($1::real[], false) = $3::varbit`,
			v, p, m).Scan(&ok); err != nil || !ok {
			t.Fatalf("query sketch of %v = %s, %s; agrees with quire_sign_bits: %v, %v", v, p, m, ok, err)
		}
	}
}

// A database that predates the stored sketches (generated columns) keeps its rows' sketches
// through the migration, stores new ones as before, and migrates back down.
func TestSketchMigrationKeepsExistingRows(t *testing.T) {
	ctx := t.Context()
	pool, p := migratedTo(t, 3)
	vecs := sketchVectors(t)
	old := insertGenerated(t, pool, vecs)
	wantRows := func(stage string) [][]string {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT embedding_pos::text, embedding_neg::text FROM chunks WHERE document_id = $1 ORDER BY ordinal`, old)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]string, error) {
			var p, m *string
			err := r.Scan(&p, &m)
			return []string{fmt.Sprint(p != nil), deref(p), deref(m)}, err
		})
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		return out
	}
	before := wantRows("before")

	s := &Store{pool: pool}
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if got := wantRows("after"); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("sketches after the migration\n%v\nwant\n%v", got, before)
	}
	if generated(t, pool) {
		t.Fatal("embedding_pos is still a generated column")
	}
	addSketchDoc(t, s, "new", vecs)
	if bad, total := mismatches(t, pool); bad != 0 || total != 2*len(vecs) {
		t.Fatalf("%d of %d sketches differ from quire_sign_bits (want 0 of %d)", bad, total, 2*len(vecs))
	}

	if _, err := p.DownTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if !generated(t, pool) {
		t.Fatal("embedding_pos is not generated after the down migration")
	}
	if bad, _ := mismatches(t, pool); bad != 0 {
		t.Fatalf("%d sketches differ from quire_sign_bits after the down migration", bad)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// migratedTo returns a new database migrated up to version, and the migrations' provider to
// move it further up or down.
func migratedTo(t *testing.T, version int64) (*pgxpool.Pool, *goose.Provider) {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = db.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), version); err != nil {
		t.Fatal(err)
	}
	return pool, p
}

func generated(t *testing.T, pool *pgxpool.Pool) bool {
	t.Helper()
	var g string
	if err := pool.QueryRow(t.Context(), `SELECT is_generated FROM information_schema.columns
		WHERE table_name = 'chunks' AND column_name = 'embedding_pos'`).Scan(&g); err != nil {
		t.Fatal(err)
	}
	return g == "ALWAYS"
}

// insertGenerated stores a document's chunks as the code before stored sketches did: COPY of
// the embedding alone, the sketch columns generated.
func insertGenerated(t *testing.T, pool *pgxpool.Pool, vecs [][]float32) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	if err := pool.QueryRow(ctx, `INSERT INTO documents (tenant_id, agent_id, kind, task_id, status)
		VALUES ('acme', '7', 'document', 'old', 'completed') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, len(vecs))
	for i, v := range vecs {
		rows[i] = []any{id, "acme", "7", i, strings.Repeat("x", i), 1, v}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"chunks"},
		[]string{"document_id", "tenant_id", "agent_id", "ordinal", "content", "token_count", "embedding"},
		pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	return id
}
