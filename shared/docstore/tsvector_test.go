package docstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/pgtest"
)

// openStore opens a Store on a new database in the C locale (whatever the server's default),
// where non-ASCII bytes count as letters.
func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), localeDB(t, "C"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// storeFor opens a Store on a UTF-8 locale's database for the typographic cases, else on a
// C-locale one.
func storeFor(t *testing.T, typographic bool) *Store {
	t.Helper()
	if typographic {
		return openUTF8Store(t)
	}
	return openStore(t)
}

// openUTF8Store opens a Store on a new database whose LC_CTYPE is a glibc UTF-8 locale, where
// typographic punctuation separates words; t fails when the server has none.
func openUTF8Store(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), localeDB(t, "C.UTF-8", "C.utf8", "en_US.UTF-8", "en_US.utf8"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if !s.tsvInGo || !s.tsv.typographic {
		t.Fatalf("a UTF-8 locale's text search differs from plainTSVector (plain %v, typographic %v)", s.tsvInGo, s.tsv.typographic)
	}
	return s
}

// pgTSVectors returns to_tsvector('simple', text)::text of each text, as the database of pool
// computes it.
func pgTSVectors(t *testing.T, pool *pgxpool.Pool, texts []string) []string {
	t.Helper()
	var out []string
	for len(texts) > 0 {
		batch := texts[:min(len(texts), 500)]
		texts = texts[len(batch):]
		rows, err := pool.Query(t.Context(), `SELECT to_tsvector('simple', u.t)::text
			FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) ORDER BY u.i`, batch)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got...)
	}
	return out
}

// Words and separators of plain text: mixed case, numbers, hyphenated words, apostrophes and
// the punctuation of prose.
var (
	plainWords = []string{
		"the", "The", "THE", "of", "and", "a", "I", "search", "Search", "PostgreSQL", "tsvector",
		"ingestion", "chunk", "x86", "B2B", "2024", "007", "42", "mp3", "h2o", "3d",
		"3.14", "0.5", "4.3.2", "192.168.1.1", "e.g", "i.e", "U.S", "A.B.C",
		// Words sharing their first bytes, which formatTSVector's sort keys hold.
		"docs", "document", "documents", "documentation", "12345", "1234567", "12345678", "12345a",
		"well-known", "state-of-the-art", "Long-Term", "co-op", "e-mail", "A-Z", "don't", "it's",
		"O'Brien", "rock'n'roll", "snake_case", "_private", "C++", "a--b", "x+y", "quick-Brown-FOX",
	}
	plainSeparators = []string{
		" ", " ", " ", " ", " ", "  ", "\n", "\n\n", "\t", "\r\n", "\v", "\f", ", ", ". ", "! ",
		"? ", "; ", ": ", " (", ") ", " \"", "\" ", " - ", " -- ", "... ", "...", ".\n", " [",
		"] ", " {", "} ", " *", "* ", " #", " $", "% ", " = ", " > ", " | ", " ~ ", " ^", "`",
		" '", "' ", ":", ",", ";", "!", "?", "(", ")", "\"", "'", "_", "- ",
	}
)

// typographicSeparators separate words where typographic punctuation does.
var typographicSeparators = []string{
	"\u2019", "\u2018", " \u201c", "\u201d ", "\u201d. ", " \u2013 ", "\u2014", "\u2026", "\u2026 ", "\n\u2022 ",
	"\u00a0", " \u00ab", "\u00bb ", " \u00a7", "\u00a9 ", "\u00b0", "\u00ae ", " \u00b6\n", "\u2122 ", " \u2192 ",
}

