package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/api-service/internal/api"
	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/quiretest"
)

// batchFile is one file part of a batch.
type batchFile struct {
	name    string
	content []byte
}

// batchForm writes a multipart batch: each file as a "file" part, then the fields.
func batchForm(t *testing.T, w io.Writer, files []batchFile, fields map[string]string) *multipart.Writer {
	t.Helper()
	mw := multipart.NewWriter(w)
	for _, f := range files {
		fw, err := mw.CreateFormFile("file", f.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(f.content); err != nil {
			return mw
		}
	}
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	return mw
}

func (e *env) postBatch(t *testing.T, files []batchFile, fields map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	var body bytes.Buffer
	mw := batchForm(t, &body, files, fields)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/documents/agent/7/batch", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+tokenAcme)
	return do(t, req)
}

func textFiles(n int) []batchFile {
	files := make([]batchFile, n)
	for i := range files {
		files[i] = batchFile{fmt.Sprintf("note-%02d.txt", i), []byte(fmt.Sprintf("note %d about the cooling pump\n", i))}
	}
	return files
}

func rejectedNames(body map[string]any) map[string]string {
	out := map[string]string{}
	rej, _ := body["rejected"].([]any)
	for _, r := range rej {
		m := r.(map[string]any)
		name, _ := m["filename"].(string)
		if name == "" {
			name, _ = m["url"].(string)
		}
		out[name] = m["error"].(map[string]any)["code"].(string)
	}
	return out
}

func TestBatchOfFilesQueuesTheAcceptableOnesAndListsTheRest(t *testing.T) {
	e := newEnv(t, 0)
	files := append(textFiles(3),
		batchFile{"tool.exe", append([]byte("MZ\x90\x00\x03"), bytes.Repeat([]byte{0}, 64)...)},
		batchFile{"empty.txt", nil})
	resp, body := e.postBatch(t, files, map[string]string{"metadata": `{"source":"onboarding"}`})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("batch = %d %v", resp.StatusCode, body)
	}
	batchID, _ := body["batch_id"].(string)
	tasks, _ := body["tasks"].([]any)
	if batchID == "" || len(tasks) != 3 {
		t.Fatalf("batch answer = %v, want 3 tasks", body)
	}
	if rej := rejectedNames(body); len(rej) != 2 || rej["tool.exe"] != "unsupported_media_type" || rej["empty.txt"] != "bad_request" {
		t.Fatalf("rejected = %v", rej)
	}
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_MEDIUM"); n != 3 {
		t.Fatalf("JOBS_MEDIUM holds %d jobs, want 3 (a batch defaults to medium)", n)
	}
	for _, tk := range tasks {
		m := tk.(map[string]any)
		resp, st := e.get(t, tokenAcme, "/api/v1/tasks/"+m["task_id"].(string))
		if resp.StatusCode != http.StatusOK || st["state"] != "PENDING" || !strings.HasPrefix(m["filename"].(string), "note-") {
			t.Fatalf("task %v = %d %v", m, resp.StatusCode, st)
		}
	}
	resp, st := e.get(t, tokenAcme, "/api/v1/batches/"+batchID)
	if resp.StatusCode != http.StatusOK || st["state"] != "PENDING" || st["total"] != 3.0 || st["progress"] != 0.0 {
		t.Fatalf("batch status = %d %v", resp.StatusCode, st)
	}
	if resp, _ := e.get(t, tokenOther, "/api/v1/batches/"+batchID); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another tenant's batch = %d, want 404", resp.StatusCode)
	}
}

