package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/quirehq/quire/shared/quiretest"
)

func (e *env) patchJSON(t *testing.T, token, path, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return do(t, req)
}

func errMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func TestUploadWebpageAndCrawlStoreMetadata(t *testing.T) {
	e := newEnv(t, 0)
	resp, body := e.upload(t, tokenAcme, "7", "note.txt", []byte("a note with metadata\n"),
		map[string]string{"metadata": `{"team": "ops", "year": 2026, "tags": ["a", "b"], "draft": false}`})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload with metadata = %d %v", resp.StatusCode, body)
	}
	_, doc := e.get(t, tokenAcme, "/api/v1/documents/"+jsonNumber(body["id"]))
	md, _ := doc["metadata"].(map[string]any)
	if md["team"] != "ops" || md["year"] != 2026.0 || md["draft"] != false || fmt.Sprint(md["tags"]) != "[a b]" {
		t.Fatalf("uploaded document's metadata = %v", doc["metadata"])
	}
	resp, body = e.postJSON(t, tokenAcme, "/api/v1/documents/agent/7/webpage", `{"url":"https://docs.example.com/a","metadata":{"source":"docs"}}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webpage with metadata = %d %v", resp.StatusCode, body)
	}
	if _, doc = e.get(t, tokenAcme, "/api/v1/documents/"+jsonNumber(body["id"])); fmt.Sprint(doc["metadata"]) != "map[source:docs]" {
		t.Fatalf("webpage document's metadata = %v", doc["metadata"])
	}
	resp, body = e.postJSON(t, tokenAcme, "/api/v1/documents/agent/7/crawl", `{"url":"https://docs.example.com/","metadata":{"source":"site"}}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("crawl with metadata = %d %v", resp.StatusCode, body)
	}
	j, _, _ := lastJob(t, e, "JOBS_LOW")
	if j.Metadata != `{"source":"site"}` {
		t.Fatalf("crawl job metadata = %q, want the request's for its pages", j.Metadata)
	}
	// Without metadata a document has the empty object.
	_, body = e.upload(t, tokenAcme, "7", "plain.txt", []byte("no metadata\n"), nil)
	if _, doc = e.get(t, tokenAcme, "/api/v1/documents/"+jsonNumber(body["id"])); fmt.Sprint(doc["metadata"]) != "map[]" {
		t.Fatalf("document without metadata shows %v", doc["metadata"])
	}
}

func TestBadMetadataIs400AndStoresNothing(t *testing.T) {
	e := newEnv(t, 0)
	before := quiretest.StreamMsgs(t, e.js, "JOBS_HIGH")
	for _, c := range []struct{ metadata, want string }{
		{`[1]`, "metadata must be a JSON object"},
		{`{"year": {"$gt": 1}}`, "metadata.year: must be a string, number, boolean or array of strings"},
		{`{"tags": ["a", 1]}`, "metadata.tags[1]: must be a string"},
		{`{"bad key": 1}`, `metadata key "bad key" must be 1-64 characters`},
		{`{"a": "` + strings.Repeat("x", 9000) + `"}`, "larger than 8192 bytes"},
	} {
		resp, body := e.upload(t, tokenAcme, "7", "note.txt", []byte("a note\n"), map[string]string{"metadata": c.metadata})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(errMessage(body), c.want) {
			t.Errorf("upload with metadata %.40s = %d %v, want 400 %q", c.metadata, resp.StatusCode, body, c.want)
		}
		resp, body = e.postJSON(t, tokenAcme, "/api/v1/documents/agent/7/webpage", `{"url":"https://docs.example.com/a","metadata":`+c.metadata+`}`)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(errMessage(body), c.want) {
			t.Errorf("webpage with metadata %.40s = %d %v, want 400 %q", c.metadata, resp.StatusCode, body, c.want)
		}
	}
	if after := quiretest.StreamMsgs(t, e.js, "JOBS_HIGH"); after != before {
		t.Fatalf("refused submissions published %d jobs", after-before)
	}
}

