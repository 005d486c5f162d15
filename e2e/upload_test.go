package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/pgtest"
)

// stack is one NATS server, one database and the environment both services share.
type stack struct {
	env   map[string]string
	js    jetstream.JetStream
	dbURL string
}

func newStack(t *testing.T, extra map[string]string) *stack {
	t.Helper()
	return newStackOn(t, natstest.Run(t), extra)
}

func newStackOn(t *testing.T, ns *server.Server, extra map[string]string) *stack {
	t.Helper()
	_, js := natstest.Connect(t, ns)
	db := pgtest.NewDB(t)
	env := map[string]string{
		"NATS_URL":     ns.ClientURL(),
		"DATABASE_URL": db,
		"API_TOKENS":   "acme:" + tenantToken,
		"LOG_LEVEL":    "debug",
	}
	for k, v := range extra {
		env[k] = v
	}
	return &stack{env: env, js: js, dbURL: db}
}

func (s *stack) startAPI(t *testing.T) *client {
	t.Helper()
	addr := freeAddr(t)
	env := map[string]string{"HTTP_ADDR": addr}
	for k, v := range s.env {
		env[k] = v
	}
	svc := start(t, "api-service", env)
	waitHTTP(t, "http://"+addr+"/readyz", svc)
	return &client{t: t, base: "http://" + addr, token: tenantToken}
}

func (s *stack) startWorker(t *testing.T, extra map[string]string) *service {
	t.Helper()
	addr := freeAddr(t)
	env := map[string]string{"METRICS_ADDR": addr}
	for k, v := range s.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	svc := start(t, "worker-service", env)
	waitHTTP(t, "http://"+addr+"/readyz", svc)
	return svc
}

func TestUploadToSearchableChunks(t *testing.T) {
	slow(t)
	s := newStack(t, nil)
	api := s.startAPI(t)

	text := strings.Repeat("Quire turns documents into searchable chunks for AI agents. ", 200)
	started := time.Now()
	code, up := api.upload("7", "notes.txt", []byte(text))
	if code != http.StatusAccepted {
		t.Fatalf("upload = %d %v", code, up)
	}
	t.Logf("upload answered 202 in %v", time.Since(started))
	for _, k := range []string{"id", "task_id", "status", "filename", "message", "processing_note"} {
		if _, ok := up[k]; !ok {
			t.Fatalf("upload response lacks %q: %v", k, up)
		}
	}
	taskID := up["task_id"].(string)
	// No worker yet: the task waits in PENDING.
	if st := api.task(taskID); st["state"] != "PENDING" || st["current"] != 0.0 {
		t.Fatalf("task before any worker = %v", st)
	}

	// Record every status the worker writes.
	kv, err := s.js.KeyValue(t.Context(), job.TasksBucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(t.Context(), taskID, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// Every progress report written at once: this document takes milliseconds, within the
	// default interval that would coalesce its stages into the final status.
	s.startWorker(t, map[string]string{"PROGRESS_INTERVAL": "0"})

	var seen []job.Status
	deadline := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case e := <-w.Updates():
			if e == nil {
				continue
			}
			var st job.Status
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				t.Fatal(err)
			}
			seen = append(seen, st)
			done = st.State.Terminal()
		case <-deadline:
			t.Fatalf("no terminal status after 30s; saw %+v", seen)
		}
	}
	var progress []int
	for _, st := range seen {
		if st.State == job.StateProgress {
			if st.Total != 100 || st.Status == "" {
				t.Errorf("PROGRESS status without total or message: %+v", st)
			}
			progress = append(progress, st.Current)
		}
	}
	t.Logf("progress seen: %v", progress)
	for _, want := range []int{20, 50, 80} {
		if !containsInt(progress, want) {
			t.Errorf("progress %v lacks the %d%% step", progress, want)
		}
	}
	final := api.task(taskID)
	if final["state"] != "SUCCESS" || final["chunk_count"].(float64) < 1 || final["document_id"] == nil {
		t.Fatalf("final task = %v", final)
	}
	docID := strconv.FormatFloat(final["document_id"].(float64), 'f', 0, 64)
	code, doc := api.do(http.MethodGet, "/api/v1/documents/"+docID, nil, "")
	if code != 200 || doc["status"] != "completed" || doc["chunk_count"] != final["chunk_count"] {
		t.Fatalf("document = %d %v", code, doc)
	}

	// The chunks are rows in PostgreSQL with their embeddings.
	conn, err := pgx.Connect(t.Context(), s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, embedded int
	if err := conn.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE array_length(embedding, 1) = 384)
		FROM chunks WHERE document_id = $1`, docID).Scan(&rows, &embedded); err != nil {
		t.Fatal(err)
	}
	if rows == 0 || rows != embedded || float64(rows) != final["chunk_count"].(float64) {
		t.Fatalf("chunks in PostgreSQL: %d rows, %d embedded; task says %v", rows, embedded, final["chunk_count"])
	}

	// What an operator sees with the nats CLI: the streams, an empty queue, the status JSON.
	names := map[string]bool{}
	for n := range s.js.StreamNames(t.Context()).Name() {
		names[n] = true
	}
	for _, n := range []string{"JOBS_HIGH", "JOBS_MEDIUM", "JOBS_LOW", "JOBS_DLQ"} {
		if !names[n] {
			t.Errorf("stream %s missing (have %v)", n, names)
		}
	}
	entry, err := kv.Get(t.Context(), taskID)
	if err != nil || !strings.Contains(string(entry.Value()), `"state":"SUCCESS"`) {
		t.Fatalf("TASKS %s = %v, %v", taskID, entry, err)
	}
	// The uploaded bytes are removed once the chunks are committed (in the worker's next
	// batch of deletes, within milliseconds).
	obs, err := s.js.ObjectStore(t.Context(), job.UploadsBucket)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := obs.GetInfo(t.Context(), taskID)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload object after success: %v, want it deleted", err)
		}
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
