package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/batch"
	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/pgtest"
	"github.com/quirehq/quire/shared/quiretest"
	"github.com/quirehq/quire/shared/taskstatus"
	"github.com/quirehq/quire/shared/upload"
	"github.com/quirehq/quire/worker-service/internal/chunk"
	"github.com/quirehq/quire/worker-service/internal/extract"
	"github.com/quirehq/quire/worker-service/internal/ingest"
	"github.com/quirehq/quire/worker-service/internal/webfetch"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is a real worker (runtime, mux and the ingest handlers) on an in-process NATS and a throwaway
// PostgreSQL database. Every web server the tests fetch from is an httptest server on
// 127.0.0.1: nothing leaves the machine.
type env struct {
	q        *quiretest.Env
	js       jetstream.JetStream
	docs     *docstore.Store
	statuses *taskstatus.Store
	pub      *jobqueue.Publisher
	// The handlers the worker runs, sharing one indexer.
	indexer   *ingest.Indexer
	documents *ingest.DocumentHandler
	crawls    *ingest.CrawlHandler
}

type envOptions struct {
	allowPrivate bool
	retry        worker.RetryPolicy
	// batchedMarks writes the processing marks of first runs in batches and deletes
	// processed uploads in batches, as the worker does.
	batchedMarks bool
	// ocr turns OCR on (tesseract).
	ocr bool
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	q := quiretest.Queue(t, jobqueue.Config{UpdateConsumers: true})
	js, top, docs := q.JS, q.Top, quiretest.Store(t)
	exOpts := extract.Options{}
	if o.ocr {
		exOpts.OCREngine = extract.OCRTesseract
	}
	ex, err := extract.New(t.Context(), exOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ex.Close() })
	emb, err := embed.NewLocal(64)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	statuses := q.Statuses
	fetcher := webfetch.New(webfetch.Config{AllowPrivate: o.allowPrivate, Timeout: 5 * time.Second, MaxBytes: 1 << 20})
	t.Cleanup(fetcher.CloseIdleConnections)
	hosts := webfetch.NewHostLimiter(2, 0)
	records := &ingest.Records{Docs: docs, Logger: log}
	indexer := &ingest.Indexer{Records: records, Embedder: emb, Chunking: chunk.Options{Size: 64}}
	uploads := upload.New(upload.Config{}, upload.Deps{Objects: top.Uploads, JetStream: js, Logger: log})
	documents := &ingest.DocumentHandler{Indexer: indexer, Uploads: uploads, Extractor: ex}
	crawls := &ingest.CrawlHandler{Records: records, Crawler: webfetch.NewCrawler(fetcher, webfetch.CrawlConfig{Limiter: hosts}),
		Enqueuer: jobqueue.NewEnqueuer(jobqueue.EnqueuerDeps{Tasks: docs, Statuses: statuses, JetStream: js, Logger: log}), Statuses: statuses}
	if o.batchedMarks {
		records.Processing = batch.NewIDs(docs.MarkProcessingMany, log, "mark documents processing", 20*time.Millisecond)
		t.Cleanup(func() { records.Processing.Close(context.Background()) })
		documents.UploadDeletes = batch.New(uploads.DeleteMany, log, "delete processed uploads", 20*time.Millisecond)
		t.Cleanup(func() { documents.UploadDeletes.Close(context.Background()) })
	}
	mux := worker.NewMux()
	if err := errors.Join(
		mux.Register(job.KindDocument, documents),
		mux.Register(job.KindWebpage, &ingest.WebpageHandler{Indexer: indexer, Extractor: ex, Fetcher: fetcher, Hosts: hosts, Statuses: statuses}),
		mux.Register(job.KindCrawl, crawls),
		mux.Register(job.KindReindex, &ingest.ReindexHandler{Indexer: indexer}),
	); err != nil {
		t.Fatal(err)
	}
	retry := o.retry
	if retry == nil {
		retry = func(int) time.Duration { return 100 * time.Millisecond }
	}
	w := worker.New(worker.Config{
		Slots:      map[job.Priority]int{job.PriorityHigh: 4, job.PriorityLow: 4},
		MaxRetries: 3, Retry: retry, FetchExpiry: 500 * time.Millisecond,
	}, worker.Deps{JetStream: js, Statuses: statuses, Handler: mux, Tasks: docs, Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker Run: %v", err)
		}
	})
	return &env{q: q, js: js, docs: docs, statuses: statuses, pub: q.Pub,
		indexer: indexer, documents: documents, crawls: crawls}
}

