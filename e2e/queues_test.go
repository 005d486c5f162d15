package e2e

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

const adminToken = "e2e-admin-token-0123456789"

// worker is a worker-service process and the address of its /metrics, /healthz and /readyz.
type worker struct {
	svc  *service
	base string
}

func (s *stack) startWorkerAt(t *testing.T) *worker {
	t.Helper()
	addr := freeAddr(t)
	env := map[string]string{"METRICS_ADDR": addr}
	for k, v := range s.env {
		env[k] = v
	}
	svc := start(t, "worker-service", env)
	waitHTTP(t, "http://"+addr+"/readyz", svc)
	return &worker{svc: svc, base: "http://" + addr}
}

// get returns the status and body of GET path on the worker's metrics address.
func (w *worker) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(w.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// waitMetric polls the worker's /metrics until it has the line sample (e.g.
// `quire_queue_paused{queue="high"} 1`).
func (w *worker) waitMetric(t *testing.T, sample string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := w.get(t, "/metrics")
		if code == http.StatusOK && strings.Contains("\n"+body, "\n"+sample+"\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker /metrics has no %q after %v", sample, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func highQueue(t *testing.T, admin *client) map[string]any {
	t.Helper()
	code, body := admin.do(http.MethodGet, "/api/v1/queues", nil, "")
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/queues = %d %v", code, body)
	}
	for _, q := range body["queues"].([]any) {
		if m := q.(map[string]any); m["priority"] == "high" {
			return m
		}
	}
	t.Fatalf("no high queue in %v", body)
	return nil
}

// An operator pauses the high queue: running workers stay up and ready but get no jobs from
// it, a restarted worker (which re-applies the consumer settings) keeps it paused, and on
// resume the queued jobs complete.
func TestPauseHoldsJobsThroughAWorkerRestartUntilResumed(t *testing.T) {
	slow(t)
	s := newStack(t, map[string]string{"API_ADMIN_TOKEN": adminToken})
	api := s.startAPI(t)
	admin := &client{t: t, base: api.base, token: adminToken}
	w := s.startWorkerAt(t)

	code, body := admin.do(http.MethodPost, "/api/v1/queues/high/pause", nil, "")
	if code != http.StatusOK || body["paused"] != true {
		t.Fatalf("pause high = %d %v", code, body)
	}
	var tasks []string
	for i := range 3 {
		code, body := api.upload("7", "held.txt", []byte(strings.Repeat("held while paused ", i+1)+"\n"))
		if code != http.StatusAccepted {
			t.Fatalf("upload %d = %d %v", i, code, body)
		}
		tasks = append(tasks, body["task_id"].(string))
	}
	// The worker keeps pulling with free slots; nothing is delivered.
	time.Sleep(3 * time.Second)
	for _, id := range tasks {
		if st := api.task(id); st["state"] != "PENDING" {
			t.Fatalf("task %s on a paused queue is %v", id, st)
		}
	}
	if q := highQueue(t, admin); q["paused"] != true || q["pending"] != 3.0 || q["in_flight"] != 0.0 {
		t.Fatalf("high while paused = %v, want paused with 3 pending", q)
	}
	if code, body := w.get(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("worker /readyz while its queue is paused = %d %q, want 200", code, body)
	}
	w.waitMetric(t, `quire_queue_paused{queue="high"} 1`, 10*time.Second)
	w.waitMetric(t, `quire_jobs_started_total{kind="document",queue="high"} 0`, time.Second)

	// A restarted worker runs Ensure with UpdateConsumers, and the queue stays paused.
	w.svc.stop(syscall.SIGTERM)
	w = s.startWorkerAt(t)
	time.Sleep(3 * time.Second)
	for _, id := range tasks {
		if st := api.task(id); st["state"] != "PENDING" {
			t.Fatalf("task %s ran after a worker restart although high is paused: %v", id, st)
		}
	}
	if q := highQueue(t, admin); q["paused"] != true || q["pending"] != 3.0 {
		t.Fatalf("high after a worker restart = %v, want still paused with 3 pending", q)
	}

	code, body = admin.do(http.MethodPost, "/api/v1/queues/high/resume", nil, "")
	if code != http.StatusOK || body["paused"] != false {
		t.Fatalf("resume high = %d %v", code, body)
	}
	for _, id := range tasks {
		api.waitTask(id, 60*time.Second, "SUCCESS")
	}
	if q := highQueue(t, admin); q["paused"] != false || q["pending"] != 0.0 {
		t.Errorf("high after resume = %v, want running and drained", q)
	}
	w.waitMetric(t, `quire_jobs_succeeded_total{kind="document",queue="high"} 3`, 10*time.Second)
	w.waitMetric(t, `quire_queue_paused{queue="high"} 0`, 10*time.Second)
}
