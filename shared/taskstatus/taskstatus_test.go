package taskstatus_test

import (
	"errors"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/taskstatus"
)

func newStore(t *testing.T, ttl time.Duration) *taskstatus.Store {
	t.Helper()
	s := natstest.Run(t)
	_, js := natstest.Connect(t, s)
	top, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return taskstatus.New(top.Tasks, js, ttl)
}

func TestCreateGetUpdate(t *testing.T) {
	st := newStore(t, time.Hour)
	ctx := t.Context()
	if err := st.Create(ctx, &job.Status{TaskID: "t1", State: job.StatePending, TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, &job.Status{TaskID: "t1", State: job.StatePending}); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("second Create error = %v, want ErrConflict", err)
	}
	got, err := st.Update(ctx, "t1", func(s *job.Status) error {
		s.State, s.Current, s.Total, s.Status = job.StateProgress, 20, 100, "extracting"
		return nil
	})
	if err != nil || got.State != job.StateProgress {
		t.Fatalf("Update = %+v, %v", got, err)
	}
	read, _, err := st.Get(ctx, "t1")
	if err != nil || read.Current != 20 || read.TenantID != "acme" {
		t.Fatalf("Get = %+v, %v", read, err)
	}
	// fn's error aborts the update.
	stop := errors.New("already revoked")
	if _, err := st.Update(ctx, "t1", func(*job.Status) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Update error = %v", err)
	}
	if _, _, err := st.Get(ctx, "missing"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("Get(missing) error = %v", err)
	}
}

func TestTerminalStatusExpiresButPendingDoesNot(t *testing.T) {
	st := newStore(t, time.Second)
	ctx := t.Context()
	for _, id := range []string{"done", "waiting"} {
		if err := st.Create(ctx, &job.Status{TaskID: id, State: job.StatePending}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Update(ctx, "done", func(s *job.Status) error { s.State = job.StateSuccess; return nil }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := st.Get(ctx, "done")
		if errors.Is(err, job.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("terminal status still there after 10s (err %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if s, _, err := st.Get(ctx, "waiting"); err != nil || s.State != job.StatePending {
		t.Fatalf("pending status = %+v, %v; want it kept", s, err)
	}
}

func TestConcurrentUpdatesDoNotLoseWrites(t *testing.T) {
	st := newStore(t, time.Hour)
	ctx := t.Context()
	if err := st.Create(ctx, &job.Status{TaskID: "c", State: job.StateProgress}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 10)
	for range 10 {
		go func() {
			_, err := st.Update(ctx, "c", func(s *job.Status) error { s.Current++; return nil })
			done <- err
		}()
	}
	for range 10 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	s, _, err := st.Get(ctx, "c")
	if err != nil || s.Current != 10 {
		t.Fatalf("after 10 concurrent increments Current = %d (%v), want 10", s.Current, err)
	}
}

func TestTrackerSeesCancellation(t *testing.T) {
	st := newStore(t, time.Hour)
	ctx := t.Context()
	if err := st.Create(ctx, &job.Status{TaskID: "r", State: job.StatePending}); err != nil {
		t.Fatal(err)
	}
	tr, err := st.Track(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Update(ctx, func(s *job.Status) error { s.State = job.StateProgress; s.Current = 20; return nil }); err != nil {
		t.Fatal(err)
	}
	// The API revokes the task behind the tracker's back.
	if _, err := st.Update(ctx, "r", func(s *job.Status) error { s.State = job.StateRevoked; return nil }); err != nil {
		t.Fatal(err)
	}
	revoked := errors.New("revoked")
	err = tr.Update(ctx, func(s *job.Status) error {
		if s.State == job.StateRevoked {
			return revoked
		}
		s.Current = 50
		return nil
	})
	if !errors.Is(err, revoked) {
		t.Fatalf("tracker update after revoke = %v, want the fn's error", err)
	}
	if got := tr.Status(); got.State != job.StateRevoked {
		t.Fatalf("tracker status = %s, want REVOKED", got.State)
	}
}

func TestWatchSendsTheCurrentStatusThenEveryChangeInOrder(t *testing.T) {
	st := newStore(t, time.Hour)
	ctx := t.Context()
	if err := st.Create(ctx, &job.Status{TaskID: "w1", State: job.StatePending, TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	changes, err := st.Watch(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}
	next := func() taskstatus.Change {
		t.Helper()
		select {
		case c, ok := <-changes:
			if !ok {
				t.Fatal("watch closed early")
			}
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no change within 5s")
		}
		return taskstatus.Change{}
	}
	first := next()
	if first.Status == nil || first.Status.State != job.StatePending || first.Revision == 0 {
		t.Fatalf("first change = %+v, want the current PENDING status", first)
	}
	for _, state := range []job.State{job.StateProgress, job.StateSuccess} {
		if _, err := st.Update(ctx, "w1", func(s *job.Status) error { s.State = state; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	prev := first.Revision
	for _, want := range []job.State{job.StateProgress, job.StateSuccess} {
		c := next()
		if c.Status == nil || c.Status.State != want || c.Revision <= prev {
			t.Fatalf("change = %+v (status %+v), want %s after revision %d", c, c.Status, want, prev)
		}
		prev = c.Revision
	}
	if err := st.Delete(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	if c := next(); !c.Deleted || c.Status != nil {
		t.Fatalf("change after Delete = %+v, want Deleted", c)
	}
}

func TestWatchOfATaskWithoutStatusWaitsForItsFirst(t *testing.T) {
	st := newStore(t, time.Hour)
	ctx := t.Context()
	changes, err := st.Watch(ctx, "later")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-changes:
		t.Fatalf("change before any status: %+v", c)
	case <-time.After(200 * time.Millisecond):
	}
	if err := st.Create(ctx, &job.Status{TaskID: "later", State: job.StatePending}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-changes:
		if c.Status == nil || c.Status.TaskID != "later" {
			t.Fatalf("change = %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change after Create")
	}
}