// submit queues a webpage or crawl job the way the API does: documents row, PENDING status,
// publish with the task id as Nats-Msg-Id.
func (e *env) submit(t *testing.T, j *job.Job) *job.Job {
	t.Helper()
	if j.TaskID == "" {
		j.TaskID = uuid.Must(uuid.NewV7()).String()
	}
	j.TenantID, j.EnqueuedAt = "acme", time.Now().UTC()
	if j.AgentID == "" {
		j.AgentID = "7"
	}
	if j.Priority == "" {
		j.Priority = job.PriorityHigh
	}
	d := &docstore.Document{TenantID: j.TenantID, AgentID: j.AgentID, Kind: j.Kind, URL: j.URL, TaskID: j.TaskID, Priority: string(j.Priority)}
	if err := e.docs.InsertDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	j.DocumentID = d.ID
	e.queue(t, j)
	return j
}

// queue creates j's PENDING status and publishes it.
func (e *env) queue(t *testing.T, j *job.Job) {
	t.Helper()
	e.q.Publish(t, j)
}

// wait polls a task's status until cond holds.
func (e *env) wait(t *testing.T, taskID string, within time.Duration, what string, cond func(st *job.Status) bool) *job.Status {
	t.Helper()
	return quiretest.WaitStatus(t, e.statuses, taskID, within, what, cond)
}

func (e *env) waitState(t *testing.T, taskID string, state job.State) *job.Status {
	t.Helper()
	return e.wait(t, taskID, 20*time.Second, string(state), func(st *job.Status) bool { return st.State == state })
}

func (e *env) doc(t *testing.T, id int64) *docstore.Document {
	t.Helper()
	d, err := e.docs.GetDocument(t.Context(), "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (e *env) chunks(t *testing.T, id int64) []docstore.ChunkRow {
	t.Helper()
	rows, err := e.docs.Chunks(t.Context(), "acme", id, -1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func chunkText(rows []docstore.ChunkRow) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.Content)
		b.WriteString("\n")
	}
	return b.String()
}

func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	s, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// deadLetters returns the dead letters' jobs and headers.
func deadLetters(t *testing.T, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(t.Context(), job.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		if m, err := s.GetMsg(t.Context(), seq); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// hits counts requests per path.
type hits struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *hits) add(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[string]int{}
	}
	h.n[path]++
	return h.n[path]
}

func (h *hits) get(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[path]
}

const article = `<!doctype html>
<html><head><meta charset="utf-8"><title>Tide tables explained</title></head>
<body>
<nav class="menu"><a href="/">Home</a> <a href="/shop">Shop boilerplate menu</a> <a href="/login">Login boilerplate</a></nav>
<header><div class="banner">Subscribe banner boilerplate</div></header>
<article>
<h1>Tide tables explained</h1>
<p>Tides are the regular rise and fall of the sea caused by the gravitational pull of the moon and the sun.
A tide table lists the times and heights of high and low water for a harbour, day by day.</p>
<p>Spring tides follow a new or full moon and have the largest range; neap tides follow the quarter moons
and have the smallest. Sailors read the table together with the chart datum to know the depth of water.</p>
<p>%s</p>
</article>
<footer>Copyright footer boilerplate. Privacy policy. Cookie settings.</footer>
</body></html>`

