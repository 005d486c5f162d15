package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/quiretest"
)

func (e *env) postJSON(t *testing.T, token, path, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

// lastJob returns the newest job message of stream, with its Nats-Msg-Id and subject.
func lastJob(t *testing.T, e *env, stream string) (*job.Job, string, string) {
	t.Helper()
	s, err := e.js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetMsg(t.Context(), info.State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	j, err := job.Decode(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	return j, msg.Header.Get("Nats-Msg-Id"), msg.Subject
}

func TestWebpageQueuesAJob(t *testing.T) {
	e := newEnv(t, 0)
	const page = "https://docs.example.com/guide/install?lang=en#linux"
	resp, body := e.postJSON(t, tokenAcme, "/api/v1/documents/agent/7/webpage", `{"url":"`+page+`"}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webpage status = %d, body %v", resp.StatusCode, body)
	}
	for _, k := range []string{"id", "task_id", "status", "url", "message", "processing_note"} {
		if _, ok := body[k]; !ok {
			t.Errorf("webpage response lacks %q: %v", k, body)
		}
	}
	if body["status"] != "queued" || body["url"] != page {
		t.Fatalf("webpage response = %v", body)
	}
	taskID := body["task_id"].(string)
	j, msgID, subject := lastJob(t, e, "JOBS_HIGH")
	if subject != "jobs.high.webpage" || msgID != taskID {
		t.Fatalf("job message on %s with Nats-Msg-Id %q, want jobs.high.webpage and %s", subject, msgID, taskID)
	}
	if j.Kind != job.KindWebpage || j.URL != page || j.TenantID != "acme" || j.AgentID != "7" || j.DocumentID == 0 || j.Object != "" {
		t.Fatalf("job = %+v", j)
	}
	resp, st := e.get(t, tokenAcme, "/api/v1/tasks/"+taskID)
	if resp.StatusCode != 200 || st["state"] != "PENDING" || st["queue"] != "high" || st["url"] != page {
		t.Fatalf("task = %d %v", resp.StatusCode, st)
	}
	resp, doc := e.get(t, tokenAcme, "/api/v1/documents/"+jsonNumber(body["id"]))
	if resp.StatusCode != 200 || doc["kind"] != "webpage" || doc["url"] != page || doc["status"] != "queued" {
		t.Fatalf("document = %d %v", resp.StatusCode, doc)
	}

	// A priority may be asked for.
	resp, body = e.postJSON(t, tokenAcme, "/api/v1/documents/agent/7/webpage", `{"url":"http://example.org/","priority":"Low"}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webpage with priority = %d %v", resp.StatusCode, body)
	}
	if _, _, subject := lastJob(t, e, "JOBS_LOW"); subject != "jobs.low.webpage" {
		t.Fatalf("low-priority webpage job on %s", subject)
	}
}

func TestCrawlQueuesACrawlJobOnLow(t *testing.T) {
	e := newEnv(t, 0)
	tests := []struct {
		name                 string
		body                 string
		wantPages, wantDepth int
	}{
		{"defaults", `{"url":"https://example.com/docs/"}`, 50, 2},
		{"given", `{"url":"https://example.com/docs/","max_pages":20,"max_depth":3}`, 20, 3},
		{"capped", `{"url":"https://example.com/docs/","max_pages":5000,"max_depth":99}`, 1000, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.postJSON(t, tokenAcme, "/api/v1/documents/agent/agent-1/crawl", tt.body)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("crawl status = %d, body %v", resp.StatusCode, body)
			}
			if body["status"] != "queued" || body["url"] != "https://example.com/docs/" ||
				body["max_pages"] != float64(tt.wantPages) || body["max_depth"] != float64(tt.wantDepth) {
				t.Fatalf("crawl response = %v", body)
			}
			taskID := body["task_id"].(string)
			j, msgID, subject := lastJob(t, e, "JOBS_LOW")
			if subject != "jobs.low.crawl" || msgID != taskID || j.TaskID != taskID {
				t.Fatalf("crawl job on %s with Nats-Msg-Id %q (task %s)", subject, msgID, j.TaskID)
			}
			if j.Kind != job.KindCrawl || j.MaxPages != tt.wantPages || j.MaxDepth != tt.wantDepth || j.AgentID != "agent-1" || j.DocumentID == 0 {
				t.Fatalf("crawl job = %+v", j)
			}
			resp, doc := e.get(t, tokenAcme, "/api/v1/documents/"+jsonNumber(body["id"]))
			if resp.StatusCode != 200 || doc["kind"] != "crawl" || doc["url"] != "https://example.com/docs/" {
				t.Fatalf("crawl document = %d %v", resp.StatusCode, doc)
			}
		})
	}
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_HIGH"); n != 0 {
		t.Fatalf("JOBS_HIGH holds %d jobs; crawls belong on low", n)
	}
}