// randomPlain is a text of n words of plain text; with typographic, typographic punctuation
// is among the separators.
func randomPlain(r *rand.Rand, n int, typographic bool) string {
	var b strings.Builder
	w := ""
	sep := func() {
		s := plainSeparators[r.IntN(len(plainSeparators))]
		if typographic && r.IntN(3) == 0 {
			s = typographicSeparators[r.IntN(len(typographicSeparators))]
		}
		if strings.Contains(w, ".") && strings.ContainsAny(s[:1], "-_.") && !unicode.IsDigit(rune(w[0])) {
			s = " " // an abbreviation ("e.g") would run on as a file name
		}
		b.WriteString(s)
	}
	for i := range n {
		if i > 0 {
			sep()
		}
		w = plainWords[r.IntN(len(plainWords))]
		switch r.IntN(10) {
		case 0:
			w = strings.ToUpper(w)
		case 1:
			w = strings.ToLower(w)
		}
		b.WriteString(w)
	}
	if r.IntN(2) == 0 {
		sep()
	}
	return b.String()
}

// plainText is plain text of at least size bytes, and less than size+1000.
func plainText(r *rand.Rand, size int, typographic bool) string {
	var b strings.Builder
	for b.Len() < size {
		b.WriteString(randomPlain(r, 50, typographic))
		b.WriteString(" ")
	}
	return b.String()
}

// plainEdgeTexts are plain texts at to_tsvector's limits.
func plainEdgeTexts(r *rand.Rand, typographic bool) []string {
	short := make([]string, 17000)
	for i := range short {
		short[i] = string(rune('a' + r.IntN(8)))
	}
	return []string{
		"", "   ", "!?", "well-known fact", "don't stop", "x", "X", "end.", "Wait...", ". start",
		strings.Repeat("word ", 300),
		strings.Repeat("Word again ", 300) + "word",
		"a " + strings.Repeat("x", 2100) + " b",
		strings.Repeat("y", tsvMaxWord),
		strings.Repeat("y", tsvMaxWord+1),
		strings.Repeat("y", tsvMaxWord+2),
		"a " + strings.Repeat("y", tsvMaxWord) + " b " + strings.Repeat("z", tsvMaxWord+1) + " c",
		"a " + strings.Repeat("y", tsvMaxWord+1) + " b " + strings.Repeat("z", tsvMaxWord+2) + " c",
		"a " + strings.Repeat("h", 1500) + "-" + strings.Repeat("j", 600) + " c",
		strings.Join(short, " "),
		strings.Join(short[:16380], " ") + " zz-yy-zz q q q-q",
		plainText(r, tsvMaxContent-1000, typographic),
	}
}

func TestPlainTSVectorExamples(t *testing.T) {
	for text, want := range map[string]string{
		"well-known fact":         "'fact':4 'known':3 'well':2 'well-known':1",
		"don't stop":              "'don':1 'stop':3 't':2",
		"State-of-the-Art, AGAIN": "'again':6 'art':5 'of':3 'state':2 'state-of-the-art':1 'the':4",
		"x86 and 007.":            "'007':3 'and':2 'x86':1",
		"Version 4.3.2, see 3.6.": "'3.6':4 '4.3.2':2 'see':3 'version':1",
		"I.e.: U.S.A. and e.g. x": "'and':3 'e.g':4 'i.e':1 'u.s.a':2 'x':5",
		"":                        "",
	} {
		for _, typographic := range []bool{false, true} {
			if got, ok := plainTSVector(text, tsvParser{typographic, tsvMaxWord}); !ok || got != want {
				t.Errorf("plainTSVector(%q, %v) = %q, %v; want %q", text, typographic, got, ok, want)
			}
		}
	}
	// Text the parser reads as more than words is left to PostgreSQL.
	for _, text := range []string{
		"example.com", "v1.2", "1.2.ab", "4.1a", "1.5e3", "4.1-x", "e.g- x", "e.g_x", "a.b.cd", "ex.g",
		"e.g.. x", "a/b", "x@y", "<b>bold</b>", "&amp;", "-5", "+5", "10-20", "x-1", "covid-19",
		"x1-y", "well-known1", "1e5", "2E10x", "word.. next", "word..", "~x", "a\\b", "caf\u00e9",
		"\u00b5s", "\u00b2", "tab\x01", "x._y", "x..\u2019",
		strings.Repeat("a ", tsvMaxContent/2+1),
	} {
		for _, typographic := range []bool{false, true} {
			if got, ok := plainTSVector(text, tsvParser{typographic, tsvMaxWord}); ok {
				t.Errorf("plainTSVector(%q, %v) = %q, want not plain", text, typographic, got)
			}
		}
	}
	// Typographic punctuation separates words where the locale says so; in the C locale it is
	// a letter.
	text := "Don\u2019t \u201cstop\u201d \u2014 now\u2026"
	if got, ok := plainTSVector(text, tsvParser{true, tsvMaxWord}); !ok || got != "'don':1 'now':4 'stop':3 't':2" {
		t.Errorf("plainTSVector(%q, true) = %q, %v", text, got, ok)
	}
	if got, ok := plainTSVector(text, tsvParser{false, tsvMaxWord}); ok {
		t.Errorf("plainTSVector(%q, false) = %q, want not plain", text, got)
	}
}

