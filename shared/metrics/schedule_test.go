package metrics_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quirehq/quire/shared/metrics"
)

func TestSchedulesCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := metrics.NewSchedules(reg)
	if err != nil {
		t.Fatal(err)
	}
	s.Fires.Add(3)
	s.Skipped.Inc()
	want := `
# HELP quire_schedule_fires_total Schedule fires turned into a task.
# TYPE quire_schedule_fires_total counter
quire_schedule_fires_total 3
# HELP quire_schedule_skipped_total Schedule fires skipped because the previous run was still queued or running (overlap skip).
# TYPE quire_schedule_skipped_total counter
quire_schedule_skipped_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.NewSchedules(reg); err == nil {
		t.Fatal("registering the schedule collectors twice succeeded")
	}
}
