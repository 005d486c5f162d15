package docstore_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

func newSchedule(t *testing.T, s *docstore.Store, id, overlap string) *docstore.Schedule {
	t.Helper()
	sc := &docstore.Schedule{
		ID: id, TenantID: "acme", Name: "nightly", SpecKind: "every", Spec: "1s", Overlap: overlap,
		Task: []byte(`{"kind":"webpage","agent_id":"7","url":"https://example.com/"}`), Enabled: true,
	}
	if err := s.CreateSchedule(t.Context(), sc, nil); err != nil {
		t.Fatal(err)
	}
	return sc
}

func fire(id string, at time.Time, taskID string) docstore.Fire {
	return docstore.Fire{ScheduleID: id, FireTime: at, Build: func(sc *docstore.Schedule) (*docstore.Document, *job.Job, error) {
		var tmpl struct {
			AgentID string `json:"agent_id"`
			URL     string `json:"url"`
		}
		if err := json.Unmarshal(sc.Task, &tmpl); err != nil {
			return nil, nil, err
		}
		j := &job.Job{TaskID: taskID, Kind: job.KindWebpage, TenantID: sc.TenantID, AgentID: tmpl.AgentID, Priority: job.PriorityHigh, URL: tmpl.URL}
		d := &docstore.Document{TenantID: sc.TenantID, AgentID: tmpl.AgentID, Kind: job.KindWebpage, URL: tmpl.URL, TaskID: taskID, Priority: "high"}
		return d, j, nil
	}}
}

func TestScheduleCRUD(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	newSchedule(t, s, "s1", docstore.OverlapSkip)
	failing := &docstore.Schedule{ID: "s2", TenantID: "acme", Name: "x", SpecKind: "every", Spec: "1s", Overlap: "skip", Task: []byte(`{}`), Enabled: true}
	if err := s.CreateSchedule(ctx, failing, func(*docstore.Schedule) error { return errors.New("no NATS") }); err == nil {
		t.Fatal("a failed publish created the schedule")
	}
	if _, err := s.GetSchedule(ctx, "acme", "s2"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("schedule whose publish failed: %v, want not found", err)
	}
	if _, err := s.GetSchedule(ctx, "other", "s1"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("another tenant's schedule: %v, want not found", err)
	}
	up, err := s.UpdateSchedule(ctx, "acme", "s1", func(sc *docstore.Schedule) error { sc.Name, sc.Enabled = "hourly", false; return nil }, nil)
	if err != nil || up.Version != 2 || up.Name != "hourly" || up.Enabled {
		t.Fatalf("UpdateSchedule = %+v, %v", up, err)
	}
	if _, err := s.UpdateSchedule(ctx, "acme", "s1", func(sc *docstore.Schedule) error { sc.Name = "lost"; return nil },
		func(*docstore.Schedule) error { return errors.New("no NATS") }); err == nil {
		t.Fatal("a failed publish still updated")
	}
	got, err := s.GetSchedule(ctx, "", "s1")
	if err != nil || got.Name != "hourly" || got.Version != 2 {
		t.Fatalf("after a failed update: %+v, %v", got, err)
	}
	all, err := s.ListSchedules(ctx, "acme", 0)
	if err != nil || len(all) != 1 {
		t.Fatalf("ListSchedules = %v, %v", all, err)
	}
	if err := s.DeleteSchedule(ctx, "other", "s1"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("delete by another tenant: %v", err)
	}
	if err := s.DeleteSchedule(ctx, "acme", "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSchedule(ctx, "acme", "s1"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("deleted schedule: %v", err)
	}
}

