package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/taskstatus"
)

const (
	uploadClients = 16
	uploadBytes   = 10 << 10
	benchToken    = "bench-tenant-token-0123456789"
)

// loadResult is the outcome of a closed-loop load: ops/s and latency percentiles.
type loadResult struct {
	ops      int
	rate     float64
	p50, p99 time.Duration
}

// closedLoop runs op total times from clients goroutines and measures each call.
func closedLoop(total, clients int, op func(i int) error) (loadResult, error) {
	lat := make([]time.Duration, total)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				t := time.Now()
				if err := op(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return loadResult{}, firstErr
	}
	return loadResult{ops: total, rate: float64(total) / elapsed.Seconds(), p50: percentile(lat, 50), p99: percentile(lat, 99)}, nil
}

var words = strings.Fields(`the a of to and in is for on with as by at from that this it be are was
document queue worker stream message status chunk embedding search agent upload server client
retry backoff deadline latency throughput storage index vector token paragraph sentence word
system design contract priority tenant record table column migration transaction commit
network packet request response header body payload format version field value number text`)

// textFile is a deterministic, distinct 10 KB plain-text document made of sentences and
// paragraphs, like a small note or article.
func textFile(seed int) []byte {
	r := rand.New(rand.NewPCG(uint64(seed), 42))
	var b bytes.Buffer
	fmt.Fprintf(&b, "Benchmark document %d\n\n", seed)
	for b.Len() < uploadBytes {
		n := 6 + r.IntN(14)
		for i := range n {
			w := words[r.IntN(len(words))]
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			} else {
				b.WriteByte(' ')
			}
			b.WriteString(w)
		}
		b.WriteString(". ")
		if r.IntN(6) == 0 {
			b.WriteString("\n\n")
		}
	}
	return b.Bytes()[:uploadBytes]
}

// runFloor measures the durable parts of an upload without HTTP: Object Store put, INSERT,
// KV create and acknowledged publish, from uploadClients goroutines.
func runFloor(ctx context.Context, e *env, total int, steps *stepTimes) (loadResult, error) {
	srv, err := e.startNATS("floor")
	if err != nil {
		return loadResult{}, err
	}
	defer srv.stop()
	nc, js, top, err := srv.connect(ctx)
	if err != nil {
		return loadResult{}, err
	}
	defer nc.Close()
	dbURL, err := e.newDB(ctx)
	if err != nil {
		return loadResult{}, err
	}
	docs, err := docstore.Open(ctx, dbURL)
	if err != nil {
		return loadResult{}, err
	}
	defer docs.Close()
	statuses := taskstatus.New(top.Tasks, js, time.Hour)
	pub := jobqueue.NewPublisher(js)
	files := make([][]byte, total+2*uploadClients)
	for i := range files {
		files[i] = textFile(i)
	}
	op := func(i int) error {
		id := fmt.Sprintf("floor-%06d", i)
		t := time.Now()
		if _, err := top.Uploads.Put(ctx, jetstreamMeta(id), bytes.NewReader(files[i])); err != nil {
			return fmt.Errorf("object put: %w", err)
		}
		t = steps.add(0, t)
		doc := &docstore.Document{TenantID: "bench", AgentID: "agent-1", Kind: job.KindDocument, Filename: "doc.txt",
			ContentType: "text/plain", SizeBytes: uploadBytes, TaskID: id, Priority: string(job.PriorityHigh)}
		if err := docs.InsertDocument(ctx, doc); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		t = steps.add(1, t)
		st := &job.Status{TaskID: id, State: job.StatePending, Status: "queued", Total: 100, DocumentID: doc.ID,
			Queue: job.PriorityHigh, Kind: job.KindDocument, TenantID: "bench", AgentID: "agent-1"}
		if err := statuses.Create(ctx, st); err != nil {
			return err
		}
		t = steps.add(2, t)
		j := &job.Job{TaskID: id, Kind: job.KindDocument, TenantID: "bench", AgentID: "agent-1", Priority: job.PriorityHigh,
			DocumentID: doc.ID, Object: id, Filename: "doc.txt", ContentType: "text/plain", EnqueuedAt: time.Now().UTC()}
		err := pub.Publish(ctx, j, id)
		steps.add(3, t)
		return err
	}
	// Warm-up, not measured: every connection of the pool opened, the first blocks written.
	warm := 2 * uploadClients
	if _, err := closedLoop(warm, uploadClients, func(i int) error { return op(total + i) }); err != nil {
		return loadResult{}, err
	}
	*steps = stepTimes{}
	return closedLoop(total, uploadClients, op)
}

