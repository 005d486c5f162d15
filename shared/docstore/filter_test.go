package docstore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/job"
)

// filterSet is a set of documents whose metadata every filter case is checked against.
type filterSet struct {
	s    *docstore.Store
	vec  func(string) []float32
	docs map[string]*docstore.Document
}

func labelledSet(t *testing.T) *filterSet {
	t.Helper()
	s, _ := open(t)
	l := &filterSet{s: s, vec: localVec(t), docs: map[string]*docstore.Document{}}
	for _, d := range []struct{ name, metadata string }{
		{"a", `{"year": 2020, "lang": "en", "tags": ["alpha", "beta"], "draft": false}`},
		{"b", `{"year": 2022, "lang": "fr", "tags": ["beta"], "draft": true}`},
		{"c", `{"year": "2021", "lang": "en", "published": "2021-06-01"}`},
		{"d", `{}`},
		{"e", `{"year": 2024.5, "lang": "de", "tags": ["gamma"], "published": "2024-01-15"}`},
		{"https://example.com/f", `{"lang": "en", "year": 2023}`},
	} {
		md, err := docstore.ParseMetadata([]byte(d.metadata))
		if err != nil {
			t.Fatal(err)
		}
		doc := addDocWithMetadata(t, s, d.name, md, l.vec, "shared words of every labelled document "+d.name)
		l.docs[strings.TrimPrefix(d.name, "https://example.com/")] = doc
	}
	return l
}

func addDocWithMetadata(t *testing.T, s *docstore.Store, name string, md json.RawMessage, vec func(string) []float32, contents ...string) *docstore.Document {
	t.Helper()
	d := &docstore.Document{TenantID: "acme", AgentID: "7", Kind: job.KindDocument, Filename: name,
		TaskID: fmt.Sprintf("task-%d", taskSeq.Add(1)), Priority: "high", Metadata: md}
	if strings.HasPrefix(name, "https://") {
		d.Kind, d.Filename, d.URL = job.KindWebpage, "", name
	}
	if err := s.InsertDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	chunks := make([]docstore.Chunk, len(contents))
	for i, c := range contents {
		chunks[i] = docstore.Chunk{Ordinal: i, Content: c, TokenCount: len(strings.Fields(c))}
		if vec != nil {
			chunks[i].Embedding = vec(c)
		}
	}
	if err := s.Complete(t.Context(), d.ID, docstore.Completion{EmbeddingModel: embed.LocalModel, Chunks: chunks}); err != nil {
		t.Fatal(err)
	}
	return d
}

// found returns the names of the documents a filtered search finds, by full text only, by
// vector only, and by both; they must agree.
func (l *filterSet) found(t *testing.T, filter string) string {
	t.Helper()
	f, err := docstore.ParseFilter([]byte(filter))
	if err != nil {
		t.Fatalf("ParseFilter(%s): %v", filter, err)
	}
	text := "shared words labelled"
	var answers []string
	for _, mode := range []string{"text", "vector", "hybrid"} {
		q := docstore.SearchQuery{TenantID: "acme", AgentID: "7", Model: embed.LocalModel, K: 50, Filter: f}
		if mode != "vector" {
			q.Text = text
		}
		if mode != "text" {
			q.Embedding = l.vec(text)
		}
		hits, err := l.s.Search(t.Context(), q)
		if err != nil {
			t.Fatalf("search %s with %s: %v", mode, filter, err)
		}
		var names []string
		for _, h := range hits {
			for n, d := range l.docs {
				if d.ID == h.DocumentID {
					names = append(names, n)
				}
			}
		}
		slices.Sort(names)
		answers = append(answers, strings.Join(names, ","))
	}
	if answers[0] != answers[1] || answers[1] != answers[2] {
		t.Fatalf("filter %s: text ranking found %q, vector %q, hybrid %q", filter, answers[0], answers[1], answers[2])
	}
	return answers[0]
}

func TestFilterOperatorsOnALabelledSet(t *testing.T) {
	for _, selective := range []bool{true, false} {
		t.Run(fmt.Sprintf("selective=%v", selective), func(t *testing.T) {
			l := labelledSet(t)
			if !selective {
				l.s.SetExactFilterChunks(-1) // the filter as a subquery of each ranking
			}
			testFilterOperators(t, l)
		})
	}
}

