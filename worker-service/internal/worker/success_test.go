package worker_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/taskstatus"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// A job that finishes while the broker is away (longer than one status write may take) has
// its SUCCESS recorded once the broker is back, without being run a second time.
func TestSuccessIsRecordedAfterABrokerOutageWithoutRunningTheJobAgain(t *testing.T) {
	dir := t.TempDir()
	s := natstest.RunAt(t, dir, -1)
	port := s.Addr().(*net.TCPAddr).Port
	nc, js := natstest.Connect(t, s)
	top, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{UpdateConsumers: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{nc: nc, js: js, statuses: taskstatus.New(top.Tasks, js, time.Hour), pub: jobqueue.NewPublisher(js),
		failures: &recorder{reasons: map[string]string{}}}
	h.enqueue(t, "outage", job.PriorityHigh)

	var runs atomic.Int32
	running, release := make(chan struct{}), make(chan struct{})
	h.start(t, worker.Config{MaxRetries: 3}, worker.HandlerFunc(func(ctx context.Context, j *job.Job) error {
		if runs.Add(1) == 1 {
			close(running)
			<-release
		}
		return nil
	}))
	<-running
	s.Shutdown()
	s.WaitForShutdown()
	close(release) // the results are "committed"; the SUCCESS write now fails
	time.Sleep(6 * time.Second)
	natstest.RunAt(t, dir, port)

	st := h.waitState(t, "outage", job.StateSuccess, 30*time.Second)
	if n := runs.Load(); n != 1 || st.Attempts != 1 {
		t.Fatalf("job ran %d times, status attempts %d; want 1 and 1 (the SUCCESS write is retried, not the job)", n, st.Attempts)
	}
}
