package api_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/quiretest"
)

const tokenAdmin = "admin-token-0123456789"

// callAuth sends a request with the Authorization header auth (none if empty).
func (e *env) callAuth(t *testing.T, method, path, auth string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return do(t, req)
}

func (e *env) queues(t *testing.T) map[string]any {
	t.Helper()
	resp, body := e.callAuth(t, http.MethodGet, "/api/v1/queues", "Bearer "+tokenAdmin)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/queues = %d %v", resp.StatusCode, body)
	}
	return body
}

// queue returns the entry of priority p in a GET /api/v1/queues body.
func queue(t *testing.T, body map[string]any, p job.Priority) map[string]any {
	t.Helper()
	qs, _ := body["queues"].([]any)
	for _, q := range qs {
		if m, _ := q.(map[string]any); m["priority"] == string(p) {
			return m
		}
	}
	t.Fatalf("no queue %s in %v", p, body)
	return nil
}

func TestQueueRoutesNeedTheAdminToken(t *testing.T) {
	e := newEnv(t, 0)
	routes := []struct{ method, path string }{
		{http.MethodGet, "/api/v1/queues"},
		{http.MethodPost, "/api/v1/queues/low/pause"},
		{http.MethodPost, "/api/v1/queues/low/resume"},
	}
	callers := []struct {
		name, auth string
		want       int
		code       string
	}{
		{"no token", "", http.StatusUnauthorized, "unauthorized"},
		{"another scheme", "Basic " + tokenAdmin, http.StatusUnauthorized, "unauthorized"},
		{"unknown token", "Bearer not-a-token", http.StatusUnauthorized, "unauthorized"},
		{"admin token with a suffix", "Bearer " + tokenAdmin + "x", http.StatusUnauthorized, "unauthorized"},
		{"tenant token", "Bearer " + tokenAcme, http.StatusForbidden, "forbidden"},
		{"admin token", "Bearer " + tokenAdmin, http.StatusOK, ""},
	}
	for _, r := range routes {
		for _, c := range callers {
			resp, body := e.callAuth(t, r.method, r.path, c.auth)
			if resp.StatusCode != c.want {
				t.Errorf("%s %s with %s = %d %v, want %d", r.method, r.path, c.name, resp.StatusCode, body, c.want)
				continue
			}
			if c.code != "" {
				if got, _ := body["error"].(map[string]any); got["code"] != c.code {
					t.Errorf("%s %s with %s: body %v, want error code %s", r.method, r.path, c.name, body, c.code)
				}
			}
			if hasChallenge := resp.Header.Get("WWW-Authenticate") != ""; hasChallenge != (c.want == http.StatusUnauthorized) {
				t.Errorf("%s %s with %s: WWW-Authenticate %q", r.method, r.path, c.name, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
	// The admin token is not a tenant token.
	if resp, _ := e.callAuth(t, http.MethodGet, "/api/v1/dlq", "Bearer "+tokenAdmin); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/dlq with the admin token = %d, want 401", resp.StatusCode)
	}
}

func TestQueuesReportsDepthPerPriority(t *testing.T) {
	e := newEnv(t, 0)
	for i, p := range []string{"high", "high", "low"} {
		resp, body := e.upload(t, tokenAcme, "7", "n.txt", []byte("note "+strings.Repeat("x", i)+"\n"), map[string]string{"priority": p})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("upload = %d %v", resp.StatusCode, body)
		}
	}
	if _, err := e.js.Publish(t.Context(), job.DLQSubject(job.PriorityLow, job.KindDocument), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	// A consumer's num_pending follows the stream a moment after a publish; the first reading
	// (cached afterwards) must see the settled counts.
	quiretest.WaitPending(t, e.js, job.PriorityHigh, 2, 5*time.Second)
	quiretest.WaitPending(t, e.js, job.PriorityLow, 1, 5*time.Second)

	body := e.queues(t)
	want := map[job.Priority]float64{job.PriorityHigh: 2, job.PriorityMedium: 0, job.PriorityLow: 1}
	var order []string
	for _, q := range body["queues"].([]any) {
		order = append(order, q.(map[string]any)["priority"].(string))
	}
	if !slices.Equal(order, []string{"high", "medium", "low"}) {
		t.Errorf("queues in order %v, want high, medium, low", order)
	}
	for p, pending := range want {
		q := queue(t, body, p)
		if q["pending"] != pending || q["in_flight"] != 0.0 || q["redelivered"] != 0.0 || q["consumers"] != 0.0 || q["paused"] != false {
			t.Errorf("queue %s = %v, want %v pending, nothing in flight, no consumers, not paused", p, q, pending)
		}
		if q["stream"] != p.Stream() {
			t.Errorf("queue %s stream = %v", p, q["stream"])
		}
		age, _ := q["oldest_pending_age_seconds"].(float64)
		if (pending > 0) != (age > 0) || age > 60 {
			t.Errorf("queue %s: oldest_pending_age_seconds = %v with %v pending", p, age, pending)
		}
	}
	if body["dead_letters"] != 1.0 {
		t.Errorf("dead_letters = %v, want 1", body["dead_letters"])
	}
	for p, want := range map[job.Priority]float64{job.PriorityHigh: 0, job.PriorityMedium: 0, job.PriorityLow: 1} {
		if got := queue(t, body, p)["dead_letters"]; got != want {
			t.Errorf("queue %s dead_letters = %v, want %v", p, got, want)
		}
	}
	if _, ok := body["unavailable"]; ok {
		t.Errorf("unavailable = %v, want absent", body["unavailable"])
	}
	if at, err := time.Parse(time.RFC3339Nano, body["read_at"].(string)); err != nil || time.Since(at) > time.Minute {
		t.Errorf("read_at = %v (%v)", body["read_at"], err)
	}
}

func TestPauseAndResumeAQueue(t *testing.T) {
	e := newEnv(t, 0)
	if q := queue(t, e.queues(t), job.PriorityLow); q["paused"] != false {
		t.Fatalf("low before pause = %v", q)
	}
	resp, body := e.callAuth(t, http.MethodPost, "/api/v1/queues/low/pause", "Bearer "+tokenAdmin)
	if resp.StatusCode != http.StatusOK || body["priority"] != "low" || body["paused"] != true || body["paused_until"] != "2200-01-01T00:00:00Z" {
		t.Fatalf("pause = %d %v", resp.StatusCode, body)
	}
	// Visible at once, although the previous reading is still within its cache time.
	after := e.queues(t)
	for _, p := range job.Priorities {
		if got, want := queue(t, after, p)["paused"], p == job.PriorityLow; got != want {
			t.Errorf("queue %s paused = %v after pausing low, want %v", p, got, want)
		}
	}
	cons, err := e.js.Consumer(t.Context(), "JOBS_LOW", job.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	if !cons.CachedInfo().Paused {
		t.Fatalf("consumer JOBS_LOW/workers not paused: %+v", cons.CachedInfo())
	}
	// Jobs are still accepted, and not delivered to a worker asking for them.
	if resp, body := e.upload(t, tokenAcme, "7", "late.txt", []byte("queued while paused\n"), map[string]string{"priority": "low"}); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload while paused = %d %v", resp.StatusCode, body)
	}
	if n := fetch(t, cons, time.Second); n != 0 {
		t.Fatalf("a paused queue delivered %d jobs", n)
	}
	// Pausing again is harmless; a bad priority is a client error.
	if resp, body := e.callAuth(t, http.MethodPost, "/api/v1/queues/low/pause", "Bearer "+tokenAdmin); resp.StatusCode != http.StatusOK {
		t.Fatalf("second pause = %d %v", resp.StatusCode, body)
	}
	if resp, body := e.callAuth(t, http.MethodPost, "/api/v1/queues/urgent/pause", "Bearer "+tokenAdmin); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("pause of priority urgent = %d %v, want 400", resp.StatusCode, body)
	}

	resp, body = e.callAuth(t, http.MethodPost, "/api/v1/queues/low/resume", "Bearer "+tokenAdmin)
	if resp.StatusCode != http.StatusOK || body["paused"] != false {
		t.Fatalf("resume = %d %v", resp.StatusCode, body)
	}
	if _, ok := body["paused_until"]; ok {
		t.Errorf("resume answered paused_until %v", body["paused_until"])
	}
	if q := queue(t, e.queues(t), job.PriorityLow); q["paused"] != false || q["pending"] != 1.0 {
		t.Errorf("low after resume = %v, want not paused with the 1 job pending", q)
	}
	if n := fetch(t, cons, 5*time.Second); n != 1 {
		t.Fatalf("the resumed queue delivered %d jobs, want 1", n)
	}
}

// fetch pulls from cons for up to wait, as a worker with free slots does, acknowledges what it
// is given and returns how many jobs that was.
func fetch(t *testing.T, cons jetstream.Consumer, wait time.Duration) int {
	t.Helper()
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for msg := range batch.Messages() {
		n++
		_ = msg.Ack()
	}
	return n
}

func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t, 0)
	if resp, _ := e.get(t, tokenAcme, "/api/v1/tasks/no-such-task"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("task lookup = %d", resp.StatusCode)
	}
	for range 2 {
		if resp, _ := e.callAuth(t, http.MethodGet, "/healthz", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz = %d", resp.StatusCode)
		}
	}
	if resp, _ := e.callAuth(t, http.MethodGet, "/no/such/route/42", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown route = %d", resp.StatusCode)
	}

	// No token needed, like /healthz.
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics = %d %q", resp.StatusCode, raw)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, labels string
		value        float64
	}{
		{"quire_http_requests_total", "method=GET,route=/api/v1/tasks/:task_id,status=404", 1},
		{"quire_http_requests_total", "method=GET,route=/healthz,status=200", 2},
		{"quire_http_requests_total", "method=GET,route=unmatched,status=404", 1},
		{"quire_http_request_duration_seconds", "method=GET,route=/api/v1/tasks/:task_id", 1},
		{"quire_queue_pending", "queue=high", 0},
		{"quire_queue_paused", "queue=low", 0},
		{"quire_dlq_messages", "", 0},
		{"quire_queue_stats_up", "", 1},
	}
	for _, w := range want {
		if got, ok := quiretest.MetricValue(mfs, w.name, w.labels); !ok || got != w.value {
			t.Errorf("%s{%s} = %v (present %v), want %v", w.name, w.labels, got, ok, w.value)
		}
	}
	if mfs["go_goroutines"] == nil || mfs["process_cpu_seconds_total"] == nil {
		t.Error("/metrics lacks the Go runtime or process metrics")
	}
}