// stepTimes sums the time spent in each step of the floor.
type stepTimes [4]atomic.Int64

func (s *stepTimes) add(i int, since time.Time) time.Time {
	s[i].Add(int64(time.Since(since)))
	return time.Now()
}

func (s *stepTimes) mean(i, n int) time.Duration {
	return time.Duration(s[i].Load() / int64(max(n, 1)))
}

// uploadBody is a ready multipart request body.
type uploadBody struct {
	body        []byte
	contentType string
}

func newUploadBody(seed int) uploadBody {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, _ := mw.CreateFormFile("file", fmt.Sprintf("note-%06d.txt", seed))
	_, _ = fw.Write(textFile(seed))
	_ = mw.Close()
	return uploadBody{body: b.Bytes(), contentType: mw.FormDataContentType()}
}

// runAPI measures the floor, then bin/api-service alone (no worker) taking uploads, then (if
// drain) one bin/worker-service with default settings draining what the API queued.
func runAPI(ctx context.Context, e *env, sz sizes, drain bool, logf func(string, ...any)) ([]row, error) {
	rows, _, err := runAPIRates(ctx, e, sz, drain, logf)
	return rows, err
}

// apiRates are the headline figures of runAPI: uploads/s and, with the drain, documents/s.
type apiRates struct{ upload, drain float64 }