// A fire is one run whatever the redeliveries; overlap skip holds new runs while the previous
// run's task is unfinished; a paused or deleted schedule's fire is dropped.
func TestRecordFire(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	newSchedule(t, s, "s1", docstore.OverlapSkip)
	t0 := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)

	out, _, doc, j, err := s.RecordFire(ctx, fire("s1", t0, "run-1"))
	if err != nil || out != docstore.FireEnqueued || doc.ID == 0 || j.DocumentID != doc.ID {
		t.Fatalf("first fire = %v, %+v, %v", out, doc, err)
	}
	if task := getTask(t, s, "run-1"); task.ScheduleID != "s1" || task.State != job.StatePending {
		t.Fatalf("run task = %+v", task)
	}
	if out, _, _, _, err := s.RecordFire(ctx, fire("s1", t0, "run-1b")); err != nil || out != docstore.FireDuplicate {
		t.Fatalf("the same fire again = %v, %v; want a duplicate", out, err)
	}
	if out, _, _, _, err := s.RecordFire(ctx, fire("s1", t0.Add(time.Second), "run-2")); err != nil || out != docstore.FireSkipped {
		t.Fatalf("fire while the run is queued = %v, %v; want skipped", out, err)
	}
	if err := s.FinishTask(ctx, "run-1", job.StateSuccess, 1, ""); err != nil {
		t.Fatal(err)
	}
	if out, _, _, _, err := s.RecordFire(ctx, fire("s1", t0.Add(2*time.Second), "run-3")); err != nil || out != docstore.FireEnqueued {
		t.Fatalf("fire after the run finished = %v, %v; want enqueued", out, err)
	}
	runs, err := s.ListScheduleRuns(ctx, "acme", "s1", 10)
	if err != nil || len(runs) != 3 {
		t.Fatalf("runs = %+v, %v", runs, err)
	}
	if runs[0].TaskID != "run-3" || runs[0].State != "PENDING" || runs[1].State != "skipped" || runs[2].State != "SUCCESS" {
		t.Fatalf("runs = %+v", runs)
	}
	if sc, _ := s.GetSchedule(ctx, "acme", "s1"); sc.LastRunAt == nil || !sc.LastRunAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("last_run_at = %v", sc.LastRunAt)
	}
	if _, err := s.ListScheduleRuns(ctx, "other", "s1", 10); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("another tenant's runs: %v", err)
	}

	newSchedule(t, s, "s2", docstore.OverlapAllow)
	for i := range 2 {
		if out, _, _, _, err := s.RecordFire(ctx, fire("s2", t0.Add(time.Duration(i)*time.Second), "allow-"+string(rune('a'+i)))); err != nil || out != docstore.FireEnqueued {
			t.Fatalf("overlap allow fire %d = %v, %v", i, out, err)
		}
	}
	if _, err := s.UpdateSchedule(ctx, "acme", "s2", func(sc *docstore.Schedule) error { sc.Enabled = false; return nil }, nil); err != nil {
		t.Fatal(err)
	}
	if out, _, _, _, err := s.RecordFire(ctx, fire("s2", t0.Add(time.Minute), "paused")); err != nil || out != docstore.FireDropped {
		t.Fatalf("paused fire = %v, %v", out, err)
	}
	if out, _, _, _, err := s.RecordFire(ctx, fire("gone", t0, "gone")); err != nil || out != docstore.FireDropped {
		t.Fatalf("fire of no schedule = %v, %v", out, err)
	}
}

func TestDelayedTask(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	d := &docstore.Document{TenantID: "acme", AgentID: "7", Kind: job.KindWebpage, URL: "https://example.com/", TaskID: "later", Priority: "high"}
	if err := s.InsertDocument(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DelayedTask(ctx, "later"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("a task without run_at is delayed: %v", err)
	}
	if err := s.SetTaskRunAt(ctx, "later", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if un, _ := s.UnpublishedTasks(ctx, 0, 10); len(un) != 0 {
		t.Fatalf("the sweeper would publish a task held for later: %+v", un)
	}
	if task, err := s.DelayedTask(ctx, "later"); err != nil || task.RunAt == nil {
		t.Fatalf("DelayedTask = %+v, %v", task, err)
	}
	if err := s.CancelTask(ctx, "acme", "later"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DelayedTask(ctx, "later"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("a cancelled delayed task: %v, want not found", err)
	}
}

func TestRecordFireDropsWallClockRepeats(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	newSchedule(t, s, "s1", docstore.OverlapAllow)
	t0 := time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)
	var seen []time.Time
	repeats := func(f docstore.Fire) docstore.Fire {
		f.Repeats = func(_ *docstore.Schedule, earlier []time.Time) bool {
			seen = earlier
			return f.FireTime.Sub(earlier[len(earlier)-1]) == time.Hour
		}
		return f
	}
	if out, _, _, _, err := s.RecordFire(ctx, repeats(fire("s1", t0, "first"))); err != nil || out != docstore.FireEnqueued {
		t.Fatalf("first fire = %v, %v", out, err)
	}
	if out, _, _, _, err := s.RecordFire(ctx, repeats(fire("s1", t0.Add(time.Hour), "again"))); err != nil || out != docstore.FireRepeated {
		t.Fatalf("repeat = %v, %v; want FireRepeated", out, err)
	}
	if len(seen) != 1 || !seen[0].Equal(t0) {
		t.Fatalf("Repeats saw %v, want the first fire", seen)
	}
	if runs, _ := s.ListScheduleRuns(ctx, "acme", "s1", 10); len(runs) != 1 {
		t.Fatalf("runs = %+v, want the first only", runs)
	}
	if out, _, _, _, err := s.RecordFire(ctx, repeats(fire("s1", t0.Add(24*time.Hour), "next day"))); err != nil || out != docstore.FireEnqueued {
		t.Fatalf("next day's fire = %v, %v", out, err)
	}
}
