package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/api-service/internal/api"
	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/pgtest"
	"github.com/quirehq/quire/shared/quiretest"
	"github.com/quirehq/quire/shared/taskstatus"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	tokenAcme  = "acme-token-0123456789"
	tokenOther = "other-token-0123456789"
)

type env struct {
	srv  *httptest.Server
	ns   *server.Server
	js   jetstream.JetStream
	docs *docstore.Store
	api  *api.Server
}

func newEnv(t *testing.T, maxUpload int64) *env {
	t.Helper()
	return newEnvWith(t, api.Config{MaxUploadBytes: maxUpload})
}

// newEnvWith is newEnv with cfg (its tokens are the tests' own).
func newEnvWith(t testing.TB, cfg api.Config) *env {
	t.Helper()
	ns := natstest.Run(t)
	nc, js := natstest.Connect(t, ns)
	top, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	docs, err := docstore.Open(t.Context(), pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(docs.Close)
	emb, err := embed.NewLocal(0)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Tokens = map[string]string{tokenAcme: "acme", tokenOther: "other"}
	cfg.AdminToken = tokenAdmin
	a := api.New(cfg, api.Deps{
		NATS: nc, JetStream: js, Uploads: top.Uploads, Statuses: taskstatus.New(top.Tasks, js, time.Hour),
		Docs: docs, Idempotency: top.Idempotency, Embedder: emb, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	t.Cleanup(func() { a.Close(context.Background()) }) // before docs.Close
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &env{srv: srv, ns: ns, js: js, docs: docs, api: a}
}

func (e *env) upload(t *testing.T, token, agent, filename string, content []byte, fields map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	return e.uploadWithKey(t, token, agent, filename, content, fields, "")
}

func (e *env) uploadWithKey(t *testing.T, token, agent, filename string, content []byte, fields map[string]string, idemKey string) (*http.Response, map[string]any) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", filename)
	_, _ = fw.Write(content)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/documents/agent/"+agent+"/upload", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

func (e *env) get(t *testing.T, token, path string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: non-JSON body %q", req.Method, req.URL.Path, raw)
	}
	return resp, out
}

func TestUploadQueuesAJob(t *testing.T) {
	e := newEnv(t, 0)
	resp, body := e.upload(t, tokenAcme, "7", "../../etc/notes.txt", []byte("hello quire\n"), map[string]string{"priority": "medium"})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload status = %d, body %v", resp.StatusCode, body)
	}
	for _, k := range []string{"id", "task_id", "status", "filename", "message", "processing_note"} {
		if _, ok := body[k]; !ok {
			t.Errorf("upload response lacks %q: %v", k, body)
		}
	}
	if body["status"] != "queued" || body["filename"] != "notes.txt" {
		t.Fatalf("upload response = %v", body)
	}
	taskID := body["task_id"].(string)
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_MEDIUM"); n != 1 {
		t.Fatalf("JOBS_MEDIUM holds %d jobs, want 1", n)
	}
	// The job message carries the contract's fields and the task id as Nats-Msg-Id.
	stream, err := e.js.Stream(t.Context(), "JOBS_MEDIUM")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Nats-Msg-Id") != taskID || msg.Subject != "jobs.medium.document" {
		t.Fatalf("job message subject %s, Nats-Msg-Id %q", msg.Subject, msg.Header.Get("Nats-Msg-Id"))
	}
	j, err := job.Decode(msg.Data)
	if err != nil || j.TenantID != "acme" || j.AgentID != "7" || j.Object != taskID || j.DocumentID == 0 {
		t.Fatalf("job = %+v, %v", j, err)
	}
	// The bytes are in the object store under the task id.
	obs, _ := e.js.ObjectStore(t.Context(), job.UploadsBucket)
	data, err := obs.GetBytes(t.Context(), taskID)
	if err != nil || string(data) != "hello quire\n" {
		t.Fatalf("object = %q, %v", data, err)
	}
	// The job describes the stored upload as the object store does.
	info, err := obs.GetInfo(t.Context(), taskID)
	if err != nil {
		t.Fatal(err)
	}
	if u := j.Upload; u == nil || u.NUID != info.NUID || u.Size != info.Size || u.Chunks != info.Chunks || u.Digest != info.Digest {
		t.Fatalf("job's upload %+v, object store's %+v", j.Upload, info)
	}
	resp, st := e.get(t, tokenAcme, "/api/v1/tasks/"+taskID)
	if resp.StatusCode != 200 || st["state"] != "PENDING" || st["queue"] != "medium" {
		t.Fatalf("task = %d %v", resp.StatusCode, st)
	}
	if _, leaked := st["tenant_id"]; leaked {
		t.Fatalf("task status leaks the tenant: %v", st)
	}
	// Another tenant cannot see it.
	if resp, _ := e.get(t, tokenOther, "/api/v1/tasks/"+taskID); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("other tenant's task lookup = %d, want 404", resp.StatusCode)
	}
	docPath := "/api/v1/documents/" + jsonNumber(body["id"])
	if resp, doc := e.get(t, tokenAcme, docPath); resp.StatusCode != 200 || doc["status"] != "queued" {
		t.Fatalf("document = %d %v", resp.StatusCode, doc)
	}
	if resp, _ := e.get(t, tokenOther, docPath); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("other tenant's document = %d, want 404", resp.StatusCode)
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestUploadRejectsBadInput(t *testing.T) {
	e := newEnv(t, 1024)
	tests := []struct {
		name     string
		token    string
		agent    string
		file     string
		content  []byte
		fields   map[string]string
		status   int
		wantCode string
	}{
		{"no token", "", "7", "a.txt", []byte("x"), nil, 401, "unauthorized"},
		{"wrong token", "nope-nope-nope-nope", "7", "a.txt", []byte("x"), nil, 401, "unauthorized"},
		{"bad agent", tokenAcme, "a%20b", "a.txt", []byte("x"), nil, 400, "bad_request"},
		{"bad priority", tokenAcme, "7", "a.txt", []byte("x"), map[string]string{"priority": "urgent"}, 400, "bad_request"},
		{"empty file", tokenAcme, "7", "a.txt", nil, nil, 400, "bad_request"},
		{"binary", tokenAcme, "7", "a.txt", []byte{0x89, 'P', 'N', 'G', 0, 0, 0, 0}, nil, 415, "unsupported_media_type"},
		{"legacy doc", tokenAcme, "7", "a.doc", []byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest"), nil, 415, "unsupported_media_type"},
		{"too large", tokenAcme, "7", "a.txt", bytes.Repeat([]byte("a"), 4096), nil, 413, "payload_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.upload(t, tt.token, tt.agent, tt.file, tt.content, tt.fields)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (%v)", resp.StatusCode, tt.status, body)
			}
			errObj, _ := body["error"].(map[string]any)
			if errObj["code"] != tt.wantCode || errObj["message"] == "" {
				t.Fatalf("error body = %v, want code %s", body, tt.wantCode)
			}
			if tt.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	// Nothing was queued or stored by any of them.
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_HIGH"); n != 0 {
		t.Fatalf("JOBS_HIGH holds %d jobs after rejected uploads", n)
	}
	assertNoObjects(t, e.js)
}

