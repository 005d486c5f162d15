package batch_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/batch"
)

// recorder is a write function that keeps every batch it was given.
type recorder struct {
	mu      sync.Mutex
	batches [][]int64
	err     error
}

func (r *recorder) write(_ context.Context, ids []int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, slices.Clone(ids))
	return r.err
}

func (r *recorder) all() (batches int, ids []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.batches {
		ids = append(ids, b...)
	}
	slices.Sort(ids)
	return len(r.batches), ids
}

// Ids added at once from many goroutines are all written, each once, in far fewer writes.
func TestIDsAreWrittenOnceInBatches(t *testing.T) {
	r := &recorder{}
	b := batch.NewIDs(r.write, slog.New(slog.DiscardHandler), "mark", 20*time.Millisecond)
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Go(func() {
			for i := range 100 {
				b.Add(int64(g*100 + i))
			}
		})
	}
	wg.Wait()
	b.Close(t.Context())
	n, ids := r.all()
	if len(ids) != 1000 {
		t.Fatalf("%d ids written, want 1000", len(ids))
	}
	for i, id := range ids {
		if id != int64(i) {
			t.Fatalf("ids written: %v…, want each of 0..999 once", ids[:i+1])
		}
	}
	if n < 1 || n > 10 {
		t.Errorf("%d writes for 1000 ids added within one gathering period, want a few", n)
	}
}

// An id added after a batch was written starts a new batch; Flush writes what is pending
// without waiting for the gathering period.
func TestIDsKeepBatchingAfterAWrite(t *testing.T) {
	r := &recorder{}
	b := batch.NewIDs(r.write, slog.New(slog.DiscardHandler), "mark", 200*time.Millisecond)
	b.Add(1)
	b.Flush(t.Context())
	if _, ids := r.all(); !slices.Equal(ids, []int64{1}) {
		t.Fatalf("after Flush: %v written, want [1]", ids)
	}
	b.Add(2)
	b.Flush(t.Context())
	if n, ids := r.all(); n != 2 || !slices.Equal(ids, []int64{1, 2}) {
		t.Fatalf("after a second Flush: %d writes of %v, want 2 writes of [1 2]", n, ids)
	}
	b.Close(t.Context())
	if n, _ := r.all(); n != 2 {
		t.Errorf("%d writes after Close with nothing pending, want 2", n)
	}
}

// A failed write is logged with what the batch is for and its size.
func TestIDsLogAFailedWrite(t *testing.T) {
	var logs bytes.Buffer
	r := &recorder{err: errors.New("database unavailable")}
	b := batch.NewIDs(r.write, slog.New(slog.NewTextHandler(&logs, nil)), "mark processing", time.Millisecond)
	b.Add(7)
	b.Add(8)
	b.Close(t.Context())
	if got := logs.String(); !bytes.Contains([]byte(got), []byte(`msg="mark processing" items=2 err="database unavailable"`)) {
		t.Errorf("log %q, want the failed write of 2 ids", got)
	}
}
