package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/schedule"
)

// materializerPullExpiry bounds one pull of the materializer: a lost pull request stalls the
// fires no longer than this.
const materializerPullExpiry = 5 * time.Second

// RunMaterializer pulls the durable consumer materializer on SCHEDULES until ctx ends and
// turns each fire into a task (materialize). A fire being handled when ctx ends is finished. Every API replica runs it: the
// consumer shares the fires out, and PostgreSQL's unique (schedule, fire time) makes a fire
// one run whichever replica, or how many deliveries, handle it. It returns ctx's error once
// ctx ends, or the error that kept it from starting.
func (s *Server) RunMaterializer(ctx context.Context) error {
	cons, err := s.js.Consumer(ctx, job.ScheduleStream, job.MaterializerConsumer)
	if err != nil {
		return fmt.Errorf("materializer: %w", err)
	}
	handleCtx := context.WithoutCancel(ctx)
	cc, err := cons.Consume(func(m jetstream.Msg) { s.materialize(handleCtx, m) },
		jetstream.PullMaxMessages(16), jetstream.PullExpiry(materializerPullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) {
				s.log.Warn("materializer: pull", "err", err)
			}
		}))
	if err != nil {
		return fmt.Errorf("materializer: consume: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return ctx.Err()
}

// fireTime is the time of fire m: the time an API publish states (a trigger, a delayed job),
// otherwise the time the server stored the fire, truncated to the second (the second the
// server's schedule named; a late fire, its actual second).
func fireTime(m jetstream.Msg) (time.Time, error) {
	if h := m.Headers().Get(job.HeaderFireTime); h != "" {
		t, err := time.Parse(time.RFC3339, h)
		if err != nil {
			return time.Time{}, fmt.Errorf("fire time %q: %w", h, err)
		}
		return t.UTC(), nil
	}
	md, err := m.Metadata()
	if err != nil {
		return time.Time{}, err
	}
	return md.Timestamp.UTC().Truncate(time.Second), nil
}

// materialize handles one fire: a delayed job's fire publishes that job; a schedule's fire is
// recorded as a run (at most one per schedule and fire time; skipped under overlap skip while
// the previous run is queued or running; dropped when the schedule is paused or gone) and its
// task enqueued through the one enqueue path. The fire is acknowledged once handled; a
// PostgreSQL failure leaves it for redelivery; a fire that cannot make a task is terminated.
func (s *Server) materialize(ctx context.Context, m jetstream.Msg) {
	id := strings.TrimPrefix(m.Subject(), job.ScheduleFirePrefix)
	at, err := fireTime(m)
	if err != nil {
		s.log.Error("materializer: fire without a time", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	if taskID := m.Headers().Get(job.HeaderTaskID); taskID != "" {
		s.releaseDelayed(ctx, m, taskID)
		return
	}
	outcome, sc, _, j, err := s.docs.RecordFire(ctx, docstore.Fire{ScheduleID: id, FireTime: at, Build: buildRun,
		Repeats: func(sc *docstore.Schedule, earlier []time.Time) bool { return repeatsWallClock(sc, earlier, at) }})
	if errors.Is(err, errBadTemplate) {
		s.log.Error("materializer: schedule cannot make a task", "schedule_id", id, "err", err)
		_ = m.Term()
		return
	}
	if err != nil {
		s.log.Warn("materializer: record fire", "schedule_id", id, "fire_time", at, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	switch outcome {
	case docstore.FireEnqueued:
		s.scheduleMetrics.Fires.Inc()
		if _, err := s.taskQueue.Enqueue(ctx, jobqueue.Enqueue{Job: j, Recorded: true, Message: "queued by schedule " + sc.Name}); err != nil {
			// The run and its task are recorded: the sweeper publishes the job.
			s.log.Warn("materializer: publish run", "schedule_id", id, "task_id", j.TaskID, "err", err)
		} else {
			s.log.Info("schedule run queued", "schedule_id", id, "fire_time", at, "task_id", j.TaskID)
		}
	case docstore.FireSkipped:
		s.scheduleMetrics.Skipped.Inc()
		s.log.Info("schedule run skipped: the previous run is still queued or running", "schedule_id", id, "fire_time", at)
	case docstore.FireRepeated:
		s.log.Info("schedule fire dropped: it repeats a run's wall-clock time (the clock was set back)", "schedule_id", id, "fire_time", at)
	case docstore.FireDropped:
		if _, err := s.docs.GetSchedule(ctx, "", id); errors.Is(err, job.ErrNotFound) {
			// No such schedule: one being created (its row is committed just after its
			// definition is published, and a time already past fires at once) is looked up
			// again shortly; after that the definition outlived its schedule (deleted while a
			// replica re-published it) and goes.
			if md, err := m.Metadata(); err == nil && md.NumDelivered == 1 {
				_ = m.NakWithDelay(2 * time.Second)
				return
			}
			if err := s.purgeSubject(ctx, job.ScheduleDefSubject(id)); err != nil {
				s.log.Warn("materializer: purge the definition of a deleted schedule", "schedule_id", id, "err", err)
			}
		}
	}
	_ = m.Ack()
}

var errBadTemplate = errors.New("schedule task template")

// repeatsWallClock reports whether fire repeats, in sc's zone, the wall-clock time of one of
// the earlier fires (schedule.Spec.RepeatsWallClock).
func repeatsWallClock(sc *docstore.Schedule, earlier []time.Time, fire time.Time) bool {
	spec, err := schedule.Parse(schedule.Kind(sc.SpecKind), sc.Spec, sc.TimeZone)
	if err != nil {
		return false
	}
	for _, e := range earlier {
		if spec.RepeatsWallClock(e, fire) {
			return true
		}
	}
	return false
}

// buildRun makes the document and job of a run of sc from its task template.
func buildRun(sc *docstore.Schedule) (*docstore.Document, *job.Job, error) {
	var t scheduleTask
	if err := json.Unmarshal(sc.Task, &t); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errBadTemplate, err)
	}
	t, err := t.check()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errBadTemplate, err)
	}
	doc, j := t.newRun(sc.TenantID)
	return doc, j, nil
}

// releaseDelayed publishes the job of task taskID, held until its run_at, now that its
// delayed fire has come; a task cancelled meanwhile (or published already) is left alone.
func (s *Server) releaseDelayed(ctx context.Context, m jetstream.Msg, taskID string) {
	t, err := s.docs.DelayedTask(ctx, taskID)
	if errors.Is(err, job.ErrNotFound) {
		_ = m.Ack()
		return
	}
	if err != nil {
		s.log.Warn("materializer: delayed task", "task_id", taskID, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	j, err := t.Job()
	if err != nil {
		s.log.Error("materializer: delayed task cannot be published", "task_id", taskID, "err", err)
		_ = m.Term()
		return
	}
	if _, err := s.taskQueue.Enqueue(ctx, jobqueue.Enqueue{Job: j, Recorded: true, CreatedAt: t.CreatedAt}); err != nil {
		s.log.Warn("materializer: publish delayed job; the sweeper publishes it", "task_id", taskID, "err", err)
	}
	_ = m.Ack()
}

// Reconcile makes SCHEDULES hold exactly the definitions PostgreSQL calls for: each enabled
// schedule's at its current version (published when missing or of another version, unless
// it is a single time that has run), each delayed job's while it waits, and no other. Every
// replica runs it at start-up; a definition is published only if its subject has not changed
// since it was read, so a replica never overwrites a newer definition with an older one.
func (s *Server) Reconcile(ctx context.Context) error {
	st, err := s.js.Stream(ctx, job.ScheduleStream)
	if err != nil {
		return fmt.Errorf("reconcile schedules: %w", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(job.ScheduleDefSubjects))
	if err != nil {
		return fmt.Errorf("reconcile schedules: %w", err)
	}
	inStream := info.State.Subjects
	list, err := s.docs.ListSchedules(ctx, "", 0)
	if err != nil {
		return fmt.Errorf("reconcile schedules: %w", err)
	}
	want := make(map[string]bool, len(list))
	published := 0
	for _, sc := range list {
		subj := job.ScheduleDefSubject(sc.ID)
		if !sc.Enabled || (sc.SpecKind == string(schedule.KindAt) && sc.LastRunAt != nil) {
			continue
		}
		want[subj] = true
		var seq uint64
		if inStream[subj] > 0 {
			msg, err := st.GetLastMsgForSubject(ctx, subj)
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
			case err != nil:
				return fmt.Errorf("reconcile schedule %s: %w", sc.ID, err)
			case msg.Header.Get(job.HeaderScheduleVersion) == strconv.FormatInt(sc.Version, 10):
				continue
			default:
				seq = msg.Sequence
			}
		}
		if err := s.publishDefinition(ctx, sc, seq); err != nil {
			if isWrongLastSequence(err) {
				continue // changed meanwhile by a newer publish
			}
			return fmt.Errorf("reconcile: %w", err)
		}
		published++
	}
	purged := 0
	for subj := range inStream {
		if want[subj] {
			continue
		}
		id := strings.TrimPrefix(subj, job.ScheduleDefPrefix)
		if _, err := s.docs.DelayedTask(ctx, id); err == nil {
			continue
		} else if !errors.Is(err, job.ErrNotFound) {
			return fmt.Errorf("reconcile: %w", err)
		}
		if sc, err := s.docs.GetSchedule(ctx, "", id); err == nil && sc.Enabled {
			continue // created since the list was read
		}
		if err := s.purgeSubject(ctx, subj); err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		purged++
	}
	if published > 0 || purged > 0 {
		s.log.Info("schedules reconciled", "published", published, "purged", purged)
	}
	return nil
}

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