func testFilterOperators(t *testing.T, l *filterSet) {
	cases := []struct{ filter, want string }{
		{``, "a,b,c,d,e,f"},
		{`{}`, "a,b,c,d,e,f"},
		{`{"metadata.lang": "en"}`, "a,c,f"},
		{`{"metadata.lang": {"$eq": "fr"}}`, "b"},
		{`{"metadata.lang": {"$ne": "en"}}`, "b,d,e"},
		{`{"metadata.lang": {"$in": ["fr", "de"]}}`, "b,e"},
		{`{"metadata.lang": {"$nin": ["fr", "de"]}}`, "a,c,d,f"},
		{`{"metadata.tags": "beta"}`, "a,b"},
		{`{"metadata.tags": {"$in": ["alpha", "gamma"]}}`, "a,e"},
		{`{"metadata.tags": {"$nin": ["beta"]}}`, "c,d,e,f"},
		{`{"metadata.draft": true}`, "b"},
		{`{"metadata.draft": {"$ne": true}}`, "a,c,d,e,f"},
		{`{"metadata.year": 2020}`, "a"},
		{`{"metadata.year": 2020.0}`, "a"},
		{`{"metadata.year": "2021"}`, "c"},
		{`{"metadata.year": {"$gt": 2020}}`, "b,e,f"},
		{`{"metadata.year": {"$gte": 2022}}`, "b,e,f"},
		{`{"metadata.year": {"$lt": 2022}}`, "a"},
		{`{"metadata.year": {"$lte": 2022}}`, "a,b"},
		{`{"metadata.year": {"$gte": 2021, "$lt": 2024}}`, "b,f"},
		{`{"metadata.year": {"$gt": 1e3}}`, "a,b,e,f"},
		{`{"metadata.published": {"$gte": "2022-01-01"}}`, "e"},
		{`{"metadata.published": {"$lt": "2022-01-01"}}`, "c"},
		{`{"metadata.missing": "x"}`, ""},
		{`{"metadata.lang": "x'); DROP TABLE chunks; --"}`, ""},
		{`{"metadata.lang": {"$in": ["en' OR '1'='1", "\"}]"]}}`, ""},
		{`{"kind": "webpage"}`, "f"},
		{`{"kind": {"$ne": "webpage"}}`, "a,b,c,d,e"},
		{`{"kind": {"$in": ["document", "crawl"]}, "metadata.lang": "en"}`, "a,c"},
		{`{"$or": [{"metadata.lang": "fr"}, {"metadata.tags": "gamma"}]}`, "b,e"},
		{`{"$and": [{"metadata.lang": "en"}, {"$or": [{"metadata.year": {"$lt": 2021}}, {"kind": "webpage"}]}]}`, "a,f"},
		{`{"$and": [{"metadata.lang": "en"}], "metadata.year": {"$gt": 2020}}`, "f"},
		{`{"created_at": {"$gte": "2000-01-01T00:00:00Z"}}`, "a,b,c,d,e,f"},
		{`{"created_at": {"$lt": "2000-01-01T00:00:00Z"}}`, ""},
	}
	for _, c := range cases {
		if got := l.found(t, c.filter); got != c.want {
			t.Errorf("filter %s found %q, want %q", c.filter, got, c.want)
		}
	}
	// document_id and created_at with the labelled documents' own values.
	a, e := l.docs["a"], l.docs["e"]
	for _, c := range []struct{ filter, want string }{
		{fmt.Sprintf(`{"document_id": %d}`, a.ID), "a"},
		{fmt.Sprintf(`{"document_id": {"$in": [%d, %d]}}`, a.ID, e.ID), "a,e"},
		{fmt.Sprintf(`{"document_id": {"$nin": [%d, %d]}, "metadata.lang": "en"}`, a.ID, e.ID), "c,f"},
		{fmt.Sprintf(`{"document_id": {"$ne": %d}, "metadata.year": {"$lte": 2020}}`, a.ID), ""},
		{fmt.Sprintf(`{"document_id": {"$gt": %d, "$lte": %d}}`, a.ID, l.docs["c"].ID), "b,c"},
		{fmt.Sprintf(`{"created_at": {"$gt": %q}}`, e.CreatedAt.Add(-time.Microsecond).Format(time.RFC3339Nano)), "e,f"},
		{fmt.Sprintf(`{"created_at": %q}`, a.CreatedAt.Format(time.RFC3339Nano)), "a"},
	} {
		if got := l.found(t, c.filter); got != c.want {
			t.Errorf("filter %s found %q, want %q", c.filter, got, c.want)
		}
	}
}