// Every generated plain text, and the limits, come out exactly as PostgreSQL's text form: in
// the C locale, and with typographic punctuation in a UTF-8 locale.
func TestPlainTSVectorMatchesPostgres(t *testing.T) {
	for _, typographic := range []bool{false, true} {
		t.Run(fmt.Sprintf("typographic=%v", typographic), func(t *testing.T) {
			s := storeFor(t, typographic)
			r := rand.New(rand.NewPCG(1, 2))
			texts := plainEdgeTexts(r, typographic)
			for range 3000 {
				texts = append(texts, randomPlain(r, 1+r.IntN(400), typographic))
			}
			want := pgTSVectors(t, s.pool, texts)
			bad := 0
			for i, text := range texts {
				got, ok := plainTSVector(text, s.tsv)
				if !ok {
					t.Errorf("not plain: %.200q", text)
					bad++
				} else if got != want[i] {
					t.Errorf("plainTSVector(%.200q)\n= %.300s\nwant %.300s", text, got, want[i])
					bad++
				}
				if bad > 10 {
					t.FailNow()
				}
			}
		})
	}
}

// Random strings of the characters the parser treats specially: whenever plainTSVector takes
// one, it agrees with PostgreSQL, in the C locale and, with typographic punctuation, in a UTF-8
// locale.
func TestPlainTSVectorIsExactWhenOK(t *testing.T) {
	pieces := []string{
		"a", "B", "xy", "Ab", "e", "E", "x", "i", "I", "1", "42", "0", "x1", "e5",
		".", ".", "..", "-", "-", "--", "+", "/", "@", ":", "<", ">", "&", "\\", "_", "'", "~", "#", ";",
		" ", " ", " ", "\t", "\n", "!", ",", "(", "\"", "\u00e9", "\u0130", "\u0131", "\u00b5",
		"\u2019", "\u201c", "\u2014", "\u00a0", "\u2026", "\u00a9", "\u2192",
	}
	for _, typographic := range []bool{false, true} {
		t.Run(fmt.Sprintf("typographic=%v", typographic), func(t *testing.T) {
			s := storeFor(t, typographic)
			r := rand.New(rand.NewPCG(3, 4))
			var texts []string
			for range 30000 {
				var b strings.Builder
				for range 1 + r.IntN(12) {
					b.WriteString(pieces[r.IntN(len(pieces))])
				}
				texts = append(texts, b.String())
			}
			want := pgTSVectors(t, s.pool, texts)
			plain, other := 0, 0
			for i, text := range texts {
				got, ok := plainTSVector(text, s.tsv)
				if !ok {
					other++
					continue
				}
				plain++
				if got != want[i] {
					t.Errorf("plainTSVector(%q) = %q, PostgreSQL %q", text, got, want[i])
				}
			}
			t.Logf("%d plain texts compared with PostgreSQL, %d left to it", plain, other)
			if plain < len(texts)/10 || other < len(texts)/10 {
				t.Fatalf("%d plain and %d other texts: the generator should exercise both", plain, other)
			}
		})
	}
}