func TestUploadAnswers503WhenNATSIsDownAndLeavesNothing(t *testing.T) {
	e := newEnv(t, 0)
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	resp, body := e.upload(t, tokenAcme, "7", "a.txt", []byte("hello"), nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503 (%v)", resp.StatusCode, body)
	}
	docs, err := e.docs.ListDocuments(t.Context(), docstore.ListFilter{TenantID: "acme", AgentID: "7"})
	if err != nil || len(docs) != 0 {
		t.Fatalf("documents after a failed upload = %v, %v; want none", docs, err)
	}
	if resp, _ := e.get(t, tokenAcme, "/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with NATS down = %d, want 503", resp.StatusCode)
	}
}

func TestUploadAnswers503WhenPostgresIsDownAndLeavesNothing(t *testing.T) {
	e := newEnv(t, 0)
	e.docs.Close()
	resp, body := e.upload(t, tokenAcme, "7", "a.txt", []byte("hello"), nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503 (%v)", resp.StatusCode, body)
	}
	if !strings.Contains(body["error"].(map[string]any)["message"].(string), "unavailable") {
		t.Fatalf("503 body = %v", body)
	}
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_HIGH"); n != 0 {
		t.Fatalf("JOBS_HIGH holds %d jobs after a failed upload", n)
	}
	assertNoObjects(t, e.js)
}

