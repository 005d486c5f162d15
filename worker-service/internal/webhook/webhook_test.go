package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/pgtest"
	"github.com/quirehq/quire/shared/taskstatus"
	"github.com/quirehq/quire/worker-service/internal/webfetch"
	"github.com/quirehq/quire/worker-service/internal/webhook"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const secret = "whsec_test_0123456789"

// env is a real worker serving medium with the webhook handler registered, on an in-process
// NATS and a throwaway PostgreSQL database holding one webhook of tenant acme.
type env struct {
	js       jetstream.JetStream
	docs     *docstore.Store
	statuses *taskstatus.Store
	enq      *jobqueue.Enqueuer
	hookID   int64
}

func newEnv(t *testing.T, allowPrivate bool) *env {
	t.Helper()
	ns := natstest.Run(t)
	_, js := natstest.Connect(t, ns)
	top, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	docs, err := docstore.Open(t.Context(), pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(docs.Close)
	hook := &docstore.Webhook{TenantID: "acme", URL: "https://hooks.example.com/", Events: []string{"task.succeeded"}, Secret: secret}
	if err := docs.CreateWebhook(t.Context(), hook); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	statuses := taskstatus.New(top.Tasks, js, time.Hour)
	fetcher := webfetch.New(webfetch.Config{AllowPrivate: allowPrivate, Timeout: 300 * time.Millisecond})
	t.Cleanup(fetcher.CloseIdleConnections)
	mux := worker.NewMux()
	if err := mux.Register(job.KindWebhook, &webhook.Handler{
		Secrets: docs, Poster: fetcher, Retries: 2, BaseDelay: 20 * time.Millisecond, Logger: log,
	}); err != nil {
		t.Fatal(err)
	}
	w := worker.New(worker.Config{Slots: map[job.Priority]int{job.PriorityMedium: 2}, FetchExpiry: 500 * time.Millisecond},
		worker.Deps{JetStream: js, Statuses: statuses, Handler: mux, Tasks: docs, Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	enq := jobqueue.NewEnqueuer(jobqueue.EnqueuerDeps{Tasks: docs, Statuses: statuses, JetStream: js, Logger: log})
	return &env{js: js, docs: docs, statuses: statuses, enq: enq, hookID: hook.ID}
}

// deliver enqueues a delivery of a task.succeeded event to url through the one enqueue path.
func (e *env) deliver(t *testing.T, url string, webhookID int64) (taskID string, body []byte) {
	t.Helper()
	body = []byte(`{"id":"evt_1","data":{"state":"SUCCESS","task_id":"doc-task-1"},"type":"task.succeeded","created_at":"2026-12-08T02:00:00Z"}`)
	args, _ := json.Marshal(webhook.Args{URL: url, WebhookID: webhookID, Event: body})
	taskID = "whd_" + strings.ReplaceAll(t.Name(), "/", "_")
	j := &job.Job{TaskID: taskID, Kind: job.KindWebhook, TenantID: "acme", AgentID: "7", Priority: job.PriorityMedium, Args: args}
	if _, err := e.enq.Enqueue(t.Context(), jobqueue.Enqueue{Job: j}); err != nil {
		t.Fatal(err)
	}
	return taskID, body
}

func (e *env) waitState(t *testing.T, taskID string, want job.State) *job.Status {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, _, err := e.statuses.Get(t.Context(), taskID)
		if err == nil && st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s: status %+v (%v), want %s", taskID, st, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// verify checks a Quire-Signature as a receiver would.
func verify(t *testing.T, header string, body []byte) {
	t.Helper()
	ts, mac, ok := strings.Cut(header, ",v1=")
	ts, ok2 := strings.CutPrefix(ts, "t=")
	if !ok || !ok2 {
		t.Fatalf("signature %q is not t=<unix>,v1=<hex>", header)
	}
	if n, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(n, 0)) > time.Minute {
		t.Fatalf("signature timestamp %q", ts)
	}
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts + "."))
	h.Write(body)
	if want := hex.EncodeToString(h.Sum(nil)); !hmac.Equal([]byte(mac), []byte(want)) {
		t.Fatalf("signature %q does not verify (want v1=%s)", header, want)
	}
}

type received struct {
	delivery, event, signature string
	body                       []byte
}

func TestDeliveryRetriedUntilAcceptedWithOneDeliveryIDAndAValidSignature(t *testing.T) {
	e := newEnv(t, true)
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Header.Get("Quire-Delivery"), r.Header.Get("Quire-Event"), r.Header.Get("Quire-Signature"), body})
		n := len(got)
		mu.Unlock()
		if n <= 2 {
			http.Error(w, "not yet", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	taskID, body := e.deliver(t, srv.URL+"/hook", e.hookID)
	st := e.waitState(t, taskID, job.StateSuccess)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || st.Attempts != 3 {
		t.Fatalf("received %d deliveries (status %+v), want 3", len(got), st)
	}
	for i, r := range got {
		if r.delivery != taskID || r.event != "task.succeeded" || string(r.body) != string(body) {
			t.Errorf("delivery %d = %+v, want Quire-Delivery %s, the event and its body", i+1, r, taskID)
		}
		verify(t, r.signature, r.body)
	}
}

func TestDeliveryToAnEndpointThatNeverAnswersIsDeadLettered(t *testing.T) {
	e := newEnv(t, true)
	stop := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		select { // never answers within the client's timeout
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	taskID, _ := e.deliver(t, srv.URL+"/hook", e.hookID)
	st := e.waitState(t, taskID, job.StateFailure)
	if st.Attempts != 3 {
		t.Errorf("dead-lettered after %d attempts, want 3 (1 + Retries 2)", st.Attempts)
	}
	dlq, err := e.js.Stream(t.Context(), job.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := dlq.GetLastMsgForSubject(t.Context(), job.DLQSubject(job.PriorityMedium, job.KindWebhook))
	if err != nil {
		t.Fatalf("no dead letter on %s: %v", job.DLQSubject(job.PriorityMedium, job.KindWebhook), err)
	}
	if msg.Header.Get(job.HeaderTaskID) != taskID {
		t.Fatalf("dead letter of %q, want %s", msg.Header.Get(job.HeaderTaskID), taskID)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 {
		t.Errorf("endpoint called %d times, want 3", calls)
	}
}

func TestDeliveryToAPrivateAddressIsRefusedUnlessAllowed(t *testing.T) {
	e := newEnv(t, false)
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	taskID, _ := e.deliver(t, srv.URL+"/hook", e.hookID) // 127.0.0.1
	st := e.waitState(t, taskID, job.StateFailure)
	if st.Attempts != 1 || !strings.Contains(st.Error, "address not allowed") {
		t.Fatalf("status = %+v, want a failure at once for the address", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 0 {
		t.Fatalf("the private endpoint was called %d times", calls)
	}
}

func TestDeliveryToADeletedWebhookIsDropped(t *testing.T) {
	e := newEnv(t, true)
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	if err := e.docs.DeleteWebhook(t.Context(), "acme", e.hookID); err != nil {
		t.Fatal(err)
	}
	taskID, _ := e.deliver(t, srv.URL+"/hook", e.hookID)
	e.waitState(t, taskID, job.StateSuccess)
	mu.Lock()
	defer mu.Unlock()
	if calls != 0 {
		t.Fatalf("a deleted webhook was called %d times", calls)
	}
}
