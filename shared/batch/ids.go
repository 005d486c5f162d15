// Package batch gathers writes that may lag a little behind what they record into one write
// per batch, such as marks on documents rows: one UPDATE of many ids instead of one per id.
package batch

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// IDs collects ids and hands them to a write function in batches: a batch gathers for a short
// while after its first id, then is written while the next one gathers. Add never waits for a
// write. A failed write is logged, not retried: use it for what a lagging or lost write cannot
// make wrong (the caller's own recovery covers it).
type IDs struct {
	write func(ctx context.Context, ids []int64) error
	log   *slog.Logger
	what  string
	// gather is how long a batch collects ids before it is written.
	gather time.Duration

	mu      sync.Mutex
	pending []int64
	running bool // a writer goroutine is gathering or writing
	// writing is held while a batch is written, so that Flush can wait for it.
	writing sync.Mutex
	done    sync.WaitGroup
}

// NewIDs returns an IDs that writes its batches with write, each collected for gather; what
// names the write in its log lines.
func NewIDs(write func(ctx context.Context, ids []int64) error, log *slog.Logger, what string, gather time.Duration) *IDs {
	return &IDs{write: write, log: log, what: what, gather: gather}
}

// Add queues id; a writer goroutine runs while ids are pending.
func (b *IDs) Add(id int64) {
	b.mu.Lock()
	b.pending = append(b.pending, id)
	start := !b.running
	b.running = true
	if start {
		b.done.Add(1)
	}
	b.mu.Unlock()
	if start {
		go b.run()
	}
}

func (b *IDs) run() {
	defer b.done.Done()
	for {
		time.Sleep(b.gather)
		b.writing.Lock()
		ids := b.take(true)
		if len(ids) == 0 {
			b.writing.Unlock()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		b.writeBatch(ctx, ids)
		cancel()
		b.writing.Unlock()
	}
}

// take returns the pending ids; with last, a writer that finds none stops running.
func (b *IDs) take(last bool) []int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := b.pending
	b.pending = nil
	if len(ids) == 0 && last {
		b.running = false
	}
	return ids
}

func (b *IDs) writeBatch(ctx context.Context, ids []int64) {
	if err := b.write(ctx, ids); err != nil {
		b.log.Warn(b.what, "ids", len(ids), "err", err)
	}
}

// Flush writes every id queued before it was called, waiting for a batch being written.
func (b *IDs) Flush(ctx context.Context) {
	b.writing.Lock()
	defer b.writing.Unlock()
	if ids := b.take(false); len(ids) > 0 {
		b.writeBatch(ctx, ids)
	}
}

// Close flushes the pending ids and waits for the writer goroutine to end.
func (b *IDs) Close(ctx context.Context) {
	b.Flush(ctx)
	b.done.Wait()
}