func TestWebpageStoresTheMainTextAndKeepsUnchangedChunks(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	var extra atomic.Value
	extra.Store("Harbour masters publish the tables a year ahead.")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, article, extra.Load().(string))
	}))
	t.Cleanup(srv.Close)

	j := e.submit(t, &job.Job{Kind: job.KindWebpage, URL: srv.URL + "/tides"})
	st := e.waitState(t, j.TaskID, job.StateSuccess)
	if st.DocumentID != j.DocumentID || st.ChunkCount == 0 || st.Current != 100 {
		t.Fatalf("final status = %+v", st)
	}
	d := e.doc(t, j.DocumentID)
	if d.Kind != job.KindWebpage || d.URL != srv.URL+"/tides" || d.Status != job.DocCompleted || d.Title != "Tide tables explained" {
		t.Fatalf("document = %+v", d)
	}
	if d.ContentType != "text/html" || d.SizeBytes == 0 || len(d.SHA256) != 64 || d.ChunkCount != st.ChunkCount {
		t.Fatalf("document content fields = type %q size %d sha256 %q chunks %d", d.ContentType, d.SizeBytes, d.SHA256, d.ChunkCount)
	}
	rows := e.chunks(t, j.DocumentID)
	text := chunkText(rows)
	if !strings.Contains(text, "gravitational pull of the moon") || !strings.Contains(text, "Harbour masters") {
		t.Fatalf("stored chunks lack the article text:\n%s", text)
	}
	if strings.Contains(text, "boilerplate") {
		t.Fatalf("stored chunks keep navigation, banner or footer text:\n%s", text)
	}

	// The same page fetched again for the same document: its text did not change, so the
	// chunks are kept as they are (same rows) and nothing is embedded again.
	refetch := func() *job.Status {
		t.Helper()
		taskID := uuid.Must(uuid.NewV7()).String()
		if err := e.docs.RequeuePage(t.Context(), e.doc(t, j.DocumentID), taskID, "high"); err != nil {
			t.Fatal(err)
		}
		next := &job.Job{TaskID: taskID, Kind: job.KindWebpage, TenantID: "acme", AgentID: "7", DocumentID: j.DocumentID,
			Priority: job.PriorityHigh, URL: j.URL, EnqueuedAt: time.Now().UTC()}
		e.queue(t, next)
		return e.waitState(t, taskID, job.StateSuccess)
	}
	st = refetch()
	if !strings.Contains(st.Status, "unchanged") || st.ChunkCount != len(rows) {
		t.Fatalf("unchanged refetch status = %+v", st)
	}
	again := e.chunks(t, j.DocumentID)
	if len(again) != len(rows) || again[0].ID != rows[0].ID {
		t.Fatalf("unchanged page's chunks were replaced: ids %d.. -> %d..", rows[0].ID, again[0].ID)
	}
	if d := e.doc(t, j.DocumentID); d.Status != job.DocCompleted {
		t.Fatalf("document after unchanged refetch = %+v", d)
	}

	// A changed page replaces its chunks.
	extra.Store("Since this spring the harbour also publishes live gauge readings.")
	st = refetch()
	if strings.Contains(st.Status, "unchanged") {
		t.Fatalf("changed page reported unchanged: %+v", st)
	}
	changed := e.chunks(t, j.DocumentID)
	if ct := chunkText(changed); !strings.Contains(ct, "live gauge readings") || strings.Contains(ct, "Harbour masters") {
		t.Fatalf("changed page's chunks:\n%s", ct)
	}
	if changed[0].ID == rows[0].ID {
		t.Fatal("changed page kept its old chunks")
	}
	if e.doc(t, j.DocumentID).SHA256 == d.SHA256 {
		t.Fatal("changed page kept its old text hash")
	}
}

func TestWebpagePlainTextAndMarkdown(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/notes.md":
			w.Header().Set("Content-Type", "text/markdown")
			fmt.Fprint(w, "# Knots\n\nThe bowline makes a fixed loop at the end of a line.\n")
		default:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprint(w, "Reef knots join two ends of the same line around a bundle.\n")
		}
	}))
	t.Cleanup(srv.Close)
	for path, want := range map[string]string{"/notes.md": "bowline", "/notes.txt": "Reef knots"} {
		j := e.submit(t, &job.Job{Kind: job.KindWebpage, URL: srv.URL + path})
		e.waitState(t, j.TaskID, job.StateSuccess)
		if text := chunkText(e.chunks(t, j.DocumentID)); !strings.Contains(text, want) {
			t.Fatalf("%s: chunks %q lack %q", path, text, want)
		}
	}
}