func TestPatchDocumentMetadata(t *testing.T) {
	e := newEnv(t, 0)
	d := storeDoc(t, e.docs, "acme", "7", "pumps.txt", "The cooling pump must be inspected every week.")
	path := fmt.Sprintf("/api/v1/documents/%d", d.ID)
	resp, body := e.patchJSON(t, tokenAcme, path, `{"metadata":{"team":"ops","year":2025}}`)
	if resp.StatusCode != http.StatusOK || fmt.Sprint(body["metadata"]) != "map[team:ops year:2025]" || body["status"] != "completed" || body["chunk_count"] != 1.0 {
		t.Fatalf("PATCH = %d %v", resp.StatusCode, body)
	}
	// Search sees it at once, without re-processing.
	resp, body = e.postJSON(t, tokenAcme, "/api/v1/agents/7/search", `{"q":"cooling pump","filter":{"metadata.year":{"$gte":2025}}}`)
	if resp.StatusCode != http.StatusOK || len(results(t, body)) != 1 || fmt.Sprint(results(t, body)[0]["metadata"]) != "map[team:ops year:2025]" {
		t.Fatalf("search by the new metadata = %d %v", resp.StatusCode, body)
	}
	for _, c := range []struct {
		token, body string
		status      int
		want        string
	}{
		{tokenOther, `{"metadata":{"team":"theirs"}}`, http.StatusNotFound, "document not found"},
		{tokenAcme, `{}`, http.StatusBadRequest, "metadata is required"},
		{tokenAcme, `{"metadata":null}`, http.StatusBadRequest, "metadata is required"},
		{tokenAcme, `{"metadata":{"x":null}}`, http.StatusBadRequest, "metadata.x: must be"},
		{tokenAcme, `{"metadata":`, http.StatusBadRequest, "malformed JSON"},
	} {
		resp, body := e.patchJSON(t, c.token, path, c.body)
		if resp.StatusCode != c.status || !strings.Contains(errMessage(body), c.want) {
			t.Errorf("PATCH %s = %d %v, want %d %q", c.body, resp.StatusCode, body, c.status, c.want)
		}
	}
	if _, body = e.get(t, tokenAcme, path); fmt.Sprint(body["metadata"]) != "map[team:ops year:2025]" {
		t.Fatalf("refused PATCHes changed the metadata: %v", body["metadata"])
	}
	if resp, _ := e.patchJSON(t, tokenAcme, "/api/v1/documents/999999", `{"metadata":{}}`); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("PATCH of a missing document = %d", resp.StatusCode)
	}
}

func TestFilteredSearch(t *testing.T) {
	e := newEnv(t, 0)
	hr := storeDoc(t, e.docs, "acme", "7", "leave.txt", "Employees get 25 vacation days a year.")
	it := storeDoc(t, e.docs, "acme", "7", "laptops.txt", "Employees get a laptop and vacation from email on weekends.")
	for id, md := range map[int64]string{hr.ID: `{"department":"hr","year":2026}`, it.ID: `{"department":"it","year":2024}`} {
		if resp, body := e.patchJSON(t, tokenAcme, fmt.Sprintf("/api/v1/documents/%d", id), `{"metadata":`+md+`}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("PATCH = %d %v", resp.StatusCode, body)
		}
	}
	found := func(filter string) []string {
		t.Helper()
		resp, body := e.postJSON(t, tokenAcme, "/api/v1/agents/7/search", `{"q":"employees vacation","k":5,"filter":`+filter+`}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("search with %s = %d %v", filter, resp.StatusCode, body)
		}
		var names []string
		for _, r := range results(t, body) {
			names = append(names, r["filename"].(string))
		}
		return names
	}
	for filter, want := range map[string]string{
		`null`:                           "[leave.txt laptops.txt]",
		`{}`:                             "[leave.txt laptops.txt]",
		`{"metadata.department":"hr"}`:   "[leave.txt]",
		`{"metadata.year":{"$lt":2025}}`: "[laptops.txt]",
		`{"$or":[{"metadata.department":"it"},{"metadata.year":2026}]}`: "[laptops.txt leave.txt]",
		`{"metadata.department":"hr' OR 1=1 --"}`:                       "[]",
		fmt.Sprintf(`{"document_id":{"$in":[%d]}}`, it.ID):              "[laptops.txt]",
	} {
		got := found(filter)
		if want == "[leave.txt laptops.txt]" || want == "[laptops.txt leave.txt]" {
			if len(got) != 2 {
				t.Errorf("filter %s found %v, want both", filter, got)
			}
			continue
		}
		if fmt.Sprint(got) != want {
			t.Errorf("filter %s found %v, want %s", filter, got, want)
		}
	}
	for _, c := range []struct{ body, want string }{
		{`{"q":"x","filter":{"$and":[{"kind":"document"},{"metadata.year":{"$gt":true}}]}}`, "filter.$and[1].metadata.year: $gt needs a number or a string"},
		{`{"q":"x","filter":{"metadata.a'); DROP TABLE chunks; --":1}}`, "filter.metadata.a'); DROP TABLE chunks; --: a metadata key is"},
		{`{"q":"x","filter":{"title":"x"}}`, "filter.title: unknown field"},
		{`{"q":"x","filter":[]}`, "filter: must be an object"},
		{`{"q":"","filter":{}}`, "q is required"},
		{`{"q":"x","k":51}`, "k must be an integer in 1..50"},
		{`{"q":"x","k":1.5}`, "malformed JSON"},
	} {
		resp, body := e.postJSON(t, tokenAcme, "/api/v1/agents/7/search", c.body)
		if resp.StatusCode != http.StatusBadRequest || errMessage(body) == "" || !strings.Contains(errMessage(body), c.want) {
			t.Errorf("search %s = %d %v, want 400 %q", c.body, resp.StatusCode, body, c.want)
		}
	}
	// The tables are all still there.
	if resp, body := e.postJSON(t, tokenAcme, "/api/v1/agents/7/search", `{"q":"employees"}`); resp.StatusCode != http.StatusOK || len(results(t, body)) != 2 {
		t.Fatalf("search after the injection attempts = %d %v", resp.StatusCode, body)
	}
}
