package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
)

// pull keeps one pull request open for as many jobs as the queue has free slots, so no job
// waits in a local buffer while its AckWait clock runs.
func (w *Worker) pull(ctx context.Context, p job.Priority, c jetstream.Consumer, slots int) {
	free := make(chan struct{}, slots)
	for range slots {
		free <- struct{}{}
	}
	log := w.log.With("queue", p)
	errDelay := 100 * time.Millisecond
	for ctx.Err() == nil {
		// Take one slot (waiting for it), then every other free one.
		select {
		case <-ctx.Done():
			return
		case <-free:
		}
		n := 1
	take:
		for n < slots {
			select {
			case <-free:
				n++
			default:
				break take
			}
		}
		batch, err := c.Fetch(n, jetstream.FetchMaxWait(w.cfg.FetchExpiry))
		if err != nil {
			for range n {
				free <- struct{}{}
			}
			log.Warn("pull failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(errDelay):
			}
			errDelay = min(2*errDelay, 5*time.Second)
			continue
		}
		errDelay = 100 * time.Millisecond
		got := 0
		for msg := range batch.Messages() {
			got++
			if ctx.Err() != nil {
				// Arrived after the stop request: hand it straight back.
				_ = msg.Nak()
				free <- struct{}{}
				continue
			}
			w.jobs.Add(1)
			go func() {
				release := sync.OnceFunc(func() { free <- struct{}{} })
				defer release()
				defer w.jobs.Done()
				w.process(ctx, p, msg, release)
			}()
		}
		for range n - got {
			free <- struct{}{}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			log.Warn("pull ended with error", "err", err)
		}
	}
}