// assertDeadLettered checks that a webpage task failed at once and went to JOBS_DLQ with its
// document marked failed.
func assertDeadLettered(t *testing.T, e *env, j *job.Job, wantErr string) {
	t.Helper()
	st := e.waitState(t, j.TaskID, job.StateFailure)
	if st.Attempts != 1 || !strings.Contains(st.Error, wantErr) {
		t.Fatalf("FAILURE status = %+v, want one attempt and an error containing %q", st, wantErr)
	}
	var found bool
	for _, m := range deadLetters(t, e.js) {
		if m.Header.Get(job.HeaderTaskID) == j.TaskID {
			found = true
			if m.Subject != "dlq.high.webpage" || m.Header.Get(job.HeaderAttempts) != "1" {
				t.Fatalf("dead letter on %s, attempts %s", m.Subject, m.Header.Get(job.HeaderAttempts))
			}
		}
	}
	if !found {
		t.Fatalf("no dead letter for task %s", j.TaskID)
	}
	if d := e.doc(t, j.DocumentID); d.Status != job.DocFailed || d.Error == "" {
		t.Fatalf("document = %+v, want failed with the reason", d)
	}
}

func TestWebpagePermanentFailuresAreDeadLettered(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	var h hits
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.add(r.URL.Path)
		switch r.URL.Path {
		case "/gone":
			http.Error(w, "gone", http.StatusGone)
		case "/image":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write([]byte("\x89PNG\r\n\x1a\n"))
		case "/huge": // no Content-Length: cut while reading
			w.Header().Set("Content-Type", "text/html")
			for range 64 {
				_, _ = w.Write([]byte(strings.Repeat("<p>lorem ipsum</p>", 2000)))
			}
		case "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case "/to-credentials":
			http.Redirect(w, r, "http://user:secret@"+r.Host+"/secret", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	tests := []struct{ path, wantErr string }{
		{"/missing", "404"},
		{"/gone", "410"},
		{"/image", "unsupported content type"},
		{"/huge", "body too large"},
		{"/to-file", "invalid url"},
		{"/to-credentials", "invalid url"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			j := e.submit(t, &job.Job{Kind: job.KindWebpage, URL: srv.URL + tt.path})
			assertDeadLettered(t, e, j, tt.wantErr)
			if n := h.get(tt.path); n != 1 {
				t.Fatalf("%s fetched %d times, want once (no retries)", tt.path, n)
			}
		})
	}
	if h.get("/secret") != 0 {
		t.Fatal("a redirect to a URL with credentials was followed")
	}
}

func TestWebpageLoopbackRefusedWithoutAllowPrivate(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: false})
	var h hits
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.add("target " + r.URL.Path)
		fmt.Fprint(w, "<html><body><p>internal admin page</p></body></html>")
	}))
	t.Cleanup(target.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.add("redirector " + r.URL.Path)
		http.Redirect(w, r, target.URL+"/admin", http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	// Every URL here is, or resolves to, 127.0.0.1: the guard refuses before any connect, so
	// neither server sees a request. (A public first hop redirecting to loopback cannot be
	// made without traffic off this machine; webfetch's own tests cover that hop with their
	// address exemption.)
	port := redirector.URL[strings.LastIndex(redirector.URL, ":")+1:]
	for _, u := range []string{
		redirector.URL + "/start",        // 127.0.0.1 literal, redirecting to 127.0.0.1
		"http://localhost:" + port + "/", // a name resolving to loopback
		"http://[::ffff:127.0.0.1]:" + port + "/",
	} {
		t.Run(u, func(t *testing.T) {
			j := e.submit(t, &job.Job{Kind: job.KindWebpage, URL: u})
			assertDeadLettered(t, e, j, "address not allowed")
		})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.n) != 0 {
		t.Fatalf("refused fetches reached the servers: %v", h.n)
	}
}

func TestWebpageTransientFailuresAreRetried(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true, retry: func(int) time.Duration { return 50 * time.Millisecond }})
	var (
		h     hits
		mu    sync.Mutex
		times []time.Time
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := h.add(r.URL.Path)
		if r.URL.Path == "/throttled" {
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
			if n == 1 {
				w.Header().Set("Retry-After", "2")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
		}
		if r.URL.Path == "/flaky" && n == 1 {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, article, "Fetched on attempt "+fmt.Sprint(n)+".")
	}))
	t.Cleanup(srv.Close)

	flaky := e.submit(t, &job.Job{Kind: job.KindWebpage, URL: srv.URL + "/flaky"})
	st := e.waitState(t, flaky.TaskID, job.StateSuccess)
	if st.Attempts != 2 || h.get("/flaky") != 2 {
		t.Fatalf("503 then 200: status %+v after %d fetches, want success on attempt 2", st, h.get("/flaky"))
	}
	if d := e.doc(t, flaky.DocumentID); d.Status != job.DocCompleted {
		t.Fatalf("document = %+v", d)
	}

	throttled := e.submit(t, &job.Job{Kind: job.KindWebpage, URL: srv.URL + "/throttled"})
	st = e.waitState(t, throttled.TaskID, job.StateRetry)
	if !strings.Contains(st.Error, "429") || !strings.Contains(st.Status, "retrying in 2s") {
		t.Fatalf("RETRY status after a 429 = %+v, want the Retry-After (2s) as the delay", st)
	}
	e.waitState(t, throttled.TaskID, job.StateSuccess)
	mu.Lock()
	defer mu.Unlock()
	if gap := times[1].Sub(times[0]); gap < 2*time.Second {
		t.Fatalf("refetched %v after a 429 with Retry-After: 2, want >= 2s", gap)
	}
	if dl := deadLetters(t, e.js); len(dl) != 0 {
		t.Fatalf("%d dead letters for transient failures", len(dl))
	}
}