// tsvMismatches counts the chunks of document id whose tsv is not to_tsvector('simple',
// content), and all its chunks.
func tsvMismatches(t *testing.T, pool *pgxpool.Pool, id int64) (bad, total int) {
	t.Helper()
	err := pool.QueryRow(t.Context(), `SELECT count(*) FILTER (WHERE tsv IS NULL
			OR tsv::text IS DISTINCT FROM to_tsvector('simple', content)::text), count(*)
		FROM chunks WHERE document_id = $1`, id).Scan(&bad, &total)
	if err != nil {
		t.Fatal(err)
	}
	return bad, total
}

// tsvChunks are chunks of plain text, of text with typographic punctuation and of text only
// PostgreSQL parses.
func tsvChunks(t *testing.T) []Chunk {
	contents := []string{
		"The well-known fact: don't stop. State-of-the-art search, again and AGAIN!",
		"See https://example.com/a?b=1, e.g. 3.14 or -5 -- caf\u00e9 <b>bold</b> &amp; x@y.org",
		strings.Repeat("repeated words again ", 120),
		"",
		randomPlain(rand.New(rand.NewPCG(5, 6)), 500, false),
		"Don\u2019t \u201cstop\u201d \u2014 the fact\u2026",
		randomPlain(rand.New(rand.NewPCG(7, 8)), 500, true),
	}
	plain := 0
	var out []Chunk
	for i, c := range contents {
		if _, ok := plainTSVector(c, tsvParser{maxWord: tsvMaxWord}); ok {
			plain++
		}
		out = append(out, Chunk{Ordinal: i, Content: c, TokenCount: 1})
	}
	if plain == 0 || plain == len(contents) {
		t.Fatalf("%d of %d chunks are plain: want both kinds", plain, len(contents))
	}
	return out
}

