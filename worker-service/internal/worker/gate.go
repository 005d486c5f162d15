package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
)

// admit takes weight units of the run gate, extending the delivery's ack deadline while it
// waits (a suspect run may wait for a long job to finish). It fails only when ctx is done.
func (w *Worker) admit(ctx context.Context, msg jetstream.Msg, p job.Priority, weight int64) error {
	if w.gate.TryAcquire(weight) {
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go keepAlive(wctx, msg, w.heartbeatEvery(p))
	if err := w.gate.Acquire(wctx, weight); err != nil {
		return fmt.Errorf("worker: wait for a run slot: %w", err)
	}
	return nil
}

// keepAlive extends msg's ack deadline every interval until ctx is done.
func keepAlive(ctx context.Context, msg jetstream.Msg, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = msg.InProgress()
		}
	}
}