func TestWebpageTimeoutIsRetried(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	var h hits
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.add(r.URL.Path) == 1 {
			select { // longer than the fetcher's 5s timeout
			case <-release:
			case <-time.After(8 * time.Second):
			}
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, article, "")
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	j := e.submit(t, &job.Job{Kind: job.KindWebpage, URL: srv.URL + "/slow"})
	st := e.wait(t, j.TaskID, 30*time.Second, "SUCCESS", func(st *job.Status) bool { return st.State == job.StateSuccess })
	if st.Attempts != 2 {
		t.Fatalf("status = %+v, want success on the second attempt after a timeout", st)
	}
}

func TestWebpagePDFURLIsProcessedAsAPDF(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	pdf := quiretest.PDF([]string{"Harbour dues are payable at the office by the slipway.", "Visiting yachts pay per metre per night."})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/dues" { // no Content-Type: sniffed from the body
			w.Header()["Content-Type"] = nil
		} else {
			w.Header().Set("Content-Type", "application/pdf")
		}
		_, _ = w.Write(pdf)
	}))
	t.Cleanup(srv.Close)
	for _, path := range []string{"/dues.pdf", "/dues"} {
		j := e.submit(t, &job.Job{Kind: job.KindWebpage, URL: srv.URL + path})
		st := e.waitState(t, j.TaskID, job.StateSuccess)
		if st.ChunkCount == 0 {
			t.Fatalf("%s: status %+v", path, st)
		}
		text := chunkText(e.chunks(t, j.DocumentID))
		if !strings.Contains(text, "Harbour dues are payable") || !strings.Contains(text, "per metre per night") {
			t.Fatalf("%s: chunks %q lack the PDF's text", path, text)
		}
		if d := e.doc(t, j.DocumentID); d.ContentType != "application/pdf" || d.Kind != job.KindWebpage {
			t.Fatalf("%s: document = %+v", path, d)
		}
	}
}