func completeDoc(t *testing.T, s *Store, task string, chunks []Chunk) int64 {
	t.Helper()
	d := &Document{TenantID: "acme", AgentID: "7", Kind: job.KindDocument, Filename: "a.txt", TaskID: task, Priority: "high"}
	if err := s.InsertDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if err := s.StartProcessing(t.Context(), d.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(t.Context(), d.ID, Completion{Chunks: chunks}); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// Complete stores, for plain chunks and others, the tsvector the generated column stored: in
// the C locale and, with typographic punctuation, in a UTF-8 locale.
func TestCompleteStoresPostgresTSVector(t *testing.T) {
	for _, typographic := range []bool{false, true} {
		t.Run(fmt.Sprintf("typographic=%v", typographic), func(t *testing.T) {
			var s *Store
			if typographic {
				s = openUTF8Store(t)
			} else if s = openStore(t); !s.ComputesTSVectors() || s.tsv.typographic {
				t.Fatalf("C locale: plain %v, typographic %v; want true, false", s.tsvInGo, s.tsv.typographic)
			}
			chunks := tsvChunks(t)
			for _, st := range []*Store{s, {pool: s.pool}} {
				id := completeDoc(t, st, fmt.Sprintf("task-%v", st.tsvInGo), chunks)
				if bad, total := tsvMismatches(t, s.pool, id); bad != 0 || total != len(chunks) {
					t.Fatalf("in Go %v: %d of %d chunks' tsv differ from to_tsvector (want 0 of %d)", st.tsvInGo, bad, total, len(chunks))
				}
			}
			// In the C locale "fact\u2026" is one word.
			want := 2
			if typographic {
				want = 4
			}
			hits, err := s.Search(t.Context(), SearchQuery{TenantID: "acme", AgentID: "7", Text: "fact"})
			if err != nil || len(hits) != want {
				t.Fatalf("search = %+v, %v; want %d chunks", hits, err, want)
			}
		})
	}
}

// A chunk inserted without its tsvector, as a worker of an earlier release does during a
// rolling upgrade, gets the one PostgreSQL computes, and is found by search.
func TestChunkInsertedWithoutTSVectorIsSearchable(t *testing.T) {
	s := openStore(t)
	id := completeDoc(t, s, "task", []Chunk{{Ordinal: 0, Content: "first", TokenCount: 1}})
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO chunks (document_id, tenant_id, agent_id, ordinal, content, token_count)
		VALUES ($1, 'acme', '7', 1, 'Written by an older worker, still searchable.', 8)`, id); err != nil {
		t.Fatal(err)
	}
	if bad, total := tsvMismatches(t, s.pool, id); bad != 0 || total != 2 {
		t.Fatalf("%d of %d chunks' tsv differ from to_tsvector, want 0 of 2", bad, total)
	}
	hits, err := s.Search(t.Context(), SearchQuery{TenantID: "acme", AgentID: "7", Text: "older worker"})
	if err != nil || len(hits) != 1 {
		t.Fatalf("search = %+v, %v; want the chunk without a tsvector of its own", hits, err)
	}
}

// A database whose to_tsvector('simple', ...) differs from plainTSVector gets every tsvector
// from PostgreSQL.
func TestTSVectorSelfCheck(t *testing.T) {
	ctx := t.Context()
	// search_path puts the database's own 'simple' configuration before pg_catalog's.
	for name, setup := range map[string]string{
		"stop words": `CREATE TEXT SEARCH DICTIONARY public.simple_stop (TEMPLATE = pg_catalog.simple, STOPWORDS = english);
			CREATE TEXT SEARCH CONFIGURATION public.simple (COPY = pg_catalog.simple);
			ALTER TEXT SEARCH CONFIGURATION public.simple ALTER MAPPING FOR asciiword WITH public.simple_stop`,
		"stemming": `CREATE TEXT SEARCH CONFIGURATION public.simple (COPY = pg_catalog.english)`,
	} {
		t.Run(name, func(t *testing.T) {
			url := pgtest.NewDB(t)
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(ctx, setup); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, `SELECT set_config('search_path', 'public, pg_catalog', false)`); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = public, pg_catalog', current_database()); END $$`); err != nil {
				t.Fatal(err)
			}
			var differs bool
			if err := conn.QueryRow(ctx, `SELECT to_tsvector('simple', 'the lazy dogs') <> to_tsvector('pg_catalog.simple', 'the lazy dogs')`).Scan(&differs); err != nil || !differs {
				t.Fatalf("the database's 'simple' configuration is the standard one (%v)", err)
			}
			checkDisabled(t, url)
		})
	}
	// A locale that lower-cases ASCII differently (Turkish 'I' to a dotless i) fails the same
	// probe; Debian's PostgreSQL has no such locale unless it is generated, so it is not run
	// here.
}

// checkDisabled opens a Store on url, whose text search differs from plainTSVector, and checks
// that it leaves every tsvector to PostgreSQL.
func checkDisabled(t *testing.T, url string) {
	t.Helper()
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.ComputesTSVectors() || s.tsv.typographic {
		t.Fatal("the Store computes tsvectors though the database's text search differs")
	}
	chunks := []Chunk{{Content: "THE lazy dogs of ISTANBUL: well-known, don't stop.", TokenCount: 1}}
	id := completeDoc(t, s, "task", chunks)
	if bad, _ := tsvMismatches(t, s.pool, id); bad != 0 {
		t.Fatal("the stored tsv differs from the database's to_tsvector")
	}
	var got string
	if err := s.pool.QueryRow(t.Context(), `SELECT tsv::text FROM chunks WHERE document_id = $1`, id).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want, _ := plainTSVector(chunks[0].Content, tsvParser{maxWord: tsvMaxWord}); got == want {
		t.Fatalf("stored %s, the Go result, in a database that computes another", got)
	}
}

