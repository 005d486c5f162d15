package api_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/quirehq/quire/api-service/internal/api"
	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/job"
)

// storeDoc stores a completed document with chunks embedded by the local embedder, as a
// worker would.
func storeDoc(t *testing.T, docs *docstore.Store, tenant, agent, filename string, chunks ...string) *docstore.Document {
	t.Helper()
	d := &docstore.Document{TenantID: tenant, AgentID: agent, Kind: job.KindDocument, Filename: filename,
		TaskID: fmt.Sprintf("%s-%s-%s", tenant, agent, filename), Priority: "high"}
	if err := docs.InsertDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	emb, err := embed.NewLocal(0)
	if err != nil {
		t.Fatal(err)
	}
	vecs, err := emb.Embed(t.Context(), chunks)
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]docstore.Chunk, len(chunks))
	for i, c := range chunks {
		rows[i] = docstore.Chunk{Ordinal: i, Content: c, TokenCount: len(strings.Fields(c)), Page: 1, Heading: "Overview", Embedding: vecs[i]}
	}
	if err := docs.Complete(t.Context(), d.ID, docstore.Completion{Title: "Handbook", EmbeddingModel: emb.Model(), Chunks: rows}); err != nil {
		t.Fatal(err)
	}
	return d
}

func searchPath(agent, q string, extra ...string) string {
	v := url.Values{"q": {q}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return "/api/v1/agents/" + agent + "/search?" + v.Encode()
}

func results(t *testing.T, body map[string]any) []map[string]any {
	t.Helper()
	raw, ok := body["results"].([]any)
	if !ok {
		t.Fatalf("results is not a list: %v", body)
	}
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		out[i] = r.(map[string]any)
	}
	return out
}

func TestSearchFindsTheTenantsChunks(t *testing.T) {
	e := newEnv(t, 0)
	pumps := storeDoc(t, e.docs, "acme", "7", "pumps.txt",
		"The cooling pump must be inspected every week for leaks.",
		"Replace the pump seal when the pressure drops below two bar.")
	storeDoc(t, e.docs, "acme", "7", "canteen.txt", "The canteen serves soup on Mondays.")
	storeDoc(t, e.docs, "other", "9", "pumps.txt", "The cooling pump must be inspected every week for leaks.")

	resp, body := e.get(t, tokenAcme, searchPath("7", "cooling pump inspection leaks"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("search = %d %v", resp.StatusCode, body)
	}
	if body["query"] != "cooling pump inspection leaks" || body["ranking"] != "hybrid" {
		t.Fatalf("search body = %v", body)
	}
	res := results(t, body)
	if len(res) == 0 {
		t.Fatal("no results")
	}
	top := res[0]
	for _, k := range []string{"chunk_id", "document_id", "filename", "url", "title", "page", "heading", "content", "score"} {
		if _, ok := top[k]; !ok {
			t.Errorf("result lacks %q: %v", k, top)
		}
	}
	if jsonNumber(top["document_id"]) != fmt.Sprint(pumps.ID) || top["filename"] != "pumps.txt" || top["title"] != "Handbook" ||
		top["heading"] != "Overview" || !strings.Contains(top["content"].(string), "inspected every week") || top["score"].(float64) <= 0 {
		t.Fatalf("top result = %v", top)
	}
	for _, r := range res {
		if r["filename"] == "pumps.txt" && jsonNumber(r["document_id"]) != fmt.Sprint(pumps.ID) {
			t.Fatalf("another tenant's chunk in the results: %v", r)
		}
	}

	// k bounds the results.
	_, body = e.get(t, tokenAcme, searchPath("7", "pump", "k", "1"))
	if n := len(results(t, body)); n != 1 {
		t.Fatalf("k=1 gave %d results", n)
	}
	// The other tenant sees nothing of acme's agent 7, and its own agent 9 only.
	resp, body = e.get(t, tokenOther, searchPath("7", "cooling pump"))
	if resp.StatusCode != http.StatusOK || len(results(t, body)) != 0 {
		t.Fatalf("other tenant's search of agent 7 = %d %v", resp.StatusCode, body)
	}
	_, body = e.get(t, tokenOther, searchPath("9", "cooling pump"))
	if res := results(t, body); len(res) != 1 || jsonNumber(res[0]["document_id"]) == fmt.Sprint(pumps.ID) {
		t.Fatalf("other tenant's own search = %v", body)
	}
}

func TestSearchRejectsBadParameters(t *testing.T) {
	e := newEnv(t, 0)
	tests := []struct {
		name, token, path string
		status            int
	}{
		{"no token", "", searchPath("7", "pump"), http.StatusUnauthorized},
		{"missing q", tokenAcme, "/api/v1/agents/7/search", http.StatusBadRequest},
		{"blank q", tokenAcme, searchPath("7", "   "), http.StatusBadRequest},
		{"q too long", tokenAcme, searchPath("7", strings.Repeat("é", 1001)), http.StatusBadRequest},
		{"k zero", tokenAcme, searchPath("7", "pump", "k", "0"), http.StatusBadRequest},
		{"k too big", tokenAcme, searchPath("7", "pump", "k", "51"), http.StatusBadRequest},
		{"k not a number", tokenAcme, searchPath("7", "pump", "k", "ten"), http.StatusBadRequest},
		{"k with a sign", tokenAcme, searchPath("7", "pump", "k", "+5"), http.StatusBadRequest},
		{"bad agent", tokenAcme, searchPath("a%20b", "pump"), http.StatusBadRequest},
		{"q of 1000 characters", tokenAcme, searchPath("7", strings.Repeat("é", 1000)), http.StatusOK},
		{"k 50", tokenAcme, searchPath("7", "pump", "k", "50"), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.get(t, tt.token, tt.path)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tt.status, body)
			}
			if tt.status == http.StatusBadRequest {
				if errBody, ok := body["error"].(map[string]any); !ok || errBody["code"] != "bad_request" {
					t.Fatalf("error body = %v", body)
				}
			}
		})
	}
}

// TestSearchWithoutEmbeddingsAnswersFromFullText: when the embeddings endpoint cannot embed
// the query, search still answers, from full text alone, and says so.
func TestSearchWithoutEmbeddingsAnswersFromFullText(t *testing.T) {
	e := newEnv(t, 0)
	doc := storeDoc(t, e.docs, "acme", "7", "pumps.txt", "The cooling pump must be inspected every week.")
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"overloaded","type":"server_error"}}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	emb, err := embed.New(t.Context(), embed.Config{Provider: embed.ProviderOpenAI, APIKey: "k", BaseURL: down.URL + "/v1", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	a := api.New(api.Config{Tokens: map[string]string{tokenAcme: "acme"}}, api.Deps{
		JetStream: e.js, Docs: e.docs, Embedder: emb, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+searchPath("7", "cooling pump"), nil)
	req.Header.Set("Authorization", "Bearer "+tokenAcme)
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusOK || body["ranking"] != "full_text" {
		t.Fatalf("search = %d %v", resp.StatusCode, body)
	}
	if res := results(t, body); len(res) != 1 || jsonNumber(res[0]["document_id"]) != fmt.Sprint(doc.ID) {
		t.Fatalf("results = %v", body)
	}
}