func zipOf(t *testing.T, entries map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range entries {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBatchOfAZipTakesItsFilesAndRefusesWhatLeavesOrBombs(t *testing.T) {
	e := newEnv(t, 0)
	archive := zipOf(t, map[string][]byte{
		"a.txt":                []byte("alpha notes\n"),
		"docs/b.md":            []byte("# Beta\n\nnotes\n"),
		"docs/":                nil,
		"../evil.txt":          []byte("outside\n"),
		"bomb.txt":             bytes.Repeat([]byte("a"), 8<<20), // 8 MiB of one byte: far above 100:1
		"__MACOSX/docs/._b.md": []byte("resource fork"),
	})
	resp, body := e.postBatch(t, []batchFile{{"upload.zip", archive}}, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("batch = %d %v", resp.StatusCode, body)
	}
	tasks, _ := body["tasks"].([]any)
	names := map[string]bool{}
	for _, tk := range tasks {
		names[tk.(map[string]any)["filename"].(string)] = true
	}
	if len(tasks) != 2 || !names["a.txt"] || !names["b.md"] {
		t.Fatalf("tasks = %v, want a.txt and b.md", tasks)
	}
	if rej := rejectedNames(body); len(rej) != 2 || rej["../evil.txt"] == "" || rej["bomb.txt"] == "" {
		t.Fatalf("rejected = %v, want ../evil.txt and bomb.txt", rej)
	}
	// A .zip is a batch's only file.
	resp, body = e.postBatch(t, append(textFiles(1), batchFile{"more.zip", archive}), nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a .zip beside a file = %d %v, want 400", resp.StatusCode, body)
	}
}

func TestBatchOfURLsAndItsItemLimit(t *testing.T) {
	e := newEnvWith(t, api.Config{MaxBatchItems: 3})
	resp, body := e.postJSON(t, tokenAcme, "/api/v1/documents/agent/7/batch",
		`{"urls":["https://docs.example.com/a","https://docs.example.com/b","ftp://docs.example.com/c"],"priority":"low"}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("batch = %d %v", resp.StatusCode, body)
	}
	if tasks, _ := body["tasks"].([]any); len(tasks) != 2 || tasks[0].(map[string]any)["url"] != "https://docs.example.com/a" {
		t.Fatalf("tasks = %v", body["tasks"])
	}
	if rej := rejectedNames(body); rej["ftp://docs.example.com/c"] != "bad_request" {
		t.Fatalf("rejected = %v", rej)
	}
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_LOW"); n != 2 {
		t.Fatalf("JOBS_LOW holds %d jobs, want 2", n)
	}
	// Over MAX_BATCH_ITEMS: refused whole, nothing stored.
	resp, body = e.postBatch(t, textFiles(4), nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(jsonString(body), "MAX_BATCH_ITEMS") {
		t.Fatalf("4 files over a limit of 3 = %d %v", resp.StatusCode, body)
	}
	waitNoObjects(t, e)
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_MEDIUM"); n != 0 {
		t.Fatalf("JOBS_MEDIUM holds %d jobs of a refused batch", n)
	}
}

// listObjects counts the objects in UPLOADS, -1 when NATS does not answer within 3s (a list
// across a broker restart can otherwise wait for ever).
func listObjects(t *testing.T, e *env) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	obs, err := e.js.ObjectStore(ctx, job.UploadsBucket)
	if err != nil {
		return -1
	}
	list, err := obs.List(ctx)
	switch {
	case errors.Is(err, jetstream.ErrNoObjectsFound):
		return 0
	case err != nil:
		return -1
	}
	return len(list)
}

// waitNoObjects waits until UPLOADS holds no object (a refused batch's are removed as it is
// answered, or in the background once NATS is back).
func waitNoObjects(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := listObjects(t, e)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("UPLOADS holds %d objects (-1: NATS does not answer) 15s after a refused batch, want none", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func assertNoBatchRows(t *testing.T, e *env) {
	t.Helper()
	docs, err := e.docs.ListDocuments(t.Context(), docstore.ListFilter{TenantID: "acme", AgentID: "7"})
	if err != nil || len(docs) != 0 {
		t.Fatalf("documents after a refused batch = %d, %v; want none", len(docs), err)
	}
	if un, err := e.docs.UnpublishedTasks(t.Context(), 0, 10); err != nil || len(un) != 0 {
		t.Fatalf("tasks after a refused batch = %d, %v; want none", len(un), err)
	}
}

func TestBatchWhenNATSStopsDuringTheRequestAnswers503AndLeavesNothing(t *testing.T) {
	e := newEnv(t, 0)
	storeDir, port := e.ns.JetStreamConfig().StoreDir, e.ns.Addr().(*net.TCPAddr).Port
	pr, pw := io.Pipe()
	files := textFiles(10)
	mw := multipart.NewWriter(pw)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/documents/agent/7/batch", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+tokenAcme)
	type answer struct {
		resp *http.Response
		body []byte
		err  error
	}
	answers := make(chan answer, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answers <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		answers <- answer{resp: resp, body: raw}
	}()
	write := func(fs []batchFile) {
		for _, f := range fs {
			fw, err := mw.CreateFormFile("file", f.name)
			if err == nil {
				_, _ = fw.Write(f.content)
			}
		}
	}
	// Half the files are stored; then NATS stops; then the rest arrive.
	write(files[:5])
	for deadline := time.Now().Add(10 * time.Second); ; {
		if listObjects(t, e) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first files were never stored")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	write(files[5:])
	_ = mw.Close()
	_ = pw.Close()
	a := <-answers
	if a.err != nil || a.resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("batch with NATS stopped = %v %v %s, want 503", a.err, a.resp, a.body)
	}
	assertNoBatchRows(t, e)
	// NATS comes back: the files stored before it stopped are removed.
	natstest.RunAt(t, storeDir, port)
	waitNoObjects(t, e)
	for _, s := range []string{"JOBS_HIGH", "JOBS_MEDIUM", "JOBS_LOW"} {
		if n := quiretest.StreamMsgs(t, e.js, s); n != 0 {
			t.Fatalf("%s holds %d jobs of a refused batch", s, n)
		}
	}
}

func TestBatchWhenPostgresIsDownAnswers503AndLeavesNothing(t *testing.T) {
	e := newEnv(t, 0)
	e.docs.Close()
	resp, body := e.postBatch(t, textFiles(5), nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("batch with PostgreSQL down = %d %v, want 503", resp.StatusCode, body)
	}
	waitNoObjects(t, e)
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_MEDIUM"); n != 0 {
		t.Fatalf("JOBS_MEDIUM holds %d jobs of a refused batch", n)
	}
}

// A batch's tasks end as a worker records them: two fail. The batch is PARTIAL 3/2; retry
// re-queues exactly the two; cancel revokes what is unfinished.
func TestBatchStatusRetryAndCancel(t *testing.T) {
	e := newEnv(t, 0)
	resp, body := e.postBatch(t, textFiles(5), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("batch = %d %v", resp.StatusCode, body)
	}
	batchID := body["batch_id"].(string)
	tasks := body["tasks"].([]any)
	ids := make([]string, len(tasks))
	for i, tk := range tasks {
		ids[i] = tk.(map[string]any)["task_id"].(string)
	}
	for i, id := range ids {
		state := job.StateSuccess
		if i < 2 {
			state = job.StateFailure
		}
		if err := e.docs.FinishTask(t.Context(), id, state, 1, "corrupt"); err != nil {
			t.Fatal(err)
		}
	}
	_, st := e.get(t, tokenAcme, "/api/v1/batches/"+batchID)
	counts, _ := st["counts"].(map[string]any)
	if st["state"] != "PARTIAL" || counts["SUCCESS"] != 3.0 || counts["FAILURE"] != 2.0 || st["progress"] != 100.0 || st["finished_at"] == nil {
		t.Fatalf("ended batch = %v", st)
	}
	before := quiretest.StreamMsgs(t, e.js, "JOBS_MEDIUM")
	resp, st = e.call(t, http.MethodPost, tokenAcme, "/api/v1/batches/"+batchID+"/retry")
	if resp.StatusCode != http.StatusAccepted || st["retried"] != 2.0 {
		t.Fatalf("retry = %d %v, want 2 retried", resp.StatusCode, st)
	}
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_MEDIUM"); n != before+2 {
		t.Fatalf("JOBS_MEDIUM holds %d jobs after the retry, want %d", n, before+2)
	}
	if st["state"] != "PROGRESS" || st["counts"].(map[string]any)["PENDING"] != 2.0 {
		t.Fatalf("batch after the retry = %v", st)
	}
	if resp, _ := e.call(t, http.MethodPost, tokenOther, "/api/v1/batches/"+batchID+"/retry"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another tenant's retry = %d, want 404", resp.StatusCode)
	}
	resp, st = e.call(t, http.MethodDelete, tokenAcme, "/api/v1/batches/"+batchID)
	if resp.StatusCode != http.StatusOK || st["cancelled"] != 2.0 || st["state"] != "REVOKED" {
		t.Fatalf("cancel = %d %v, want the 2 re-queued tasks cancelled", resp.StatusCode, st)
	}
}

func TestBatchEventsEndWithTheBatch(t *testing.T) {
	e := newEnv(t, 0)
	resp, body := e.postBatch(t, textFiles(2), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("batch = %d %v", resp.StatusCode, body)
	}
	batchID := body["batch_id"].(string)
	s := e.openEvents(t, t.Context(), tokenAcme, "/api/v1/batches/"+batchID+"/events", "")
	if _, st, ok := s.next(t); !ok || st["state"] != "PENDING" || st["batch_id"] != batchID {
		t.Fatalf("first event = %v", st)
	}
	statuses := statusStore(t, e)
	for _, tk := range body["tasks"].([]any) {
		id := tk.(map[string]any)["task_id"].(string)
		// As a worker ends a task: its record, then its live status.
		if err := e.docs.FinishTask(t.Context(), id, job.StateSuccess, 1, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := statuses.Update(t.Context(), id, func(st *job.Status) error { st.State = job.StateSuccess; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	var last map[string]any
	for {
		_, st, ok := s.next(t)
		if !ok {
			break
		}
		last = st
	}
	if last == nil || last["state"] != "SUCCESS" {
		t.Fatalf("last event = %v, want SUCCESS", last)
	}
	if resp := e.openEvents(t, t.Context(), tokenOther, "/api/v1/batches/"+batchID+"/events", ""); resp.resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another tenant's batch events = %d, want 404", resp.resp.StatusCode)
	}
}