// runAPIRates is runAPI, with its headline figures as numbers.
func runAPIRates(ctx context.Context, e *env, sz sizes, drain bool, logf func(string, ...any)) ([]row, apiRates, error) {
	logf("floor: %d × (Object Store put + INSERT + KV create + acked publish), %d goroutines, no HTTP", sz.floorOps, uploadClients)
	var steps stepTimes
	floor, err := runFloor(ctx, e, sz.floorOps, &steps)
	if err != nil {
		return nil, apiRates{}, fmt.Errorf("floor: %w", err)
	}
	logf("floor: %.0f ops/s, p50 %.2f ms, p99 %.2f ms; mean per step: object put %.2f ms, INSERT %.2f ms, KV create %.2f ms, acked publish %.2f ms",
		floor.rate, ms(floor.p50), ms(floor.p99), ms(steps.mean(0, floor.ops)), ms(steps.mean(1, floor.ops)), ms(steps.mean(2, floor.ops)), ms(steps.mean(3, floor.ops)))

	srv, err := e.startNATS("api")
	if err != nil {
		return nil, apiRates{}, err
	}
	defer srv.stop()
	dbURL, err := e.newDB(ctx)
	if err != nil {
		return nil, apiRates{}, err
	}
	httpAddr, _ := freeAddr()
	metricsAddr, _ := freeAddr()
	api, err := e.startBinary("api-service", map[string]string{
		"NATS_URL": srv.url(), "DATABASE_URL": dbURL, "API_TOKENS": "bench:" + benchToken,
		"HTTP_ADDR": httpAddr, "METRICS_ADDR": metricsAddr,
	})
	if err != nil {
		return nil, apiRates{}, err
	}
	defer api.stop()
	base := "http://" + httpAddr
	if err := api.waitReady(base+"/readyz", 60*time.Second); err != nil {
		return nil, apiRates{}, err
	}
	_, apiIdle := api.rssMB()

	warm := uploadClients
	bodies := make([]uploadBody, warm+sz.uploads)
	for i := range bodies {
		bodies[i] = newUploadBody(i)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: uploadClients, MaxConnsPerHost: uploadClients}, Timeout: time.Minute}
	upload := func(b uploadBody) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/documents/agent/agent-1/upload", bytes.NewReader(b.body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", b.contentType)
		req.Header.Set("Authorization", "Bearer "+benchToken)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body) // latency runs to the end of the body
		_ = resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("upload: %d %s", resp.StatusCode, body)
		}
		return nil
	}
	// Warm-up: one upload per client connection, not measured.
	if _, err := closedLoop(warm, uploadClients, func(i int) error { return upload(bodies[i]) }); err != nil {
		return nil, apiRates{}, fmt.Errorf("api warm-up: %w", err)
	}
	logf("api: %d uploads of 10 KB text, %d clients, no worker running", sz.uploads, uploadClients)
	cpu0, pg0, self0 := api.cpu(), e.pgCPU(), cpuTime()
	res, err := closedLoop(sz.uploads, uploadClients, func(i int) error { return upload(bodies[warm+i]) })
	if err != nil {
		return nil, apiRates{}, fmt.Errorf("api: %w", err)
	}
	apiCPU, pgCPU, selfCPU := api.cpu()-cpu0, e.pgCPU()-pg0, cpuTime()-self0
	_, apiPeak := api.rssMB()
	perUpload := func(d time.Duration) float64 { return ms(d) / float64(sz.uploads) }
	logf("api: %.0f uploads/s, p50 %.2f ms, p99 %.2f ms; CPU per upload: api-service %.2f ms, PostgreSQL %.2f ms, NATS server + load generator %.2f ms; RSS idle %.0f MB, peak %.0f MB",
		res.rate, ms(res.p50), ms(res.p99), perUpload(apiCPU), perUpload(pgCPU), perUpload(selfCPU), apiIdle, apiPeak)

	ratio := res.rate / floor.rate
	rows := []row{{
		Figure: fmt.Sprintf("API upload, %d × 10 KB text at 16 clients, no worker (uploads/s)", sz.uploads),
		Quire:  fmt.Sprintf("%.0f", res.rate), Raw: fmt.Sprintf("%.0f (durable-parts floor, no HTTP)", floor.rate),
		Ratio: fmt.Sprintf("%.0f%%", 100*ratio), Goal: "≥ 50% of floor", Met: met(ratio >= 0.5),
	}, {
		Figure: "API upload latency p50 / p99, to the end of the body (ms)",
		Quire:  fmt.Sprintf("%.2f / %.2f", ms(res.p50), ms(res.p99)), Raw: fmt.Sprintf("%.2f / %.2f (floor)", ms(floor.p50), ms(floor.p99)),
		Ratio: fmt.Sprintf("%.1f× (p99)", ms(res.p99)/ms(floor.p99)), Goal: "p99 ≤ 25 ms", Met: met(res.p99 <= 25*time.Millisecond),
	}, {
		Figure: "API CPU per upload: api-service + PostgreSQL + NATS server and load generator (ms)",
		Quire:  fmt.Sprintf("%.2f + %.2f + %.2f", perUpload(apiCPU), perUpload(pgCPU), perUpload(selfCPU)),
	}, {
		Figure: "api-service RSS idle / peak after the uploads (MB)",
		Quire:  fmt.Sprintf("%.0f / %.0f", apiIdle, apiPeak), Raw: "old FastAPI stack ~130", Met: "",
	}}
	rates := apiRates{upload: res.rate}
	if !drain {
		return rows, rates, nil
	}
	drow, drained, err := runDrain(ctx, e, srv, dbURL, warm+sz.uploads, logf)
	if err != nil {
		return nil, apiRates{}, fmt.Errorf("drain: %w", err)
	}
	rows = append(rows, drow...)
	rates.drain = drained
	if sz.backlog == 0 {
		return rows, rates, nil
	}
	brow, err := runBacklog(ctx, e, srv, dbURL, sz, func(i int) error { return upload(newUploadBody(1_000_000 + i)) }, logf)
	if err != nil {
		return nil, apiRates{}, fmt.Errorf("backlog: %w", err)
	}
	return append(rows, brow...), rates, nil
}

