package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/pgcluster"
)

// supervisor keeps a worker-service process running, restarting it whenever it exits, the way
// Kubernetes restarts a crashed pod.
type supervisor struct {
	t     *testing.T
	s     *stack
	env   map[string]string
	mu    sync.Mutex
	cur   *service
	stop  chan struct{}
	done  chan struct{}
	start int
}

func (s *stack) supervise(t *testing.T, env map[string]string) *supervisor {
	t.Helper()
	sv := &supervisor{t: t, s: s, env: env, stop: make(chan struct{}), done: make(chan struct{})}
	sv.cur = s.startWorker(t, env)
	sv.start = 1
	go func() {
		defer close(sv.done)
		for {
			sv.mu.Lock()
			cur := sv.cur
			sv.mu.Unlock()
			select {
			case <-sv.stop:
				return
			case <-cur.done:
			}
			select {
			case <-sv.stop:
				return
			default:
			}
			next := s.startWorkerAsync(t, env)
			sv.mu.Lock()
			sv.cur = next
			sv.start++
			sv.mu.Unlock()
		}
	}()
	t.Cleanup(sv.shutdown)
	return sv
}

func (sv *supervisor) shutdown() {
	select {
	case <-sv.stop:
	default:
		close(sv.stop)
	}
	<-sv.done
}

// kill sends SIGKILL to the running worker.
func (sv *supervisor) kill() {
	sv.mu.Lock()
	cur := sv.cur
	sv.mu.Unlock()
	cur.stop(syscall.SIGKILL)
}

func (sv *supervisor) starts() int {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.start
}

// startWorkerAsync starts a worker without waiting for readiness (it may die at once).
func (s *stack) startWorkerAsync(t *testing.T, extra map[string]string) *service {
	env := map[string]string{"METRICS_ADDR": "127.0.0.1:0"}
	for k, v := range s.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	return start(t, "worker-service", env)
}