// assertNoObjects checks that the UPLOADS object store holds no object.
func assertNoObjects(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	obs, err := js.ObjectStore(context.Background(), job.UploadsBucket)
	if err != nil {
		t.Fatal(err)
	}
	list, err := obs.List(context.Background())
	if err != nil && err != jetstream.ErrNoObjectsFound {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Fatalf("UPLOADS holds %d objects, want none", len(list))
	}
}

func TestSweeperRepublishesOrphans(t *testing.T) {
	e := newEnv(t, 0)
	// A document row whose job was never published: the API died between the two.
	d := &docstore.Document{TenantID: "acme", AgentID: "7", Kind: job.KindDocument, Filename: "a.txt", TaskID: "orphan-1", Priority: "low"}
	if err := e.docs.InsertDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	n, err := e.api.Sweep(t.Context(), 0)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if got := quiretest.StreamMsgs(t, e.js, "JOBS_LOW"); got != 1 {
		t.Fatalf("JOBS_LOW holds %d jobs, want 1", got)
	}
	// A second pass finds nothing: the row is marked published.
	if n, err := e.api.Sweep(t.Context(), 0); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v; want 0", n, err)
	}
	if resp, st := e.get(t, tokenAcme, "/api/v1/tasks/orphan-1"); resp.StatusCode != 200 || st["state"] != "PENDING" {
		t.Fatalf("orphan task = %d %v", resp.StatusCode, st)
	}
}

func TestCancelQueuedTask(t *testing.T) {
	e := newEnv(t, 0)
	_, body := e.upload(t, tokenAcme, "7", "a.txt", []byte("hello"), nil)
	taskID := body["task_id"].(string)
	del := func(token string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodDelete, e.srv.URL+"/api/v1/tasks/"+taskID, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return do(t, req)
	}
	if resp, _ := del(tokenOther); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("other tenant's cancel = %d, want 404", resp.StatusCode)
	}
	resp, out := del(tokenAcme)
	if resp.StatusCode != 200 || out["status"] != "cancelled" {
		t.Fatalf("cancel = %d %v", resp.StatusCode, out)
	}
	if resp, st := e.get(t, tokenAcme, "/api/v1/tasks/"+taskID); st["state"] != "REVOKED" {
		t.Fatalf("task after cancel = %d %v", resp.StatusCode, st)
	}
	if resp, _ := del(tokenAcme); resp.StatusCode != http.StatusConflict {
		t.Fatalf("second cancel = %d, want 409", resp.StatusCode)
	}
}

