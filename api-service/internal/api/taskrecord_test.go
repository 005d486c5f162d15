package api_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/quiretest"
)

// tallyKind is a kind the API knows nothing of: a task of it has no document, as a kind
// registered only on a worker's mux would.
const tallyKind job.Kind = "tally"

// freeTask records a task of tallyKind, never published.
func (e *env) freeTask(t *testing.T, taskID string) *job.Job {
	t.Helper()
	j := &job.Job{TaskID: taskID, Kind: tallyKind, TenantID: "acme", AgentID: "7", Priority: job.PriorityMedium,
		URL: "https://example.com/" + taskID, Args: []byte(`{"n":3}`)}
	if err := e.docs.InsertTask(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	return j
}

// expireStatus removes a task's live status, as RESULT_TTL does.
func (e *env) expireStatus(t *testing.T, taskID string) {
	t.Helper()
	kv, err := e.js.KeyValue(t.Context(), job.TasksBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(t.Context(), taskID); err != nil {
		t.Fatal(err)
	}
}

// The sweeper, the late status and the outcome of a task without a document all come from
// its record.
func TestTaskWithoutDocumentIsSweptAndAnsweredLate(t *testing.T) {
	e := newEnv(t, 0)
	e.freeTask(t, "free-1")
	if n, err := e.api.Sweep(t.Context(), 0); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_MEDIUM"); n != 1 {
		t.Fatalf("JOBS_MEDIUM holds %d jobs, want the swept one", n)
	}
	stream, err := e.js.Stream(t.Context(), "JOBS_MEDIUM")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(t.Context(), "jobs.medium.tally")
	if err != nil {
		t.Fatalf("the swept job is not on jobs.medium.tally: %v", err)
	}
	if got, err := job.Decode(msg.Data); err != nil || got.TaskID != "free-1" || string(got.Args) != `{"n":3}` {
		t.Fatalf("swept job = %+v, %v; want free-1 with its args", got, err)
	}
	if resp, st := e.get(t, tokenAcme, "/api/v1/tasks/free-1"); resp.StatusCode != 200 || st["state"] != "PENDING" {
		t.Fatalf("live status = %d %v", resp.StatusCode, st)
	}
	if n, err := e.api.Sweep(t.Context(), 0); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v; want 0 (the task is marked published)", n, err)
	}

	// The worker records the outcome; the live status expires; the record answers.
	if err := e.docs.FinishTask(t.Context(), "free-1", job.StateSuccess, 2, ""); err != nil {
		t.Fatal(err)
	}
	e.expireStatus(t, "free-1")
	resp, st := e.get(t, tokenAcme, "/api/v1/tasks/free-1")
	if resp.StatusCode != 200 || st["state"] != "SUCCESS" || st["attempts"] != 2.0 || st["current"] != 100.0 ||
		st["kind"] != "tally" || st["queue"] != "medium" || st["url"] != "https://example.com/free-1" {
		t.Fatalf("late status = %d %v", resp.StatusCode, st)
	}
	if _, has := st["document_id"]; has {
		t.Errorf("late status of a task without a document has document_id %v", st["document_id"])
	}
	if resp, _ := e.get(t, tokenOther, "/api/v1/tasks/free-1"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another tenant's late status = %d, want 404", resp.StatusCode)
	}
}

// DELETE /api/v1/tasks/{id} cancels a task without a document: its record is revoked, and
// once its live status has expired the record still answers 409.
func TestCancelTaskWithoutDocument(t *testing.T) {
	e := newEnv(t, 0)
	e.freeTask(t, "free-c")
	if _, err := e.api.Sweep(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if resp, body := e.call(t, http.MethodDelete, tokenAcme, "/api/v1/tasks/free-c"); resp.StatusCode != 200 || body["status"] != "cancelled" {
		t.Fatalf("cancel = %d %v", resp.StatusCode, body)
	}
	task, _, err := e.docs.GetTask(t.Context(), "acme", "free-c")
	if err != nil || task.State != job.StateRevoked {
		t.Fatalf("record after cancel = %+v, %v", task, err)
	}
	e.expireStatus(t, "free-c")
	if resp, st := e.get(t, tokenAcme, "/api/v1/tasks/free-c"); resp.StatusCode != 200 || st["state"] != "REVOKED" {
		t.Fatalf("late status of a cancelled task = %d %v", resp.StatusCode, st)
	}
	if resp, _ := e.call(t, http.MethodDelete, tokenAcme, "/api/v1/tasks/free-c"); resp.StatusCode != http.StatusConflict {
		t.Fatalf("second cancel = %d, want 409", resp.StatusCode)
	}
}

// A dead letter of a task without a document is retried from its record: PENDING and
// re-published with Nats-Msg-Id "<task id>:r<dead letter id>", then marked published again.
func TestRetryDeadLetterWithoutDocument(t *testing.T) {
	e := newEnv(t, 0)
	j := e.freeTask(t, "free-d")
	if err := e.docs.FinishTask(t.Context(), "free-d", job.StateFailure, 4, "gone"); err != nil {
		t.Fatal(err)
	}
	body, err := j.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: "dlq.medium.tally", Data: body, Header: nats.Header{}}
	m.Header.Set(job.HeaderError, "gone")
	m.Header.Set(job.HeaderAttempts, "4")
	m.Header.Set(job.HeaderTaskID, "free-d")
	m.Header.Set(job.HeaderTenantID, "acme")
	ack, err := e.js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatUint(ack.Sequence, 10)
	if resp, body := e.call(t, http.MethodPost, tokenAcme, "/api/v1/dlq/"+id+"/retry"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("retry = %d %v", resp.StatusCode, body)
	}
	st, err := e.js.Stream(t.Context(), "JOBS_MEDIUM")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetMsg(t.Context(), 1)
	if err != nil || msg.Header.Get("Nats-Msg-Id") != "free-d:r"+id {
		t.Fatalf("re-published %v (Nats-Msg-Id %q), want free-d:r%s", err, msg.Header.Get("Nats-Msg-Id"), id)
	}
	e.api.Close(t.Context()) // writes the pending publish marks
	task, _, err := e.docs.GetTask(t.Context(), "acme", "free-d")
	if err != nil || task.State != job.StatePending || task.Attempts != 0 || task.Error != "" || task.PublishedAt == nil || task.StreamSeq != 1 {
		t.Fatalf("record after retry = %+v, %v", task, err)
	}
}

// The operator's task page shows a task without a document after its live status expired,
// from its record.
func TestUITaskPageOfATaskWithoutDocument(t *testing.T) {
	e := newEnv(t, 0)
	e.freeTask(t, "free-ui")
	if err := e.docs.FinishTask(t.Context(), "free-ui", job.StateFailure, 3, "gone for good"); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	b.signIn()
	resp, body := b.get("/ui/tasks/free-ui")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "FAILURE") || !strings.Contains(body, "gone for good") {
		t.Fatalf("task page = %d:\n%s", resp.StatusCode, body)
	}
	if resp, _ := b.get("/ui/tasks/no-such-task"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("page of an unknown task = %d, want 404", resp.StatusCode)
	}
}
