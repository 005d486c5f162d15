package api

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/quirehq/quire/shared/docstore"
)

// publishMarks records, in batches, that the jobs of uploads were acknowledged by their job
// stream (documents.published_at, the outbox mark). An upload does not wait for its mark: the
// job is already stored, and a row left unmarked (the API stopped before a batch was written)
// is only re-published by the sweeper, which the job stream de-duplicates by task id. One
// UPDATE per batch instead of one per upload.
type publishMarks struct {
	docs *docstore.Store
	log  *slog.Logger
	// gather is how long a batch collects marks before it is written.
	gather time.Duration

	mu      sync.Mutex
	pending []int64
	running bool // a writer goroutine is gathering or writing
	// writing is held while a batch is written, so that flush can wait for it.
	writing sync.Mutex
	done    sync.WaitGroup
}

func newPublishMarks(docs *docstore.Store, log *slog.Logger, gather time.Duration) *publishMarks {
	return &publishMarks{docs: docs, log: log, gather: gather}
}

// add queues the mark of document id; a writer goroutine runs while marks are pending.
func (m *publishMarks) add(id int64) {
	m.mu.Lock()
	m.pending = append(m.pending, id)
	start := !m.running
	m.running = true
	if start {
		m.done.Add(1)
	}
	m.mu.Unlock()
	if start {
		go m.run()
	}
}

func (m *publishMarks) run() {
	defer m.done.Done()
	for {
		time.Sleep(m.gather)
		m.writing.Lock()
		ids := m.take(true)
		if len(ids) == 0 {
			m.writing.Unlock()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m.write(ctx, ids)
		cancel()
		m.writing.Unlock()
	}
}

// take returns the pending marks; with last, a writer that finds none stops running.
func (m *publishMarks) take(last bool) []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := m.pending
	m.pending = nil
	if len(ids) == 0 && last {
		m.running = false
	}
	return ids
}

func (m *publishMarks) write(ctx context.Context, ids []int64) {
	if err := m.docs.MarkPublishedMany(ctx, ids); err != nil {
		// The jobs are queued; the sweeper's re-publish is de-duplicated by task id.
		m.log.Warn("outbox: mark published", "documents", len(ids), "err", err)
	}
}

// flush writes every mark queued before it was called, waiting for a batch being written.
func (m *publishMarks) flush(ctx context.Context) {
	m.writing.Lock()
	defer m.writing.Unlock()
	if ids := m.take(false); len(ids) > 0 {
		m.write(ctx, ids)
	}
}

// close flushes the pending marks and waits for the writer goroutine to end.
func (m *publishMarks) close(ctx context.Context) {
	m.flush(ctx)
	m.done.Wait()
}