func TestWebpageAndCrawlRejectBadInput(t *testing.T) {
	e := newEnv(t, 0)
	const wp, cr = "/api/v1/documents/agent/7/webpage", "/api/v1/documents/agent/7/crawl"
	tests := []struct {
		name, token, path, body string
		status                  int
		wantCode                string
	}{
		{"no token", "", wp, `{"url":"https://example.com/"}`, 401, "unauthorized"},
		{"bad agent", tokenAcme, "/api/v1/documents/agent/a%20b/webpage", `{"url":"https://example.com/"}`, 400, "bad_request"},
		{"not json", tokenAcme, wp, `url=https://example.com/`, 400, "bad_request"},
		{"empty body", tokenAcme, wp, ``, 400, "bad_request"},
		{"json array", tokenAcme, wp, `["https://example.com/"]`, 400, "bad_request"},
		{"trailing data", tokenAcme, wp, `{"url":"https://example.com/"} {"url":"https://example.org/"}`, 400, "bad_request"},
		{"missing url", tokenAcme, wp, `{"priority":"high"}`, 400, "bad_request"},
		{"relative url", tokenAcme, wp, `{"url":"/docs/page"}`, 400, "bad_request"},
		{"no host", tokenAcme, wp, `{"url":"http:///docs"}`, 400, "bad_request"},
		{"ftp", tokenAcme, wp, `{"url":"ftp://example.com/file.pdf"}`, 400, "bad_request"},
		{"file", tokenAcme, wp, `{"url":"file:///etc/passwd"}`, 400, "bad_request"},
		{"javascript", tokenAcme, wp, `{"url":"javascript:alert(1)"}`, 400, "bad_request"},
		{"opaque", tokenAcme, wp, `{"url":"http:example.com"}`, 400, "bad_request"},
		{"credentials", tokenAcme, wp, `{"url":"https://user:secret@example.com/"}`, 400, "bad_request"},
		{"user only", tokenAcme, wp, `{"url":"https://user@example.com/"}`, 400, "bad_request"},
		{"space", tokenAcme, wp, `{"url":"https://example.com/a b"}`, 400, "bad_request"},
		{"bad priority", tokenAcme, wp, `{"url":"https://example.com/","priority":"urgent"}`, 400, "bad_request"},
		{"url not a string", tokenAcme, wp, `{"url":42}`, 400, "bad_request"},
		{"too large", tokenAcme, wp, `{"url":"https://example.com/","pad":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "payload_too_large"},
		{"crawl credentials", tokenAcme, cr, `{"url":"https://u:p@example.com/"}`, 400, "bad_request"},
		{"crawl zero pages", tokenAcme, cr, `{"url":"https://example.com/","max_pages":0}`, 400, "bad_request"},
		{"crawl negative depth", tokenAcme, cr, `{"url":"https://example.com/","max_depth":-1}`, 400, "bad_request"},
		{"crawl pages not a number", tokenAcme, cr, `{"url":"https://example.com/","max_pages":"many"}`, 400, "bad_request"},
		{"crawl bad json", tokenAcme, cr, `{"url":`, 400, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.postJSON(t, tt.token, tt.path, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (%v)", resp.StatusCode, tt.status, body)
			}
			errObj, _ := body["error"].(map[string]any)
			if errObj["code"] != tt.wantCode || errObj["message"] == "" {
				t.Fatalf("error body = %v, want code %s", body, tt.wantCode)
			}
		})
	}
	for _, stream := range []string{"JOBS_HIGH", "JOBS_MEDIUM", "JOBS_LOW"} {
		if n := quiretest.StreamMsgs(t, e.js, stream); n != 0 {
			t.Fatalf("%s holds %d jobs after rejected requests", stream, n)
		}
	}
	resp, list := e.get(t, tokenAcme, "/api/v1/documents/agent/7")
	if docs, _ := list["documents"].([]any); resp.StatusCode != 200 || len(docs) != 0 {
		t.Fatalf("documents after rejected requests = %d %v", resp.StatusCode, list)
	}
}

func TestWebpageAnswers503WhenNATSIsDown(t *testing.T) {
	e := newEnv(t, 0)
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	resp, body := e.postJSON(t, tokenAcme, "/api/v1/documents/agent/7/webpage", `{"url":"https://example.com/"}`)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503 (%v)", resp.StatusCode, body)
	}
	resp, body = e.postJSON(t, tokenAcme, "/api/v1/documents/agent/7/crawl", `{"url":"https://example.com/"}`)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("crawl status = %d, want 503 (%v)", resp.StatusCode, body)
	}
	resp, list := e.get(t, tokenAcme, "/api/v1/documents/agent/7")
	if resp.StatusCode != 200 {
		t.Fatalf("list = %d %v", resp.StatusCode, list)
	}
	if docs, _ := list["documents"].([]any); len(docs) != 0 {
		t.Fatalf("documents left behind by refused requests: %v", list)
	}
}

func TestWebpageHonoursIdempotencyKey(t *testing.T) {
	e := newEnv(t, 0)
	post := func() map[string]any {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/documents/agent/7/crawl", strings.NewReader(`{"url":"https://example.com/"}`))
		req.Header.Set("Authorization", "Bearer "+tokenAcme)
		req.Header.Set("Idempotency-Key", "crawl-once")
		resp, body := do(t, req)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("crawl = %d %v", resp.StatusCode, body)
		}
		return body
	}
	first, second := post(), post()
	if first["task_id"] != second["task_id"] {
		t.Fatalf("repeated key gave tasks %v and %v", first["task_id"], second["task_id"])
	}
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_LOW"); n != 1 {
		t.Fatalf("JOBS_LOW holds %d crawl jobs, want 1", n)
	}
}