func TestFilterKeepsKHitsWhenKMatch(t *testing.T) {
	s, _ := open(t)
	vec := localVec(t)
	// 150 better-matching chunks outside the filter: post-filtering the rankings' first 100
	// would return nothing.
	loud := make([]string, 150)
	for i := range loud {
		loud[i] = fmt.Sprintf("pump pump pump pump failure %d", i)
	}
	addDocWithMetadata(t, s, "loud.txt", json.RawMessage(`{"team":"b"}`), vec, loud...)
	quiet := addDocWithMetadata(t, s, "quiet.txt", json.RawMessage(`{"team":"a"}`), vec,
		"the pump", "a pump report", "pump notes", "one pump", "pump five", "pump six")
	f, err := docstore.ParseFilter([]byte(`{"metadata.team": "a"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, withVec := range []bool{false, true} {
		q := docstore.SearchQuery{TenantID: "acme", AgentID: "7", Text: "pump", Model: embed.LocalModel, K: 5, Filter: f}
		if withVec {
			q.Embedding = vec("pump")
		}
		hits, err := s.Search(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 5 {
			t.Fatalf("vector %v: %d hits, want 5", withVec, len(hits))
		}
		for _, h := range hits {
			if h.DocumentID != quiet.ID || string(h.Metadata) != `{"team": "a"}` {
				t.Fatalf("hit outside the filter: %+v", h)
			}
		}
	}
}

func TestFilterErrorsNameTheOffendingPart(t *testing.T) {
	cases := []struct{ filter, want string }{
		{`{"$and": [{"kind": "document"}, {"metadata.year": {"$gt": true}}]}`, `filter.$and[1].metadata.year: $gt needs a number or a string`},
		{`{"metadata.year": {"$gt": [1]}}`, `filter.metadata.year: $gt needs a number or a string`},
		{`{"metadata.x'); DROP TABLE chunks; --": 1}`, `filter.metadata.x'); DROP TABLE chunks; --: a metadata key is 1-64 characters`},
		{`{"metadata.a\"b": 1}`, `filter.metadata.a"b: a metadata key is`},
		{`{"metadata.": 1}`, `filter.metadata.: a metadata key is`},
		{`{"metadata.` + strings.Repeat("k", 65) + `": 1}`, `a metadata key is 1-64`},
		{`{"metadata.lang": {"$regex": "e.*"}}`, `filter.metadata.lang: operator "$regex" is not one of`},
		{`{"metadata.lang": {"$eq; DROP TABLE documents": "en"}}`, `operator "$eq; DROP TABLE documents" is not one of`},
		{`{"metadata.lang": {}}`, `filter.metadata.lang: an empty condition`},
		{`{"metadata.lang": null}`, `filter.metadata.lang: $eq needs a string, number or boolean`},
		{`{"metadata.lang": ["en"]}`, `filter.metadata.lang: $eq needs a string, number or boolean`},
		{`{"metadata.lang": "a\u0000b"}`, `without NUL`},
		{`{"metadata.lang": {"$in": []}}`, `filter.metadata.lang: $in needs an array of 1 to 256 values`},
		{`{"metadata.lang": {"$in": ["en", {"$gt": 1}]}}`, `filter.metadata.lang.$in[1]: needs a string, number or boolean`},
		{`{"document_id": "1"}`, `filter.document_id: $eq needs a positive integer document id`},
		{`{"document_id": {"$in": [1, -2]}}`, `filter.document_id.$in[1]: needs a positive integer`},
		{`{"document_id": 1.5}`, `needs a positive integer`},
		{`{"kind": "pdf"}`, `filter.kind: $eq needs a kind: document, webpage or crawl`},
		{`{"kind": {"$gt": "document"}}`, `filter.kind: operator "$gt" is not one of $eq $ne $in $nin`},
		{`{"created_at": {"$gte": "yesterday"}}`, `filter.created_at: $gte needs an RFC 3339 time`},
		{`{"created_at": {"$in": ["2026-01-01T00:00:00Z"]}}`, `operator "$in" is not one of`},
		{`{"title": "x"}`, `filter.title: unknown field`},
		{`{"$not": {}}`, `filter.$not: unknown field`},
		{`{"$or": []}`, `filter.$or: needs a non-empty array of filters`},
		{`{"$or": {"kind": "document"}}`, `filter.$or: needs a non-empty array`},
		{`{"$or": [{}]}`, `filter.$or[0]: an empty condition`},
		{`{"$or": ["kind"]}`, `filter.$or[0]: must be an object`},
		{`[]`, `filter: must be an object`},
		{`"kind"`, `filter: must be an object`},
		{`{"kind": "document"} {}`, `filter: unexpected data`},
		{`{"kind": `, `filter: not valid JSON`},
		{strings.Repeat(`{"$and": [`, 8) + `{"kind": "document"}` + strings.Repeat(`]}`, 8), `nest deeper than 6`},
		{`{"$or": [` + strings.Repeat(`{"kind": "document"},`, 64) + `{"kind": "document"}]}`, `more than 64 conditions`},
	}
	for _, c := range cases {
		_, err := docstore.ParseFilter([]byte(c.filter))
		var fe *docstore.FilterError
		if !errors.As(err, &fe) || !errors.Is(err, docstore.ErrBadQuery) {
			t.Errorf("ParseFilter(%s) = %v, want a FilterError", c.filter, err)
			continue
		}
		if got := fe.Path + ": " + fe.Msg; !strings.Contains(got, c.want) {
			t.Errorf("ParseFilter(%s) = %q, want it to contain %q", c.filter, got, c.want)
		}
	}
}

func TestParseMetadata(t *testing.T) {
	good := []struct{ in, want string }{
		{`{}`, `{}`},
		{` { "a" : "x", "b.c-d_E9": 1.5, "f": true, "g": ["x", "y"], "h": [] } `, `{"a":"x","b.c-d_E9":1.5,"f":true,"g":["x","y"],"h":[]}`},
	}
	for _, c := range good {
		got, err := docstore.ParseMetadata([]byte(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("ParseMetadata(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, want string }{
		{``, `must be a JSON object`},
		{`[]`, `must be a JSON object`},
		{`"x"`, `must be a JSON object`},
		{`{"a": null}`, `metadata.a: must be a string, number, boolean or array of strings`},
		{`{"a": {"b": 1}}`, `metadata.a: must be a string`},
		{`{"a": ["x", 2]}`, `metadata.a[1]: must be a string`},
		{`{"a": ["x", ["y"]]}`, `metadata.a[1]: must be a string`},
		{`{"a b": 1}`, `metadata key "a b" must be 1-64 characters`},
		{`{"x'); DROP TABLE chunks; --": 1}`, `must be 1-64 characters`},
		{`{"": 1}`, `metadata key "" must be`},
		{`{"` + strings.Repeat("k", 65) + `": 1}`, `must be 1-64 characters`},
		{`{"a": 1, "a": 2}`, `metadata.a appears twice`},
		{`{"a": "x\u0000"}`, `metadata.a: a NUL character`},
		{`{"a": 1} x`, `unexpected data after`},
		{`{"a": 1`, `not valid JSON`},
		{`{"a": "` + strings.Repeat("x", docstore.MaxMetadataBytes) + `"}`, `larger than 8192 bytes`},
	}
	for _, c := range bad {
		_, err := docstore.ParseMetadata([]byte(c.in))
		if !errors.Is(err, docstore.ErrBadMetadata) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseMetadata(%.40s) = %v, want an error containing %q", c.in, err, c.want)
		}
	}
}

func TestSetMetadataIsTenantScopedAndKeepsChunks(t *testing.T) {
	s, _ := open(t)
	d := addDocWithMetadata(t, s, "m.txt", json.RawMessage(`{"v":1}`), nil, "metadata changes leave chunks alone")
	if _, err := s.SetMetadata(t.Context(), "other", d.ID, json.RawMessage(`{"v":2}`)); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("another tenant's SetMetadata = %v, want ErrNotFound", err)
	}
	got, err := s.SetMetadata(t.Context(), "acme", d.ID, json.RawMessage(`{"v":3,"tags":["x"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Metadata) != `{"v": 3, "tags": ["x"]}` || got.Status != job.DocCompleted || got.ChunkCount != 1 {
		t.Fatalf("after SetMetadata: %+v metadata %s", got, got.Metadata)
	}
	f, _ := docstore.ParseFilter([]byte(`{"metadata.tags": "x"}`))
	hits, err := s.Search(t.Context(), docstore.SearchQuery{TenantID: "acme", AgentID: "7", Text: "chunks", Filter: f})
	if err != nil || len(hits) != 1 {
		t.Fatalf("search by the new metadata: %v, %v", hits, err)
	}
}
