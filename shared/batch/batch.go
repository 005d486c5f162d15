// Package batch gathers writes that may lag a little behind what they record into one write
// per batch, such as marks on documents rows (one UPDATE of many ids instead of one per id)
// or the removal of processed uploads.
package batch

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Batcher collects items and hands them to a write function in batches: a batch gathers for a
// short while after its first item, then is written while the next one gathers. Add never
// waits for a write. A failed write is logged, not retried: use it for what a lagging or lost
// write cannot make wrong (the caller's own recovery covers it).
type Batcher[T any] struct {
	write func(ctx context.Context, items []T) error
	log   *slog.Logger
	what  string
	// gather is how long a batch collects items before it is written.
	gather time.Duration

	mu      sync.Mutex
	pending []T
	running bool // a writer goroutine is gathering or writing
	// writing is held while a batch is written, so that Flush can wait for it.
	writing sync.Mutex
	done    sync.WaitGroup
}

// New returns a Batcher that writes its batches with write, each collected for gather; what
// names the write in its log lines.
func New[T any](write func(ctx context.Context, items []T) error, log *slog.Logger, what string, gather time.Duration) *Batcher[T] {
	return &Batcher[T]{write: write, log: log, what: what, gather: gather}
}

// IDs batches ids of rows.
type IDs = Batcher[int64]

// NewIDs is New for ids of rows.
func NewIDs(write func(ctx context.Context, ids []int64) error, log *slog.Logger, what string, gather time.Duration) *IDs {
	return New(write, log, what, gather)
}

// Add queues item; a writer goroutine runs while items are pending.
func (b *Batcher[T]) Add(item T) {
	b.mu.Lock()
	b.pending = append(b.pending, item)
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

func (b *Batcher[T]) run() {
	defer b.done.Done()
	for {
		time.Sleep(b.gather)
		b.writing.Lock()
		items := b.take(true)
		if len(items) == 0 {
			b.writing.Unlock()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		b.writeBatch(ctx, items)
		cancel()
		b.writing.Unlock()
	}
}

// take returns the pending items; with last, a writer that finds none stops running.
func (b *Batcher[T]) take(last bool) []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	items := b.pending
	b.pending = nil
	if len(items) == 0 && last {
		b.running = false
	}
	return items
}

func (b *Batcher[T]) writeBatch(ctx context.Context, items []T) {
	if err := b.write(ctx, items); err != nil {
		b.log.Warn(b.what, "items", len(items), "err", err)
	}
}

// Flush writes every item queued before it was called, waiting for a batch being written.
func (b *Batcher[T]) Flush(ctx context.Context) {
	b.writing.Lock()
	defer b.writing.Unlock()
	if items := b.take(false); len(items) > 0 {
		b.writeBatch(ctx, items)
	}
}

// Close flushes the pending items and waits for the writer goroutine to end.
func (b *Batcher[T]) Close(ctx context.Context) {
	b.Flush(ctx)
	b.done.Wait()
}