func TestUploadUndoesEverythingWhenPublishFails(t *testing.T) {
	e := newEnv(t, 0)
	// NATS is up but the job stream is gone: the publish cannot be acknowledged.
	if err := e.js.DeleteStream(t.Context(), "JOBS_HIGH"); err != nil {
		t.Fatal(err)
	}
	resp, body := e.upload(t, tokenAcme, "7", "a.txt", []byte("hello"), nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503 (%v)", resp.StatusCode, body)
	}
	docs, err := e.docs.ListDocuments(t.Context(), docstore.ListFilter{TenantID: "acme", AgentID: "7"})
	if err != nil || len(docs) != 0 {
		t.Fatalf("documents after a failed publish = %v, %v; want none (no row stuck in queued)", docs, err)
	}
	assertNoObjects(t, e.js)
	kv, err := e.js.KeyValue(t.Context(), job.TasksBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys.Keys() {
		t.Fatalf("TASKS still holds %s after a failed publish", k)
	}
}

func TestReuploadOfTheSameBytesIsADuplicate(t *testing.T) {
	e := newEnv(t, 0)
	_, first := e.upload(t, tokenAcme, "7", "a.txt", []byte("the same bytes"), nil)
	id := int64(first["id"].(float64))
	// The worker's commit, as the pipeline makes it.
	if err := e.docs.StartProcessing(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if err := e.docs.Complete(t.Context(), id, docstore.Completion{EmbeddingModel: "quire-local-hash-v1",
		Chunks: []docstore.Chunk{{Content: "the same bytes", TokenCount: 3}}}); err != nil {
		t.Fatal(err)
	}
	resp, again := e.upload(t, tokenAcme, "7", "b.txt", []byte("the same bytes"), nil)
	if resp.StatusCode != http.StatusAccepted || again["duplicate_of"] != first["id"] || again["id"] != first["id"] || again["status"] != "completed" {
		t.Fatalf("re-upload = %d %v, want 202 duplicate_of %v", resp.StatusCode, again, first["id"])
	}
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_HIGH"); n != 1 {
		t.Fatalf("JOBS_HIGH holds %d jobs after a duplicate, want 1", n)
	}
	// Another agent, or force=true, processes it.
	if _, other := e.upload(t, tokenAcme, "8", "b.txt", []byte("the same bytes"), nil); other["duplicate_of"] != nil {
		t.Fatalf("another agent's upload was a duplicate: %v", other)
	}
	if _, forced := e.upload(t, tokenAcme, "7", "b.txt", []byte("the same bytes"), map[string]string{"force": "true"}); forced["duplicate_of"] != nil || forced["status"] != "queued" {
		t.Fatalf("force=true = %v", forced)
	}
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_HIGH"); n != 3 {
		t.Fatalf("JOBS_HIGH holds %d jobs, want 3", n)
	}
	// The duplicate left no row: agent 7 has the first upload and the forced one.
	if list, err := e.docs.ListDocuments(t.Context(), docstore.ListFilter{TenantID: "acme", AgentID: "7"}); err != nil || len(list) != 2 {
		t.Fatalf("agent 7 has %d documents (%v), want 2", len(list), err)
	}
	// Bytes embedded with a model search no longer uses are processed again.
	_, old := e.upload(t, tokenAcme, "7", "c.txt", []byte("embedded long ago"), nil)
	oldID := int64(old["id"].(float64))
	if err := e.docs.StartProcessing(t.Context(), oldID); err != nil {
		t.Fatal(err)
	}
	if err := e.docs.Complete(t.Context(), oldID, docstore.Completion{EmbeddingModel: "retired-model",
		Chunks: []docstore.Chunk{{Content: "embedded long ago", TokenCount: 3}}}); err != nil {
		t.Fatal(err)
	}
	if _, again := e.upload(t, tokenAcme, "7", "c.txt", []byte("embedded long ago"), nil); again["duplicate_of"] != nil || again["status"] != "queued" {
		t.Fatalf("re-upload of bytes embedded with another model = %v, want processed", again)
	}
}

func TestUploadStandsWhenOnlyItsStatusCannotBeStored(t *testing.T) {
	e := newEnv(t, 0)
	// The TASKS bucket is gone: the PENDING status cannot be stored, though the job can. The
	// job is queued with its row, so the upload stands (the worker creates the status).
	if err := e.js.DeleteKeyValue(t.Context(), job.TasksBucket); err != nil {
		t.Fatal(err)
	}
	resp, body := e.upload(t, tokenAcme, "7", "a.txt", []byte("hello"), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status = %d, want 202 (%v)", resp.StatusCode, body)
	}
	docs, err := e.docs.ListDocuments(t.Context(), docstore.ListFilter{TenantID: "acme", AgentID: "7"})
	if err != nil || len(docs) != 1 || docs[0].Status != job.DocQueued {
		t.Fatalf("documents after the upload = %v, %v; want one, queued", docs, err)
	}
	st, err := e.js.Stream(t.Context(), job.PriorityHigh.Stream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("%s holds %v messages (%v), want the upload's job", job.PriorityHigh.Stream(), info.State.Msgs, err)
	}
}
