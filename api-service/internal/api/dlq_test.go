package api_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/quiretest"
)

// deadLetter stores a document and puts its job in JOBS_DLQ the way a worker does.
func (e *env) deadLetter(t *testing.T, tenant, taskID string) int64 {
	t.Helper()
	d := &docstore.Document{TenantID: tenant, AgentID: "7", Kind: job.KindDocument, Filename: "bad.pdf", TaskID: taskID, Priority: "high"}
	if err := e.docs.InsertDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if err := e.docs.Fail(t.Context(), d.ID, "corrupt PDF"); err != nil {
		t.Fatal(err)
	}
	j := &job.Job{TaskID: taskID, Kind: job.KindDocument, TenantID: tenant, AgentID: "7", DocumentID: d.ID, Priority: job.PriorityHigh, Object: taskID, Filename: "bad.pdf"}
	body, err := j.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: "dlq.high.document", Data: body, Header: nats.Header{}}
	m.Header.Set(job.HeaderError, "corrupt PDF")
	m.Header.Set(job.HeaderAttempts, "1")
	m.Header.Set(job.HeaderOriginalSubject, "jobs.high.document")
	m.Header.Set(job.HeaderTaskID, taskID)
	m.Header.Set(job.HeaderTenantID, tenant)
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func (e *env) call(t *testing.T, method, token, path string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return do(t, req)
}

func TestDeadLetterListRetryAndDelete(t *testing.T) {
	e := newEnv(t, 0)
	docA := e.deadLetter(t, "acme", "task-a")
	e.deadLetter(t, "other", "task-b")
	e.deadLetter(t, "acme", "task-c")

	resp, body := e.call(t, http.MethodGet, tokenAcme, "/api/v1/dlq?limit=1")
	list := body["dead_letters"].([]any)
	if resp.StatusCode != 200 || len(list) != 1 || body["next_cursor"] == nil {
		t.Fatalf("first page = %d %v", resp.StatusCode, body)
	}
	first := list[0].(map[string]any)
	if first["task_id"] != "task-a" || first["error"] != "corrupt PDF" || first["attempts"] != 1.0 || first["original_subject"] != "jobs.high.document" {
		t.Fatalf("dead letter = %v", first)
	}
	_, body = e.call(t, http.MethodGet, tokenAcme, "/api/v1/dlq?cursor="+body["next_cursor"].(string))
	list = body["dead_letters"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["task_id"] != "task-c" {
		t.Fatalf("second page = %v (another tenant's dead letter must not appear)", body)
	}
	id := strconv.FormatFloat(first["id"].(float64), 'f', 0, 64)

	// Another tenant can neither retry nor delete it.
	for _, m := range []string{http.MethodPost, http.MethodDelete} {
		path := "/api/v1/dlq/" + id
		if m == http.MethodPost {
			path += "/retry"
		}
		if resp, _ := e.call(t, m, tokenOther, path); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("other tenant %s %s = %d, want 404", m, path, resp.StatusCode)
		}
	}

	resp, body = e.call(t, http.MethodPost, tokenAcme, "/api/v1/dlq/"+id+"/retry")
	if resp.StatusCode != http.StatusAccepted || body["task_id"] != "task-a" {
		t.Fatalf("retry = %d %v", resp.StatusCode, body)
	}
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_HIGH"); n != 1 {
		t.Fatalf("JOBS_HIGH holds %d jobs after a retry, want 1", n)
	}
	st, _ := e.js.Stream(t.Context(), "JOBS_HIGH")
	m, err := st.GetMsg(t.Context(), 1)
	if err != nil || m.Header.Get("Nats-Msg-Id") != "task-a:r"+id {
		t.Fatalf("re-published job Nats-Msg-Id = %q (%v), want task-a:r%s", m.Header.Get("Nats-Msg-Id"), err, id)
	}
	if _, task := e.get(t, tokenAcme, "/api/v1/tasks/task-a"); task["state"] != "PENDING" || task["attempts"] != 0.0 {
		t.Fatalf("task after retry = %v", task)
	}
	if doc, err := e.docs.GetDocument(t.Context(), "acme", docA); err != nil || doc.Status != job.DocQueued || doc.Error != "" {
		t.Fatalf("document after retry = %+v, %v", doc, err)
	}
	if resp, _ := e.call(t, http.MethodPost, tokenAcme, "/api/v1/dlq/"+id+"/retry"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("retrying a dead letter twice = %d, want 404", resp.StatusCode)
	}

	_, body = e.call(t, http.MethodGet, tokenAcme, "/api/v1/dlq")
	list = body["dead_letters"].([]any)
	if len(list) != 1 {
		t.Fatalf("after retry the tenant has %d dead letters, want 1", len(list))
	}
	other := strconv.FormatFloat(list[0].(map[string]any)["id"].(float64), 'f', 0, 64)
	if resp, _ := e.call(t, http.MethodDelete, tokenAcme, "/api/v1/dlq/"+other); resp.StatusCode != 200 {
		t.Fatalf("delete = %d", resp.StatusCode)
	}
	_, body = e.call(t, http.MethodGet, tokenAcme, "/api/v1/dlq")
	if len(body["dead_letters"].([]any)) != 0 {
		t.Fatalf("dead letters after purge: %v", body)
	}
}

func TestIdempotencyKeyReplaysTheFirstResponse(t *testing.T) {
	e := newEnv(t, 0)
	resp1, first := e.uploadWithKey(t, tokenAcme, "7", "a.txt", []byte("hello"), nil, "key-1")
	resp2, second := e.uploadWithKey(t, tokenAcme, "7", "a.txt", []byte("hello"), nil, "key-1")
	if resp1.StatusCode != 202 || resp2.StatusCode != 202 {
		t.Fatalf("statuses %d, %d", resp1.StatusCode, resp2.StatusCode)
	}
	if first["task_id"] != second["task_id"] || resp2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("repeat was not replayed: %v vs %v", first, second)
	}
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_HIGH"); n != 1 {
		t.Fatalf("JOBS_HIGH holds %d jobs, want 1", n)
	}
	// The same key from another tenant is a different request.
	_, third := e.uploadWithKey(t, tokenOther, "7", "a.txt", []byte("hello"), nil, "key-1")
	if third["task_id"] == first["task_id"] {
		t.Fatal("another tenant got the first tenant's response")
	}
	// A 4xx is replayed too; nothing new is enqueued.
	r1, _ := e.uploadWithKey(t, tokenAcme, "7", "a.txt", nil, nil, "key-2")
	r2, _ := e.uploadWithKey(t, tokenAcme, "7", "a.txt", []byte("now with content"), nil, "key-2")
	if r1.StatusCode != 400 || r2.StatusCode != 400 {
		t.Fatalf("replayed 4xx: %d then %d", r1.StatusCode, r2.StatusCode)
	}
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_HIGH"); n != 2 {
		t.Fatalf("JOBS_HIGH holds %d jobs, want 2", n)
	}
}
