package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quirehq/quire/shared/job"
)

// statusRecord is a task status held in memory, written the way a Tracker writes the KV
// record (the update function sees the current status and may refuse), remembering when each
// write happened. The reporter's timing is under test, not the KV store.
type statusRecord struct {
	mu     sync.Mutex
	st     job.Status
	writes []recordedWrite
	// failures is how many writes fail (the store unreachable) before they succeed.
	failures int
	tries    []time.Time
}

var errUnreachable = errors.New("status store unreachable")

type recordedWrite struct {
	at      time.Time
	current int
	message string
}

func (r *statusRecord) Update(_ context.Context, fn func(st *job.Status) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries = append(r.tries, time.Now())
	if r.failures > 0 {
		r.failures--
		return errUnreachable
	}
	next := r.st
	if err := fn(&next); err != nil {
		return err
	}
	r.st = next
	r.writes = append(r.writes, recordedWrite{time.Now(), next.Current, next.Status})
	return nil
}

func (r *statusRecord) written() []recordedWrite {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedWrite(nil), r.writes...)
}

func TestReporterCoalescesProgressWithinAnInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 250 * time.Millisecond
		rec := &statusRecord{st: job.Status{State: job.StatePending}}
		_, cancel := context.WithCancelCause(t.Context())
		defer cancel(nil)
		start := time.Now()
		r := newReporter(context.Background(), rec, cancel, 1, interval, slog.New(slog.DiscardHandler))
		r.startLazily()

		time.Sleep(100 * time.Millisecond)
		for i, msg := range []string{"extracting", "chunking"} {
			if err := r.Progress(t.Context(), 20+10*i, msg); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if w := rec.written(); len(w) != 0 {
			t.Fatalf("%d writes before the interval ended, want 0: %+v", len(w), w)
		}

		// The interval ends: the latest progress is written, once, in place of "started".
		time.Sleep(interval - 100*time.Millisecond)
		synctest.Wait()
		w := rec.written()
		if len(w) != 1 || w[0].current != 30 || w[0].message != "chunking" || w[0].at.Sub(start) != interval {
			t.Fatalf("writes %+v, want one (30, chunking) at +%v", w, interval)
		}

		// The next report waits for the next interval, measured from the last write.
		if err := r.Progress(t.Context(), 80, "embedding"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(interval - time.Millisecond)
		synctest.Wait()
		if n := len(rec.written()); n != 1 {
			t.Fatalf("%d writes before the second interval ended, want 1", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		w = rec.written()
		if len(w) != 2 || w[1].current != 80 || w[1].at.Sub(start) != 2*interval {
			t.Fatalf("writes %+v, want (80, embedding) second at +%v", w, 2*interval)
		}

		// Once the run has ended, progress is dropped: the final status follows.
		if err := r.Progress(t.Context(), 90, "late"); err != nil {
			t.Fatal(err)
		}
		r.close()
		time.Sleep(2 * interval)
		synctest.Wait()
		if n := len(rec.written()); n != 2 {
			t.Fatalf("%d writes after close, want 2", n)
		}
	})
}

func TestReporterWritesStartedWhenAJobReportsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		rec := &statusRecord{st: job.Status{State: job.StatePending}}
		_, cancel := context.WithCancelCause(t.Context())
		defer cancel(nil)
		r := newReporter(context.Background(), rec, cancel, 2, interval, slog.New(slog.DiscardHandler))
		r.startLazily()
		time.Sleep(interval)
		synctest.Wait()
		r.close()
		w := rec.written()
		if len(w) != 1 || w[0].message != "started" || rec.st.State != job.StateProgress || rec.st.Attempts != 2 {
			t.Fatalf("writes %+v, status %+v; want one PROGRESS started, attempt 2", w, rec.st)
		}
	})
}

func TestReporterCancelsTheJobWhenItFindsTheTaskRevoked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &statusRecord{st: job.Status{State: job.StateRevoked}}
		ctx, cancel := context.WithCancelCause(t.Context())
		defer cancel(nil)
		r := newReporter(context.Background(), rec, cancel, 1, 0, slog.New(slog.DiscardHandler))
		if err := r.Progress(t.Context(), 20, "extracting"); !errors.Is(err, ErrRevoked) {
			t.Fatalf("Progress on a revoked task = %v, want ErrRevoked", err)
		}
		if !errors.Is(context.Cause(ctx), ErrRevoked) {
			t.Fatalf("job context cause %v, want ErrRevoked", context.Cause(ctx))
		}
		if n := len(rec.written()); n != 0 {
			t.Fatalf("%d writes over a revoked status, want 0", n)
		}
	})
}

func TestSuccessIsRetriedEveryQuarterSecondWhileTheDeliveryIsKeptAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &statusRecord{st: job.Status{State: job.StateProgress}, failures: 3}
		r := newReporter(context.Background(), rec, func(error) {}, 2, 0, slog.New(slog.DiscardHandler))
		r.Result(func(st *job.Status) { st.ChunkCount = 7 })
		start := time.Now()
		var kept int
		if err := recordSuccess(t.Context(), rec, r, func() { kept++ }); err != nil {
			t.Fatal(err)
		}
		if len(rec.tries) != 4 || kept != 3 || time.Since(start) != 3*successRetryEvery {
			t.Fatalf("%d tries, %d keep-alives, %v; want 4, 3 and %v", len(rec.tries), kept, time.Since(start), 3*successRetryEvery)
		}
		for i, at := range rec.tries {
			if want := start.Add(time.Duration(i) * successRetryEvery); !at.Equal(want) {
				t.Fatalf("try %d at +%v, want +%v", i+1, at.Sub(start), want.Sub(start))
			}
		}
		if rec.st.State != job.StateSuccess || rec.st.Attempts != 2 || rec.st.ChunkCount != 7 || rec.st.Current != 100 {
			t.Fatalf("status %+v; want SUCCESS of attempt 2 with its results", rec.st)
		}
	})
}

func TestSuccessIsGivenUpAfterSuccessRetryFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &statusRecord{st: job.Status{State: job.StateProgress}, failures: 1 << 30}
		r := newReporter(context.Background(), rec, func(error) {}, 1, 0, slog.New(slog.DiscardHandler))
		start := time.Now()
		err := recordSuccess(t.Context(), rec, r, func() {})
		if !errors.Is(err, errUnreachable) {
			t.Fatalf("recordSuccess = %v, want the store's error", err)
		}
		if d := time.Since(start); d <= successRetryFor || d > successRetryFor+successRetryEvery {
			t.Fatalf("gave up after %v, want just past %v", d, successRetryFor)
		}
		if want := int(successRetryFor/successRetryEvery) + 2; len(rec.tries) != want {
			t.Fatalf("%d tries, want %d", len(rec.tries), want)
		}
	})
}
