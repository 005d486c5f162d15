package metrics_test

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quirehq/quire/shared/metrics"
)

// A worker reports each attempt with JobStarted and JobFinished; the outcome decides which
// counters move.
func ExampleWorker() {
	reg := prometheus.NewRegistry()
	w, err := metrics.NewWorker(reg)
	if err != nil {
		panic(err)
	}

	w.JobStarted("high", "document")
	w.ObserveStage(metrics.StageExtract, 120*time.Millisecond)
	w.JobFinished("high", "document", metrics.OutcomeRetried, 2*time.Second)

	fmt.Println("failed:", testutil.ToFloat64(w.JobsFailed.WithLabelValues("high", "document")))
	fmt.Println("retried:", testutil.ToFloat64(w.JobsRetried.WithLabelValues("high", "document")))
	fmt.Println("in flight:", testutil.ToFloat64(w.JobsInFlight.WithLabelValues("high")))
	// Output:
	// failed: 1
	// retried: 1
	// in flight: 0
}