// localeDB creates a database with the first of the LC_CTYPE locales the server has, dropped
// when t ends, and returns its URL; t fails when the server has none of them.
func localeDB(t *testing.T, locales ...string) string {
	t.Helper()
	ctx := context.Background()
	admin := pgtest.AdminURL(t)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("quire_test_locale_%08x", rand.Uint32())
	var missing []string
	for _, ctype := range locales {
		_, err = conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+
			` TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE '`+ctype+`'`)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && strings.Contains(pgErr.Message, "locale") {
			missing = append(missing, pgErr.Message)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			c, err := pgx.Connect(ctx, admin)
			if err != nil {
				t.Logf("drop %s: %v", name, err)
				return
			}
			defer c.Close(ctx)
			if _, err := c.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
				t.Logf("drop %s: %v", name, err)
			}
		})
		u, err := url.Parse(admin)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		return u.String()
	}
	t.Fatalf("the server has none of the locales %v (%s)", locales, strings.Join(missing, "; "))
	return ""
}

// A database from before stored tsvectors keeps its rows' tsvectors through the migration,
// stores new ones as PostgreSQL would, and migrates back down to the generated column.
func TestTSVMigrationKeepsExistingRows(t *testing.T) {
	ctx := t.Context()
	pool, p := migratedTo(t, 5)
	// The chunks of a document stored before: tsv generated.
	chunks := tsvChunks(t)
	var old int64
	if err := pool.QueryRow(ctx, `INSERT INTO documents (tenant_id, agent_id, kind, task_id, status)
		VALUES ('acme', '7', 'document', 'old', 'completed') RETURNING id`).Scan(&old); err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		if _, err := pool.Exec(ctx, `INSERT INTO chunks (document_id, tenant_id, agent_id, ordinal, content, token_count)
			VALUES ($1, 'acme', '7', $2, $3, 1)`, old, c.Ordinal, c.Content); err != nil {
			t.Fatal(err)
		}
	}
	stored := func() string {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT tsv::text FROM chunks WHERE document_id = $1 ORDER BY ordinal`, old)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, "\n")
	}
	generated := func() string {
		t.Helper()
		var g string
		if err := pool.QueryRow(ctx, `SELECT is_generated FROM information_schema.columns
			WHERE table_name = 'chunks' AND column_name = 'tsv'`).Scan(&g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	before := stored()

	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if g := generated(); g != "NEVER" {
		t.Fatalf("tsv is_generated = %s after the migration, want NEVER", g)
	}
	if got := stored(); got != before {
		t.Fatalf("tsvectors after the migration\n%s\nwant\n%s", got, before)
	}
	s := &Store{pool: pool}
	var err error
	if s.tsv, s.tsvInGo, err = checkTSVector(ctx, pool); err != nil || !s.tsvInGo {
		t.Fatalf("checkTSVector: plain %v, %v", s.tsvInGo, err)
	}
	id := completeDoc(t, s, "new", chunks)
	if bad, total := tsvMismatches(t, pool, id); bad != 0 || total != len(chunks) {
		t.Fatalf("%d of %d new chunks' tsv differ from to_tsvector", bad, total)
	}

	if _, err := p.DownTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if g := generated(); g != "ALWAYS" {
		t.Fatalf("tsv is_generated = %s after the down migration, want ALWAYS", g)
	}
	for _, doc := range []int64{old, id} {
		if bad, _ := tsvMismatches(t, pool, doc); bad != 0 {
			t.Fatalf("%d tsvectors differ from to_tsvector after the down migration", bad)
		}
	}
	var idx int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE indexname = 'chunks_tsv_idx'`).Scan(&idx); err != nil || idx != 1 {
		t.Fatalf("chunks_tsv_idx: %d, %v", idx, err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkTSVector computes the tsvector of a chunk of about 3 KB of plain text.
func BenchmarkTSVector(b *testing.B) {
	text := plainText(rand.New(rand.NewPCG(7, 8)), 2800, false)
	if _, ok := plainTSVector(text, tsvParser{false, tsvMaxWord}); !ok {
		b.Fatal("the benchmark text is not plain")
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		plainTSVector(text, tsvParser{false, tsvMaxWord})
	}
}