// waitDrained waits until stream name holds no message, failing after within.
func (s *stack) waitDrained(t *testing.T, name string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for s.streamMsgs(t, name) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still holds %d messages after %v", name, s.streamMsgs(t, name), within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *stack) streamMsgs(t *testing.T, name string) uint64 {
	t.Helper()
	n, err := s.streamMsgsErr(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// streamMsgsErr returns the number of messages in stream name.
func (s *stack) streamMsgsErr(ctx context.Context, name string) (uint64, error) {
	st, err := s.js.Stream(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s info: %w", name, err)
	}
	return info.State.Msgs, nil
}

func uploadMany(t *testing.T, api *client, n int, name func(i int) string, content func(i int) []byte, fields map[string]string) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			code, up := api.uploadFields("7", name(i), content(i), fields)
			if code != http.StatusAccepted {
				errs <- fmt.Sprintf("upload %d = %d %v", i, code, up)
				return
			}
			ids[i] = up["task_id"].(string)
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	return ids
}

func TestPoisonJobIsDeadLetteredAndOthersComplete(t *testing.T) {
	slow(t)
	s := newStack(t, map[string]string{"ACK_WAIT": "1s", "MAX_RETRIES": "2"})
	api := s.startAPI(t)
	// Every job takes 3s, so the jobs running when the poison job arrives are still running
	// when it kills their worker.
	sv := s.supervise(t, map[string]string{"QUIRE_FAULT_EXIT_ON_FILENAME": "poison.txt", "QUIRE_FAULT_SLOW_JOB": "3s"})
	content := func(i int) []byte { return []byte(strings.Repeat("fine words ", 50+i)) }
	inFlight := uploadMany(t, api, 3, func(i int) string { return fmt.Sprintf("running-%d.txt", i) }, content, nil)
	for _, id := range inFlight {
		api.waitTask(id, 30*time.Second, "PROGRESS")
	}
	code, up := api.upload("7", "poison.txt", []byte("this document kills its worker"))
	if code != http.StatusAccepted {
		t.Fatalf("upload = %d %v", code, up)
	}
	poison := up["task_id"].(string)
	queued := uploadMany(t, api, 7, func(i int) string { return fmt.Sprintf("ok-%d.txt", i) }, content, nil)

	st := api.waitTask(poison, 90*time.Second, "FAILURE")
	if st["error"] != "worker lost" {
		t.Fatalf("poison task = %v, want error %q", st, "worker lost")
	}
	// The jobs that shared a worker with the poison job lost one run with it; their next run
	// is isolated and succeeds, whatever the poison job does meanwhile.
	for _, id := range inFlight {
		if st := api.waitTask(id, 60*time.Second, "SUCCESS"); st["attempts"] != float64(2) {
			t.Fatalf("in-flight neighbour of the poison job = %v, want SUCCESS after 2 attempts", st)
		}
	}
	for _, id := range queued {
		if st := api.waitTask(id, 60*time.Second, "SUCCESS"); st["attempts"].(float64) > 2 {
			t.Fatalf("queued job = %v, want SUCCESS after at most 2 attempts", st)
		}
	}
	dlq, err := s.js.Stream(t.Context(), job.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dlq.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(job.HeaderTaskID) != poison || m.Header.Get(job.HeaderAttempts) != "3" || m.Header.Get(job.HeaderError) != "worker lost" {
		t.Fatalf("dead letter headers = %v", m.Header)
	}
	// MAX_RETRIES+1 = 3 deliveries each killed a worker; the fourth dead-lettered it.
	if n := sv.starts(); n < 4 {
		t.Fatalf("worker started %d times, want at least 4 (three deaths)", n)
	}
	// The worker records FAILURE before it acks the job; give the ack a moment.
	s.waitDrained(t, "JOBS_HIGH", 5*time.Second)
	if code, doc := api.do(http.MethodGet, "/api/v1/documents/"+jsonNum(st["document_id"]), nil, ""); code != 200 || doc["status"] != "failed" {
		t.Fatalf("poison document = %d %v", code, doc)
	}
}

func jsonNum(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestCrashLoopLosesAndDuplicatesNothing(t *testing.T) {
	slow(t)
	s := newStack(t, map[string]string{"ACK_WAIT": "2s", "MAX_RETRIES": "10", "RETRY_BASE_DELAY": "100ms", "RETRY_MAX_DELAY": "1s", "LOG_LEVEL": "info"})
	api := s.startAPI(t)
	const docs = 200
	sizes := []int{40, 400, 2500} // words: one, a few and many chunks
	content := func(i int) []byte {
		return []byte(strings.Repeat(fmt.Sprintf("word%d alpha beta gamma. ", i%3), sizes[i%3]))
	}
	ids := uploadMany(t, api, docs, func(i int) string { return fmt.Sprintf("doc-%d.txt", i) }, content, nil)

	kv, err := s.js.KeyValue(t.Context(), job.TasksBucket)
	if err != nil {
		t.Fatal(err)
	}
	type sample struct {
		at       time.Time
		attempts int
	}
	var (
		mu      sync.Mutex
		history = map[string][]sample{}
	)
	w, err := kv.WatchAll(t.Context(), jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	go func() {
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var st job.Status
			if json.Unmarshal(e.Value(), &st) == nil && st.State == job.StateProgress {
				mu.Lock()
				history[st.TaskID] = append(history[st.TaskID], sample{time.Now(), st.Attempts})
				mu.Unlock()
			}
		}
	}()

	// PROGRESS_INTERVAL=0: every run records its start at once, so that the runs a kill
	// interrupts are seen in the statuses (by default a run shorter than the interval writes
	// only its final status).
	sv := s.supervise(t, map[string]string{"QUIRE_FAULT_SLOW_JOB": "150ms", "WORKER_CONCURRENCY_HIGH": "4", "PROGRESS_INTERVAL": "0"})
	var kills []time.Time
	for len(kills) < 6 {
		time.Sleep(time.Duration(400+rand.IntN(900)) * time.Millisecond)
		kills = append(kills, time.Now())
		sv.kill()
	}
	for _, id := range ids {
		api.waitTask(id, 120*time.Second, "SUCCESS")
	}
	t.Logf("worker killed %d times (kill -9), started %d times", len(kills), sv.starts())

	// Time from a kill to the redelivery of a job that was running when it happened.
	mu.Lock()
	var delays []time.Duration
	for _, k := range kills {
		var best time.Duration
		for _, h := range history {
			for i := 1; i < len(h); i++ {
				if h[i-1].at.Before(k) && h[i].at.After(k) && h[i].attempts > h[i-1].attempts {
					if d := h[i].at.Sub(k); best == 0 || d < best {
						best = d
					}
				}
			}
		}
		if best > 0 {
			delays = append(delays, best)
		}
	}
	mu.Unlock()
	t.Logf("kill -9 → redelivery of an interrupted job (ACK_WAIT 2s): %v", delays)
	if len(delays) == 0 {
		t.Error("no interrupted job was seen redelivered after a kill")
	}

	// A clean run of each size, for the expected chunk counts.
	clean := map[int]int{}
	for k := range sizes {
		code, up := api.upload("7", fmt.Sprintf("clean-%d.txt", k), content(k))
		if code != http.StatusAccepted {
			t.Fatalf("clean upload = %d", code)
		}
		st := api.waitTask(up["task_id"].(string), 30*time.Second, "SUCCESS")
		clean[k] = int(st["chunk_count"].(float64))
	}
	conn, err := pgx.Connect(t.Context(), s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	lost, wrong := 0, 0
	for i, id := range ids {
		var status string
		var count, rows int
		err := conn.QueryRow(t.Context(), `SELECT d.status, d.chunk_count, (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)
			FROM documents d WHERE d.task_id = $1`, id).Scan(&status, &count, &rows)
		if err != nil || status != "completed" {
			lost++
			continue
		}
		if count != clean[i%3] || rows != count {
			wrong++
		}
	}
	var dupes int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM (SELECT document_id, ordinal FROM chunks GROUP BY 1, 2 HAVING count(*) > 1) d`).Scan(&dupes); err != nil {
		t.Fatal(err)
	}
	t.Logf("documents lost: %d, with wrong or duplicated chunks: %d, duplicate chunk rows: %d", lost, wrong, dupes)
	if lost != 0 || wrong != 0 || dupes != 0 {
		t.Fatalf("lost %d, wrong %d, duplicate chunk rows %d; want 0/0/0", lost, wrong, dupes)
	}
	for _, name := range []string{"JOBS_HIGH", "JOBS_MEDIUM", "JOBS_LOW"} {
		s.waitDrained(t, name, 5*time.Second)
	}
}

func TestBrokerRestartLosesNothing(t *testing.T) {
	slow(t)
	storeDir := t.TempDir()
	ns := natstest.RunAt(t, storeDir, -1)
	s := newStackOn(t, ns, map[string]string{"ACK_WAIT": "3s", "RETRY_BASE_DELAY": "200ms", "RETRY_MAX_DELAY": "1s", "MAX_RETRIES": "10"})
	api := s.startAPI(t)
	s.startWorker(t, map[string]string{"QUIRE_FAULT_SLOW_JOB": "100ms"})
	ids := uploadMany(t, api, 40, func(i int) string { return fmt.Sprintf("b-%d.txt", i) },
		func(i int) []byte { return []byte(strings.Repeat("broker restart words ", 100)) }, nil)

	time.Sleep(300 * time.Millisecond)
	clientPort := ns.Addr().(*net.TCPAddr).Port
	ns.Shutdown()
	ns.WaitForShutdown()
	// While the broker is down the API refuses new work instead of losing it.
	if code, body := api.upload("7", "during.txt", []byte("while down")); code != http.StatusServiceUnavailable {
		t.Errorf("upload while NATS is down = %d %v, want 503", code, body)
	}
	time.Sleep(time.Second)
	ns2 := natstest.RunAt(t, storeDir, clientPort)
	_, js := natstest.Connect(t, ns2)
	s.js = js
	for _, id := range ids {
		api.waitTask(id, 90*time.Second, "SUCCESS")
	}
	for _, name := range []string{"JOBS_HIGH", "JOBS_MEDIUM", "JOBS_LOW"} {
		s.waitDrained(t, name, 5*time.Second)
	}
}

func TestPostgresOutageIsRetriedNotDeadLettered(t *testing.T) {
	slow(t)
	dir, err := os.MkdirTemp("", "quire-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pg, err := pgcluster.Start(t.Context(), pgcluster.Options{Dir: dir + "/data", LogFile: dir + "/pg.log"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop(context.Background()) })
	if err := pg.CreateDatabase(t.Context(), "quire"); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, map[string]string{"RETRY_BASE_DELAY": "1s", "RETRY_MAX_DELAY": "2s", "MAX_RETRIES": "5"})
	s.env["DATABASE_URL"], s.dbURL = pg.URL("quire"), pg.URL("quire")
	api := s.startAPI(t)
	s.startWorker(t, map[string]string{"QUIRE_FAULT_SLOW_JOB": "400ms"})
	ids := uploadMany(t, api, 12, func(i int) string { return fmt.Sprintf("p-%d.txt", i) },
		func(i int) []byte { return []byte(strings.Repeat("postgres outage words ", 80)) }, nil)

	time.Sleep(200 * time.Millisecond)
	if err := pg.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if code, _ := api.upload("7", "during.txt", []byte("while down")); code != http.StatusServiceUnavailable {
		t.Errorf("upload while PostgreSQL is down = %d, want 503", code)
	}
	pg, err = pgcluster.Start(t.Context(), pgcluster.Options{Dir: dir + "/data", Port: pg.Port(), LogFile: dir + "/pg.log"})
	if err != nil {
		t.Fatal(err)
	}
	retried := 0
	for _, id := range ids {
		st := api.waitTask(id, 60*time.Second, "SUCCESS", "FAILURE")
		if st["state"] != "SUCCESS" {
			t.Errorf("task %s = %v, want SUCCESS after the outage", id, st)
		}
		if st["attempts"].(float64) > 1 {
			retried++
		}
	}
	t.Logf("%d of %d jobs needed a retry across the PostgreSQL outage", retried, len(ids))
	if retried == 0 {
		t.Error("no job was interrupted by the outage; the test proved nothing")
	}
	if n := s.streamMsgs(t, job.DLQStream); n != 0 {
		t.Fatalf("JOBS_DLQ holds %d dead letters after a short outage", n)
	}
}

func TestCancelRunningAndQueuedTasks(t *testing.T) {
	slow(t)
	s := newStack(t, nil)
	api := s.startAPI(t)
	s.startWorker(t, map[string]string{"QUIRE_FAULT_SLOW_JOB": "20s", "WORKER_CONCURRENCY_HIGH": "1"})
	_, a := api.upload("7", "running.txt", []byte("a running job"))
	_, b := api.upload("7", "queued.txt", []byte("a queued job"))
	running, queued := a["task_id"].(string), b["task_id"].(string)
	api.waitTask(running, 10*time.Second, "PROGRESS")
	if st := api.task(queued); st["state"] != "PENDING" {
		t.Fatalf("second task = %v, want PENDING behind the single slot", st)
	}
	at := time.Now()
	code, out := api.do(http.MethodDelete, "/api/v1/tasks/"+running, nil, "")
	if code != 200 || out["status"] != "cancelled" {
		t.Fatalf("cancel running = %d %v", code, out)
	}
	// The worker stops the job: its slot frees and the queued task starts... unless cancelled.
	code, _ = api.do(http.MethodDelete, "/api/v1/tasks/"+queued, nil, "")
	if code != 200 {
		t.Fatalf("cancel queued = %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.streamMsgs(t, "JOBS_HIGH") != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("running job settled %v after DELETE", time.Since(at))
	if n := s.streamMsgs(t, "JOBS_HIGH"); n != 0 {
		t.Fatalf("JOBS_HIGH still holds %d jobs", n)
	}
	for _, id := range []string{running, queued} {
		st := api.task(id)
		if st["state"] != "REVOKED" {
			t.Fatalf("task %s = %v, want REVOKED", id, st)
		}
		code, doc := api.do(http.MethodGet, "/api/v1/documents/"+jsonNum(st["document_id"]), nil, "")
		if code != 200 || doc["status"] != "cancelled" || doc["chunk_count"] != 0.0 {
			t.Fatalf("document of %s = %d %v", id, code, doc)
		}
	}
	if code, _ := api.do(http.MethodDelete, "/api/v1/tasks/"+running, nil, ""); code != http.StatusConflict {
		t.Fatalf("cancel of a finished task = %d, want 409", code)
	}
}

func TestGracefulShutdown(t *testing.T) {
	slow(t)
	s := newStack(t, nil)
	api := s.startAPI(t)
	w := s.startWorker(t, map[string]string{"QUIRE_FAULT_SLOW_JOB": "1500ms", "SHUTDOWN_TIMEOUT": "10s"})
	ids := uploadMany(t, api, 3, func(i int) string { return fmt.Sprintf("g-%d.txt", i) },
		func(i int) []byte { return []byte("finish me before you go") }, nil)
	for _, id := range ids {
		api.waitTask(id, 10*time.Second, "PROGRESS")
	}
	w.stop(syscall.SIGTERM)
	if code := w.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("worker exit code after SIGTERM = %d, want 0", code)
	}
	for _, id := range ids {
		if st := api.task(id); st["state"] != "SUCCESS" {
			t.Fatalf("in-flight task after graceful shutdown = %v, want SUCCESS", st)
		}
	}

	// A job longer than SHUTDOWN_TIMEOUT is handed back and finished by the next worker.
	w = s.startWorker(t, map[string]string{"QUIRE_FAULT_SLOW_JOB": "30s", "SHUTDOWN_TIMEOUT": "500ms"})
	_, up := api.upload("7", "long.txt", []byte("too long to finish"))
	long := up["task_id"].(string)
	api.waitTask(long, 10*time.Second, "PROGRESS")
	w.stop(syscall.SIGTERM)
	if code := w.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("worker exit code = %d, want 0", code)
	}
	if st := api.task(long); st["state"] != "PENDING" {
		t.Fatalf("unfinished task after shutdown = %v, want PENDING (handed back)", st)
	}
	s.startWorker(t, nil)
	api.waitTask(long, 30*time.Second, "SUCCESS")
}

func TestHighPriorityStartsUnderALowFlood(t *testing.T) {
	slow(t)
	s := newStack(t, map[string]string{"LOG_LEVEL": "warn"})
	api := s.startAPI(t)
	const jobDuration = 300 * time.Millisecond
	s.startWorker(t, map[string]string{"QUIRE_FAULT_SLOW_JOB": jobDuration.String(), "WORKER_CONCURRENCY_LOW": "4", "WORKER_CONCURRENCY_HIGH": "2"})
	uploadMany(t, api, 5000, func(i int) string { return "low-" + strconv.Itoa(i) + ".txt" },
		func(i int) []byte { return []byte("a low priority crawl page") }, map[string]string{"priority": "low"})
	if n := s.streamMsgs(t, "JOBS_LOW"); n < 4000 {
		t.Fatalf("only %d low jobs queued; the flood is not there", n)
	}
	at := time.Now()
	_, up := api.upload("7", "urgent.txt", []byte("the user is waiting for this one"))
	id := up["task_id"].(string)
	api.waitTask(id, 10*time.Second, "PROGRESS", "SUCCESS")
	latency := time.Since(at)
	t.Logf("high-priority start latency with %d low jobs queued: %v (job duration %v)", s.streamMsgs(t, "JOBS_LOW"), latency, jobDuration)
	if latency > jobDuration {
		t.Fatalf("high-priority job took %v to start, want within one job duration (%v)", latency, jobDuration)
	}
}

func TestStatusRetention(t *testing.T) {
	slow(t)
	s := newStack(t, map[string]string{"RESULT_TTL": "1s"})
	api := s.startAPI(t)
	// A backlog with no worker: PENDING must outlive RESULT_TTL.
	_, up := api.upload("7", "waiting.txt", []byte("waiting for a worker"))
	waiting := up["task_id"].(string)
	time.Sleep(2500 * time.Millisecond)
	kv, err := s.js.KeyValue(t.Context(), job.TasksBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(t.Context(), waiting); err != nil {
		t.Fatalf("PENDING status expired while queued: %v", err)
	}
	s.startWorker(t, nil)
	api.waitTask(waiting, 10*time.Second, "SUCCESS")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := kv.Get(t.Context(), waiting); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("terminal status still in TASKS 10s after RESULT_TTL=1s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The live status is gone; the API answers from the document record.
	st := api.task(waiting)
	if st["state"] != "SUCCESS" || st["chunk_count"].(float64) < 1 {
		t.Fatalf("task after its status expired = %v", st)
	}
}

func TestExhaustedRetriesDeadLetterThenRetryFromTheAPI(t *testing.T) {
	slow(t)
	s := newStack(t, map[string]string{"MAX_RETRIES": "2", "RETRY_BASE_DELAY": "100ms", "RETRY_MAX_DELAY": "400ms"})
	api := s.startAPI(t)
	w := s.startWorker(t, map[string]string{"QUIRE_FAULT_FAIL_ON_FILENAME": "flaky.txt"})
	_, up := api.upload("7", "flaky.txt", []byte("fails until its dependency is back"))
	id := up["task_id"].(string)
	st := api.waitTask(id, 30*time.Second, "FAILURE")
	if st["attempts"] != 3.0 {
		t.Fatalf("failed task = %v, want 3 attempts (MAX_RETRIES=2)", st)
	}
	code, list := api.do(http.MethodGet, "/api/v1/dlq", nil, "")
	dls, _ := list["dead_letters"].([]any)
	if code != 200 || len(dls) != 1 {
		t.Fatalf("GET /api/v1/dlq = %d %v", code, list)
	}
	dl := dls[0].(map[string]any)
	if dl["task_id"] != id || dl["attempts"] != 3.0 || !strings.Contains(dl["error"].(string), "fault injection") {
		t.Fatalf("dead letter = %v", dl)
	}
	// The dependency is back (a worker without the fault); retry from the dead-letter queue.
	w.stop(syscall.SIGTERM)
	s.startWorker(t, nil)
	code, out := api.do(http.MethodPost, "/api/v1/dlq/"+jsonNum(dl["id"])+"/retry", nil, "")
	if code != http.StatusAccepted {
		t.Fatalf("retry = %d %v", code, out)
	}
	st = api.waitTask(id, 30*time.Second, "SUCCESS")
	if st["attempts"] != 1.0 {
		t.Fatalf("retried task = %v, want attempts reset to 1", st)
	}
	if _, list = api.do(http.MethodGet, "/api/v1/dlq", nil, ""); len(list["dead_letters"].([]any)) != 0 {
		t.Fatalf("dead letters after a successful retry: %v", list)
	}
}
