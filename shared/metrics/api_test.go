package metrics_test

import (
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quirehq/quire/shared/metrics"
)

func TestObserveHTTP(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	a, err := metrics.NewAPI(reg)
	if err != nil {
		t.Fatal(err)
	}
	a.ObserveHTTP("/api/v1/tasks/:task_id", "GET", 200, 20*time.Millisecond)
	a.ObserveHTTP("/api/v1/tasks/:task_id", "GET", 404, 5*time.Millisecond)
	a.ObserveHTTP("/api/v1/tasks/:task_id", "GET", 200, 30*time.Millisecond)
	a.ObserveHTTP("/api/v1/documents/agent/:agent_id/upload", "POST", 202, 400*time.Millisecond)
	a.ObserveHTTP("", "GET", 404, time.Millisecond)

	mfs := scrape(t, reg)
	wantRequests := map[string]float64{
		"method=GET,route=/api/v1/tasks/:task_id,status=200":                    2,
		"method=GET,route=/api/v1/tasks/:task_id,status=404":                    1,
		"method=POST,route=/api/v1/documents/agent/:agent_id/upload,status=202": 1,
		"method=GET,route=unmatched,status=404":                                 1,
	}
	if got := values(mfs["quire_http_requests_total"]); !maps.Equal(got, wantRequests) {
		t.Errorf("quire_http_requests_total = %v, want %v", got, wantRequests)
	}

	dur := mfs["quire_http_request_duration_seconds"]
	if dur == nil {
		t.Fatal("scrape has no quire_http_request_duration_seconds")
	}
	got := map[string]uint64{}
	for _, m := range dur.GetMetric() {
		got[labelKey(m)] = m.GetHistogram().GetSampleCount()
	}
	wantCounts := map[string]uint64{
		"method=GET,route=/api/v1/tasks/:task_id":                    3,
		"method=POST,route=/api/v1/documents/agent/:agent_id/upload": 1,
		"method=GET,route=unmatched":                                 1,
	}
	if !maps.Equal(got, wantCounts) {
		t.Errorf("quire_http_request_duration_seconds counts = %v, want %v", got, wantCounts)
	}
	if s := histogramSum(t, reg, "quire_http_request_duration_seconds", map[string]string{"route": "/api/v1/tasks/:task_id", "method": "GET"}); s < 0.0549 || s > 0.0551 {
		t.Errorf("GET /api/v1/tasks/:task_id duration sum = %v, want 0.055", s)
	}

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}