// runDrain starts one bin/worker-service with default settings on the queued documents and
// measures documents/s from the first to the last acknowledgement.
func runDrain(ctx context.Context, e *env, srv *natsServer, dbURL string, queued int, logf func(string, ...any)) ([]row, float64, error) {
	mon, err := newAckMonitor(srv.url(), job.PriorityHigh.Stream(), queued)
	if err != nil {
		return nil, 0, err
	}
	defer mon.close()
	metricsAddr, _ := freeAddr()
	logf("drain: one worker-service (default settings) on %d queued 10 KB documents", queued)
	w, err := e.startBinary("worker-service", map[string]string{
		"NATS_URL": srv.url(), "DATABASE_URL": dbURL, "METRICS_ADDR": metricsAddr,
	})
	if err != nil {
		return nil, 0, err
	}
	defer w.stop()
	pg0, self0 := e.pgCPU(), cpuTime()
	if err := mon.wait(10 * time.Minute); err != nil {
		return nil, 0, fmt.Errorf("%w\n%s", err, w.output())
	}
	first, last := mon.span()
	rate := float64(queued-1) / last.Sub(first).Seconds()
	_, peak := w.rssMB()
	workerCPU, pgCPU, selfCPU := w.cpu(), e.pgCPU()-pg0, cpuTime()-self0
	logf("drain: mean per job (worker /metrics): %s", stageMeans(metricsAddr))

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = conn.Close(ctx) }()
	var completed, chunks int
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = $1), coalesce(sum(chunk_count), 0) FROM documents`, job.DocCompleted).Scan(&completed, &chunks); err != nil {
		return nil, 0, err
	}
	if completed != queued {
		return nil, 0, fmt.Errorf("%d of %d documents completed after every job was acknowledged", completed, queued)
	}
	perDoc := func(d time.Duration) float64 { return ms(d) / float64(queued) }
	logf("drain: %.0f documents/s (%d chunks); CPU per document: worker %.2f ms (start-up included), PostgreSQL %.2f ms, NATS server %.2f ms; worker peak RSS %.0f MB",
		rate, chunks, perDoc(workerCPU), perDoc(pgCPU), perDoc(selfCPU), peak)
	return []row{{
		Figure: fmt.Sprintf("Drain: one worker, defaults, %d queued 10 KB text docs → SUCCESS (docs/s)", queued),
		Quire:  fmt.Sprintf("%.0f", rate), Raw: "old stack 205",
		Ratio: fmt.Sprintf("%.1f× old", rate/205), Goal: "≥ 410/s", Met: met(rate >= 410),
	}, {
		Figure: "Drain CPU per document: worker (start-up included) + PostgreSQL + NATS server (ms)",
		Quire:  fmt.Sprintf("%.2f + %.2f + %.2f", perDoc(workerCPU), perDoc(pgCPU), perDoc(selfCPU)),
	}, {
		Figure: "worker-service peak RSS during the drain (MB)",
		Quire:  fmt.Sprintf("%.0f", peak), Raw: "old Celery worker ~210",
	}}, rate, nil
}

func jetstreamMeta(name string) jetstream.ObjectMeta { return jetstream.ObjectMeta{Name: name} }

// stageMeans reads the worker's /metrics and returns the mean of each job stage and of a
// whole job attempt, as "stage=1.2ms" pairs, to say where a document's time goes.
func stageMeans(metricsAddr string) string {
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	sums, counts := map[string]float64{}, map[string]float64{}
	var order []string
	for _, line := range strings.Split(string(raw), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		var key string
		switch {
		case strings.HasPrefix(name, "quire_job_stage_duration_seconds_"):
			if i := strings.Index(name, `stage="`); i >= 0 {
				key = name[i+7:]
				key = key[:strings.IndexByte(key, '"')]
			}
		case strings.HasPrefix(name, "quire_job_duration_seconds_"):
			key = "job"
		default:
			continue
		}
		var v float64
		if _, err := fmt.Sscan(val, &v); err != nil || key == "" {
			continue
		}
		switch {
		case strings.Contains(name, "_sum"):
			if _, seen := sums[key]; !seen {
				order = append(order, key)
			}
			sums[key] += v
		case strings.Contains(name, "_count"):
			counts[key] += v
		}
	}
	var parts []string
	for _, k := range order {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f ms", k, 1000*sums[k]/counts[k]))
		}
	}
	return strings.Join(parts, ", ")
}
