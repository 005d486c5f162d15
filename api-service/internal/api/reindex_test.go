package api_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

func TestReindexOfADocumentEmbeddedWithAnotherModel(t *testing.T) {
	e := newEnv(t, 0)
	d := &docstore.Document{TenantID: "acme", AgentID: "7", Kind: job.KindDocument, Filename: "old.txt", TaskID: "old-task", Priority: "high"}
	if err := e.docs.InsertDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if err := e.docs.StartProcessing(t.Context(), d.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.docs.Complete(t.Context(), d.ID, docstore.Completion{EmbeddingModel: "text-embedding-ada-002",
		Chunks: []docstore.Chunk{{Content: "embedded long ago", TokenCount: 3, Embedding: []float32{1, 0}}}}); err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/api/v1/documents/%d", d.ID)
	if _, doc := e.get(t, tokenAcme, path); doc["stale_embeddings"] != true {
		t.Fatalf("document embedded with another model = %v, want stale_embeddings true", doc)
	}
	if resp, _ := e.call(t, http.MethodPost, tokenOther, path+"/reindex"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another tenant's reindex = %d, want 404", resp.StatusCode)
	}
	resp, out := e.call(t, http.MethodPost, tokenAcme, path+"/reindex")
	if resp.StatusCode != http.StatusAccepted || out["status"] != "queued" {
		t.Fatalf("reindex = %d %v", resp.StatusCode, out)
	}
	st, _ := e.js.Stream(t.Context(), "JOBS_HIGH")
	m, err := st.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	j, err := job.Decode(m.Data)
	if err != nil || j.Kind != job.KindReindex || j.DocumentID != d.ID || j.TaskID != out["task_id"] || j.Object != "" {
		t.Fatalf("reindex job = %+v, %v", j, err)
	}
	if _, task := e.get(t, tokenAcme, "/api/v1/tasks/"+j.TaskID); task["state"] != "PENDING" {
		t.Fatalf("reindex task = %v", task)
	}
	// It is queued now; a second reindex waits for the first.
	if resp, _ := e.call(t, http.MethodPost, tokenAcme, path+"/reindex"); resp.StatusCode != http.StatusConflict {
		t.Fatalf("reindex of a queued document = %d, want 409", resp.StatusCode)
	}
}
