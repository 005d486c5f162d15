package api

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
)

// Delayed one-off jobs: upload, webpage and crawl take run_at (RFC 3339). Such a job is held
// in NATS, not by a sleeping worker: its task is recorded PENDING with run_at, and an @at
// message schedule on schedules.def.<task id> fires at run_at to schedules.fire.<task id>,
// where the materializer publishes the job through the one enqueue path. A task cancelled
// before then is never published; should the fire be lost, the outbox sweeper publishes the
// task once run_at has passed.

// maxRunAtAhead caps how far ahead run_at may be.
const maxRunAtAhead = 366 * 24 * time.Hour

// parseRunAt parses a run_at value: empty or not in the future means now (the zero time).
func (s *Server) parseRunAt(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, errBadRequest(fmt.Sprintf("run_at: %q is not an RFC 3339 time (e.g. 2026-12-24T18:00:00+01:00)", v))
	}
	t = t.UTC().Truncate(time.Second)
	now := s.now()
	switch {
	case !t.After(now.Add(time.Second)):
		return time.Time{}, nil
	case t.After(now.Add(maxRunAtAhead)):
		return time.Time{}, errBadRequest("run_at: at most a year ahead")
	}
	return t, nil
}

// hold keeps the recorded task of j until runAt: run_at on the task, the PENDING status
// ("scheduled for ..."), and the @at definition whose fire releases it. On failure it undoes
// the status; the caller removes the task's document and task rows.
func (s *Server) hold(ctx context.Context, j *job.Job, runAt time.Time) error {
	if err := s.docs.SetTaskRunAt(ctx, j.TaskID, runAt); err != nil {
		return err
	}
	j.EnqueuedAt = s.now().UTC()
	if err := s.statuses.Create(ctx, job.PendingStatus(j, "scheduled for "+runAt.Format(time.RFC3339))); err != nil {
		return err
	}
	msg := nats.NewMsg(job.ScheduleDefSubject(j.TaskID))
	msg.Header.Set(job.HeaderTaskID, j.TaskID)
	msg.Header.Set(job.HeaderTenantID, j.TenantID)
	msg.Header.Set(job.HeaderFireTime, runAt.Format(time.RFC3339))
	_, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(job.ScheduleStream), jetstream.WithScheduleAt(runAt),
		jetstream.WithScheduleTarget(job.ScheduleFireSubject(j.TaskID)), jetstream.WithScheduleTTL(jobqueue.ScheduleFireTTL))
	if err != nil {
		if derr := s.statuses.Delete(context.WithoutCancel(ctx), j.TaskID); derr != nil {
			s.log.Warn("hold: undo task status", "task_id", j.TaskID, "err", derr)
		}
		return fmt.Errorf("publish the delayed fire of task %s: %w", j.TaskID, err)
	}
	return nil
}

func heldNote(runAt time.Time) string {
	if runAt.IsZero() {
		return ""
	}
	return "; held until " + runAt.Format(time.RFC3339)
}

func runAtOrNil(runAt time.Time) *time.Time {
	if runAt.IsZero() {
		return nil
	}
	return &runAt
}
