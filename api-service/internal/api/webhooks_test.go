package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/quirehq/quire/api-service/internal/api"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/quiretest"
)

func TestWebhookRegistrationAnswersItsSecretOnceAndIsTenantScoped(t *testing.T) {
	e := newEnv(t, 0)
	resp, hook := e.postJSON(t, tokenAcme, "/api/v1/webhooks", `{"url":"https://93.184.215.14/hooks/quire","events":["task.failed","batch.completed"]}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register = %d %v", resp.StatusCode, hook)
	}
	secret, _ := hook["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") || len(secret) < 40 || hook["url"] != "https://93.184.215.14/hooks/quire" {
		t.Fatalf("registered webhook = %v", hook)
	}
	id := jsonNumber(hook["id"])
	resp, list := e.get(t, tokenAcme, "/api/v1/webhooks")
	hooks, _ := list["webhooks"].([]any)
	if resp.StatusCode != http.StatusOK || len(hooks) != 1 {
		t.Fatalf("list = %d %v", resp.StatusCode, list)
	}
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), secret) || strings.Contains(string(raw), `"secret"`) {
		t.Fatalf("the list answers the secret again: %s", raw)
	}
	if _, other := e.get(t, tokenOther, "/api/v1/webhooks"); len(other["webhooks"].([]any)) != 0 {
		t.Fatalf("another tenant sees acme's webhooks: %v", other)
	}
	if resp, _ := e.call(t, http.MethodDelete, tokenOther, "/api/v1/webhooks/"+id); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another tenant's delete = %d, want 404", resp.StatusCode)
	}
	if resp, body := e.call(t, http.MethodDelete, tokenAcme, "/api/v1/webhooks/"+id); resp.StatusCode != http.StatusOK {
		t.Fatalf("delete = %d %v", resp.StatusCode, body)
	}
	if resp, _ := e.call(t, http.MethodDelete, tokenAcme, "/api/v1/webhooks/"+id); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second delete = %d, want 404", resp.StatusCode)
	}
	for _, bad := range []string{
		`{"url":"http://127.0.0.1:9000/hook"}`,
		`{"url":"http://169.254.169.254/latest"}`,
		`{"url":"http://localhost/hook"}`,
		`{"url":"ftp://93.184.215.14/hook"}`,
		`{"url":"https://93.184.215.14/hook","events":["task.exploded"]}`,
		`{}`,
	} {
		resp, raw := e.send(t, http.MethodPost, "/api/v1/webhooks", "application/json", strings.NewReader(bad))
		wantError(t, "register "+bad, resp, raw, http.StatusBadRequest)
	}
}

func TestCallbackURLToAPrivateAddressIsRefusedUnlessAllowed(t *testing.T) {
	for _, allow := range []bool{false, true} {
		e := newEnvWith(t, api.Config{AllowPrivate: allow})
		if resp, hook := e.postJSON(t, tokenAcme, "/api/v1/webhooks", `{"url":"https://93.184.215.14/hooks/quire"}`); resp.StatusCode != http.StatusCreated {
			t.Fatalf("register = %d %v", resp.StatusCode, hook)
		}
		want := http.StatusBadRequest
		if allow {
			want = http.StatusAccepted
		}
		const cb = "http://127.0.0.1:9000/done"
		resp, body := e.upload(t, tokenAcme, "7", "notes.txt", []byte("hello quire\n"), map[string]string{"callback_url": cb, "force": "true"})
		if resp.StatusCode != want {
			t.Errorf("allowPrivate %v: upload with callback_url %s = %d %v, want %d", allow, cb, resp.StatusCode, body, want)
		}
		for _, path := range []string{"/webpage", "/crawl"} {
			resp, body := e.postJSON(t, tokenAcme, "/api/v1/documents/agent/7"+path, `{"url":"https://docs.example.com/a","callback_url":"`+cb+`"}`)
			if resp.StatusCode != want {
				t.Errorf("allowPrivate %v: %s with callback_url %s = %d %v, want %d", allow, path, cb, resp.StatusCode, body, want)
			}
		}
		if allow {
			continue
		}
		// A refused upload leaves nothing behind.
		assertNoObjects(t, e.js)
		if n := quiretest.StreamMsgs(t, e.js, "JOBS_HIGH"); n != 0 {
			t.Errorf("%d jobs queued by refused submissions", n)
		}
	}
}

func TestCallbackURLNeedsARegisteredWebhook(t *testing.T) {
	e := newEnv(t, 0)
	resp, body := e.postJSON(t, tokenAcme, "/api/v1/documents/agent/7/webpage", `{"url":"https://docs.example.com/a","callback_url":"https://93.184.215.14/done"}`)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(jsonString(body), "POST /api/v1/webhooks") {
		t.Fatalf("callback_url without a webhook = %d %v, want 400 naming POST /api/v1/webhooks", resp.StatusCode, body)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A task's end records its deliveries (the callback_url's and a subscribed webhook's), and the
// dispatcher publishes them as webhook jobs on medium, once.
func TestTaskEndIsDispatchedAsWebhookJobsOnMedium(t *testing.T) {
	e := newEnvWith(t, api.Config{AllowPrivate: true})
	if resp, hook := e.postJSON(t, tokenAcme, "/api/v1/webhooks", `{"url":"https://93.184.215.14/hooks/quire","events":["task.revoked"]}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("register = %d %v", resp.StatusCode, hook)
	}
	resp, up := e.upload(t, tokenAcme, "7", "notes.txt", []byte("hello quire\n"), map[string]string{"callback_url": "http://127.0.0.1:9000/done"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload = %d %v", resp.StatusCode, up)
	}
	taskID := up["task_id"].(string)
	if n, err := e.api.Dispatch(t.Context()); err != nil || n != 0 {
		t.Fatalf("Dispatch before the end = %d, %v", n, err)
	}
	if resp, body := e.call(t, http.MethodDelete, tokenAcme, "/api/v1/tasks/"+taskID); resp.StatusCode != http.StatusOK {
		t.Fatalf("cancel = %d %v", resp.StatusCode, body)
	}
	if n, err := e.api.Dispatch(t.Context()); err != nil || n != 2 {
		t.Fatalf("Dispatch after the end = %d, %v; want 2 deliveries", n, err)
	}
	if n, err := e.api.Dispatch(t.Context()); err != nil || n != 0 {
		t.Fatalf("second Dispatch = %d, %v; want none", n, err)
	}
	stream, err := e.js.Stream(t.Context(), "JOBS_MEDIUM")
	if err != nil {
		t.Fatal(err)
	}
	urls := map[string]bool{}
	for seq := uint64(1); seq <= 2; seq++ {
		msg, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		j, err := job.Decode(msg.Data)
		if err != nil || msg.Subject != "jobs.medium.webhook" || msg.Header.Get("Nats-Msg-Id") != j.TaskID {
			t.Fatalf("delivery message %s %v: %+v, %v", msg.Subject, msg.Header, j, err)
		}
		var args struct {
			URL   string `json:"url"`
			Event struct {
				Type string         `json:"type"`
				Data map[string]any `json:"data"`
			} `json:"event"`
		}
		if err := json.Unmarshal(j.Args, &args); err != nil || args.Event.Type != "task.revoked" || args.Event.Data["task_id"] != taskID {
			t.Fatalf("delivery args %s: %v", j.Args, err)
		}
		urls[args.URL] = true
	}
	if !urls["http://127.0.0.1:9000/done"] || !urls["https://93.184.215.14/hooks/quire"] {
		t.Fatalf("deliveries to %v", urls)
	}
}

// A dead-lettered delivery is replayed from the DLQ with its task id, so the receiver sees the
// same Quire-Delivery again.
func TestDeadLetteredDeliveryIsReplayedWithItsDeliveryID(t *testing.T) {
	e := newEnv(t, 0)
	const taskID = "whd_replayed"
	args := `{"url":"https://93.184.215.14/hooks/quire","event":{"id":"evt_1","type":"task.failed","data":{}}}`
	j := &job.Job{TaskID: taskID, Kind: job.KindWebhook, TenantID: "acme", AgentID: "7", Priority: job.PriorityMedium, Args: json.RawMessage(args)}
	if err := e.docs.InsertTask(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	if err := e.docs.FinishTask(t.Context(), taskID, job.StateFailure, 6, "http status 500"); err != nil {
		t.Fatal(err)
	}
	body, err := j.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: "dlq.medium.webhook", Data: body, Header: nats.Header{}}
	m.Header.Set(job.HeaderError, "http status 500")
	m.Header.Set(job.HeaderAttempts, "6")
	m.Header.Set(job.HeaderOriginalSubject, "jobs.medium.webhook")
	m.Header.Set(job.HeaderTaskID, taskID)
	m.Header.Set(job.HeaderTenantID, "acme")
	ack, err := e.js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	resp, out := e.call(t, http.MethodPost, tokenAcme, "/api/v1/dlq/"+jsonNumber(float64(ack.Sequence))+"/retry")
	if resp.StatusCode != http.StatusAccepted || out["task_id"] != taskID {
		t.Fatalf("replay = %d %v", resp.StatusCode, out)
	}
	stream, err := e.js.Stream(t.Context(), "JOBS_MEDIUM")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(t.Context(), "jobs.medium.webhook")
	if err != nil {
		t.Fatal(err)
	}
	replayed, err := job.Decode(msg.Data)
	if err != nil || replayed.TaskID != taskID || string(replayed.Args) != string(j.Args) {
		t.Fatalf("replayed delivery = %+v, %v; want task %s with the same event", replayed, err, taskID)
	}
}
