package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/metrics"
)

// After Invalidate, a pause shows at once instead of after the cache TTL.
func TestQueueCollectorInvalidate(t *testing.T) {
	t.Parallel()
	_, js := runJetStream(t)
	createQueues(t, js, job.Priorities...)
	qc, _ := newQueueCollector(t, js, metrics.QueueCollectorConfig{CacheTTL: time.Hour})
	paused := func() bool {
		for _, q := range qc.Read(context.Background()).Queues {
			if q.Priority == job.PriorityLow {
				return q.Paused
			}
		}
		t.Fatal("reading has no low queue")
		return false
	}
	if paused() {
		t.Fatal("low paused before any pause")
	}
	if _, err := js.PauseConsumer(t.Context(), job.PriorityLow.Stream(), job.ConsumerName, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if paused() {
		t.Fatal("the cached reading changed within its TTL")
	}
	qc.Invalidate()
	if !paused() {
		t.Error("after Invalidate the reading still shows low running, want paused")
	}
}
