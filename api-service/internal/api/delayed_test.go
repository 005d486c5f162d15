package api_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/quiretest"
)

// A job with run_at is held in NATS until then, its task PENDING; cancelled before then it
// never reaches its queue.
func TestRunAtHoldsTheJob(t *testing.T) {
	e := newSchedEnv(t)
	r := e.replica(true)
	runAt := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
	post := func(path, body string) map[string]any {
		t.Helper()
		resp, out := r.call(t, http.MethodPost, tokenAcme, path, body)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s = %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	held := post("/api/v1/documents/agent/7/webpage", `{"url":"https://example.com/later","run_at":"`+runAt.Format(time.RFC3339)+`"}`)
	if held["run_at"] != runAt.Format(time.RFC3339) {
		t.Fatalf("answer = %v", held)
	}
	cancelled := post("/api/v1/documents/agent/7/crawl", `{"url":"https://example.com/","run_at":"`+runAt.Format(time.RFC3339)+`"}`)
	heldID, cancelledID := held["task_id"].(string), cancelled["task_id"].(string)
	// An upload takes run_at as a form field.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("run_at", runAt.Format(time.RFC3339))
	fw, _ := mw.CreateFormFile("file", "later.txt")
	_, _ = fw.Write([]byte("read me later\n"))
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/api/v1/documents/agent/7/upload", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+tokenAcme)
	if resp, out := do(t, req); resp.StatusCode != http.StatusAccepted || out["run_at"] != runAt.Format(time.RFC3339) {
		t.Fatalf("upload with run_at = %d %v", resp.StatusCode, out)
	}

	_, st := r.call(t, http.MethodGet, tokenAcme, "/api/v1/tasks/"+heldID, "")
	if st["state"] != "PENDING" {
		t.Fatalf("held task = %v", st)
	}
	if resp, out := r.call(t, http.MethodDelete, tokenAcme, "/api/v1/tasks/"+cancelledID, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("cancel = %d %v", resp.StatusCode, out)
	}
	if n := quiretest.StreamMsgs(t, e.js, job.PriorityHigh.Stream()) + quiretest.StreamMsgs(t, e.js, job.PriorityLow.Stream()); n != 0 {
		t.Fatalf("%d jobs queued before run_at", n)
	}
	waitFor(t, "the held jobs", 10*time.Second, func() bool { return quiretest.StreamMsgs(t, e.js, job.PriorityHigh.Stream()) == 2 })
	if time.Now().Before(runAt) {
		t.Fatalf("the job was queued before run_at %s", runAt)
	}
	time.Sleep(time.Second)
	if n := quiretest.StreamMsgs(t, e.js, job.PriorityLow.Stream()); n != 0 {
		t.Fatalf("the cancelled crawl was queued (%d jobs on low)", n)
	}
	task, _, err := e.docs.GetTask(t.Context(), "acme", heldID)
	if err != nil || task.PublishedAt == nil || task.RunAt == nil || !task.RunAt.Equal(runAt) {
		t.Fatalf("held task after run_at = %+v, %v", task, err)
	}
	for _, bad := range []string{`"tomorrow"`, `"` + time.Now().Add(400*24*time.Hour).Format(time.RFC3339) + `"`} {
		resp, out := r.call(t, http.MethodPost, tokenAcme, "/api/v1/documents/agent/7/webpage", `{"url":"https://example.com/","run_at":`+bad+`}`)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("run_at %s = %d %v, want 400", bad, resp.StatusCode, out)
		}
	}
}
