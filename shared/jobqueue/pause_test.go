package jobqueue_test

import (
	"testing"
	"time"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/natstest"
)

// An operator's pause (POST /api/v1/queues/{priority}/pause) must survive a worker restart,
// whose Ensure updates the consumers; so must a resume.
func TestEnsureKeepsAPausedConsumerPaused(t *testing.T) {
	s := natstest.Run(t)
	_, js := natstest.Connect(t, s)
	cfg := jobqueue.Config{AckWait: 20 * time.Second, UpdateConsumers: true}
	if _, err := jobqueue.Ensure(t.Context(), js, cfg); err != nil {
		t.Fatal(err)
	}
	until := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	if _, err := js.PauseConsumer(t.Context(), "JOBS_LOW", job.ConsumerName, until); err != nil {
		t.Fatal(err)
	}

	// A worker restarts with a changed AckWait; then the API starts.
	cfg.AckWait = 40 * time.Second
	if _, err := jobqueue.Ensure(t.Context(), js, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range job.Priorities {
		c, err := js.Consumer(t.Context(), p.Stream(), job.ConsumerName)
		if err != nil {
			t.Fatal(err)
		}
		info := c.CachedInfo()
		if info.Config.AckWait != 40*time.Second {
			t.Errorf("%s: AckWait = %v, want the worker's update to 40s", p, info.Config.AckWait)
		}
		wantPaused := p == job.PriorityLow
		if info.Paused != wantPaused {
			t.Errorf("%s: paused = %v after Ensure, want %v", p, info.Paused, wantPaused)
		}
		if wantPaused && (info.Config.PauseUntil == nil || !info.Config.PauseUntil.Equal(until)) {
			t.Errorf("%s: PauseUntil = %v, want %v", p, info.Config.PauseUntil, until)
		}
	}

	// Resumed, it stays resumed through the next restart.
	if _, err := js.ResumeConsumer(t.Context(), "JOBS_LOW", job.ConsumerName); err != nil {
		t.Fatal(err)
	}
	if _, err := jobqueue.Ensure(t.Context(), js, cfg); err != nil {
		t.Fatal(err)
	}
	c, err := js.Consumer(t.Context(), "JOBS_LOW", job.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	if c.CachedInfo().Paused {
		t.Errorf("JOBS_LOW paused again by Ensure after a resume")
	}
}
