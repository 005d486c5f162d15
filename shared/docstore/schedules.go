package docstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quirehq/quire/shared/job"
)

// Schedule is a row of the schedules table, the source of truth of a periodic job
// (DESIGN §11).
type Schedule struct {
	ID       string
	TenantID string
	Name     string
	// SpecKind is cron, every or at; Spec the spec in canonical form (schedule.Spec.Text).
	SpecKind string
	Spec     string
	TimeZone string
	// Overlap is skip (no new run while the previous one is queued or running) or allow.
	Overlap string
	// Task is the JSON template of the job each run makes.
	Task      []byte
	Enabled   bool
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	LastRunAt *time.Time
}

// Schedule overlap policies.
const (
	OverlapSkip  = "skip"
	OverlapAllow = "allow"
)

const scheduleColumns = `id, tenant_id, name, spec_kind, spec, timezone, overlap, task, enabled, version, created_at,
	updated_at, last_run_at`

func scanSchedule(row pgx.Row) (*Schedule, error) {
	var s Schedule
	err := row.Scan(&s.ID, &s.TenantID, &s.Name, &s.SpecKind, &s.Spec, &s.TimeZone, &s.Overlap, &s.Task, &s.Enabled,
		&s.Version, &s.CreatedAt, &s.UpdatedAt, &s.LastRunAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, job.ErrNotFound
	}
	return &s, err
}

// CreateSchedule inserts sc (version 1) and sets its timestamps. publish, if not nil, runs
// inside the transaction once the row is written: an error from it undoes the insert, so a
// schedule exists only once its definition is published.
func (s *Store) CreateSchedule(ctx context.Context, sc *Schedule, publish func(*Schedule) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO schedules (id, tenant_id, name, spec_kind, spec, timezone, overlap, task, enabled)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING version, created_at, updated_at`,
			sc.ID, sc.TenantID, sc.Name, sc.SpecKind, sc.Spec, sc.TimeZone, sc.Overlap, string(sc.Task), sc.Enabled,
		).Scan(&sc.Version, &sc.CreatedAt, &sc.UpdatedAt)
		if err != nil || publish == nil {
			return err
		}
		return publish(sc)
	})
	if err != nil {
		return fmt.Errorf("docstore: create schedule %s: %w", sc.ID, err)
	}
	return nil
}

// GetSchedule returns schedule id of tenant, or any tenant's when tenantID is empty;
// job.ErrNotFound if there is none.
func (s *Store) GetSchedule(ctx context.Context, tenantID, id string) (*Schedule, error) {
	sc, err := scanSchedule(s.pool.QueryRow(ctx, `SELECT `+scheduleColumns+` FROM schedules
		WHERE id = $1 AND ($2 = '' OR tenant_id = $2)`, id, tenantID))
	if err != nil {
		return nil, fmt.Errorf("docstore: get schedule %s: %w", id, err)
	}
	return sc, nil
}

// ListSchedules returns tenant's schedules, or every tenant's when tenantID is empty, oldest
// first, at most limit (0: no limit).
func (s *Store) ListSchedules(ctx context.Context, tenantID string, limit int) ([]*Schedule, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := s.pool.Query(ctx, `SELECT `+scheduleColumns+` FROM schedules
		WHERE $1 = '' OR tenant_id = $1 ORDER BY created_at, id LIMIT $2`, tenantID, lim)
	if err != nil {
		return nil, fmt.Errorf("docstore: list schedules: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Schedule, error) { return scanSchedule(r) })
	if err != nil {
		return nil, fmt.Errorf("docstore: list schedules: %w", err)
	}
	return out, nil
}

// UpdateSchedule changes schedule id of tenant: change edits a copy of the row (name, spec,
// time zone, overlap, task, enabled, last run), which is written with version+1; publish, if not nil,
// then runs inside the transaction with the row as written, and an error from either
// leaves the row as it was. job.ErrNotFound if tenant has no such schedule.
func (s *Store) UpdateSchedule(ctx context.Context, tenantID, id string, change func(*Schedule) error, publish func(*Schedule) error) (*Schedule, error) {
	var out *Schedule
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		sc, err := scanSchedule(tx.QueryRow(ctx, `SELECT `+scheduleColumns+` FROM schedules
			WHERE id = $1 AND tenant_id = $2 FOR UPDATE`, id, tenantID))
		if err != nil {
			return err
		}
		if err := change(sc); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `UPDATE schedules SET name = $2, spec_kind = $3, spec = $4, timezone = $5, overlap = $6,
				task = $7, enabled = $8, last_run_at = $9, version = version + 1, updated_at = now()
			WHERE id = $1 RETURNING version, updated_at`,
			id, sc.Name, sc.SpecKind, sc.Spec, sc.TimeZone, sc.Overlap, string(sc.Task), sc.Enabled, sc.LastRunAt).Scan(&sc.Version, &sc.UpdatedAt)
		if err != nil {
			return err
		}
		if publish != nil {
			if err := publish(sc); err != nil {
				return err
			}
		}
		out = sc
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("docstore: update schedule %s: %w", id, err)
	}
	return out, nil
}

// DeleteSchedule removes schedule id of tenant and its runs (the tasks they made stay).
// job.ErrNotFound if tenant has no such schedule.
func (s *Store) DeleteSchedule(ctx context.Context, tenantID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM schedules WHERE id = $1 AND tenant_id = $2`, id, tenantID)
	if err != nil {
		return fmt.Errorf("docstore: delete schedule %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("docstore: delete schedule %s: %w", id, job.ErrNotFound)
	}
	return nil
}

// ScheduleRun is a row of schedule_runs with the state of the task it made.
type ScheduleRun struct {
	ScheduleID string
	FireTime   time.Time
	TaskID     string // empty for a skipped run (or a deleted task)
	// State is "skipped", or the task's state (PENDING until it finishes, then SUCCESS,
	// FAILURE or REVOKED).
	State     string
	CreatedAt time.Time
}

// Run states beside the task states.
const (
	RunEnqueued = "enqueued"
	RunSkipped  = "skipped"
)

// ListScheduleRuns returns the runs of schedule id of tenant, newest fire first, at most
// limit. job.ErrNotFound if tenant has no such schedule.
func (s *Store) ListScheduleRuns(ctx context.Context, tenantID, id string, limit int) ([]ScheduleRun, error) {
	if _, err := s.GetSchedule(ctx, tenantID, id); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT r.schedule_id, r.fire_time, coalesce(r.task_id, ''),
			CASE WHEN r.state = 'skipped' THEN 'skipped' ELSE coalesce(t.state, 'enqueued') END, r.created_at
		FROM schedule_runs r LEFT JOIN tasks t ON t.task_id = r.task_id
		WHERE r.schedule_id = $1 ORDER BY r.fire_time DESC LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("docstore: schedule %s runs: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ScheduleRun, error) {
		var run ScheduleRun
		err := r.Scan(&run.ScheduleID, &run.FireTime, &run.TaskID, &run.State, &run.CreatedAt)
		return run, err
	})
	if err != nil {
		return nil, fmt.Errorf("docstore: schedule %s runs: %w", id, err)
	}
	return out, nil
}

// Fire is one fire of a schedule to record as a run.
type Fire struct {
	ScheduleID string
	FireTime   time.Time
	// Build makes the run's document and job from the schedule (its task template); the
	// task id is the caller's, new for every fire.
	Build func(*Schedule) (*Document, *job.Job, error)
	// Repeats, if set, reports whether the fire repeats one of earlier, the schedule's
	// fire times of the two hours before it (a wall-clock time shown twice when the clock is
	// set back): such a fire is dropped.
	Repeats func(sc *Schedule, earlier []time.Time) bool
}

// FireOutcome is what [Store.RecordFire] made of a fire.
type FireOutcome int

// The outcomes of a fire.
const (
	// FireEnqueued: a run and its task are recorded; publish the job.
	FireEnqueued FireOutcome = iota
	// FireDuplicate: the schedule already has a run at this fire time (a redelivery, or
	// another replica's).
	FireDuplicate
	// FireSkipped: overlap skip, the previous run is still queued or running; a skipped run
	// is recorded.
	FireSkipped
	// FireDropped: the schedule is gone or paused.
	FireDropped
	// FireRepeated: the fire repeats an earlier one's wall-clock time (Fire.Repeats); no run
	// is recorded.
	FireRepeated
)

// RecordFire turns a fire into at most one run, in one transaction that holds the schedule's
// row (so replicas handling fires of one schedule take turns): nothing when the schedule is
// gone or disabled, already has a run at f.FireTime, or f.Repeats says the fire repeats an
// earlier one; a skipped run when its overlap is skip
// and its previous run's task is neither finished nor gone; otherwise the run, its document
// and its task (schedule_id set, PENDING, unpublished: the sweeper publishes it should the
// caller not), and the schedule's last_run_at. On FireEnqueued it returns the document and
// job Build made, the document's id set.
func (s *Store) RecordFire(ctx context.Context, f Fire) (FireOutcome, *Schedule, *Document, *job.Job, error) {
	var (
		outcome FireOutcome
		sched   *Schedule
		doc     *Document
		j       *job.Job
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		sched, err = scanSchedule(tx.QueryRow(ctx, `SELECT `+scheduleColumns+` FROM schedules WHERE id = $1 FOR UPDATE`, f.ScheduleID))
		if errors.Is(err, job.ErrNotFound) || (err == nil && !sched.Enabled) {
			outcome = FireDropped
			return nil
		}
		if err != nil {
			return err
		}
		var exists, running bool
		err = tx.QueryRow(ctx, `SELECT
				EXISTS (SELECT FROM schedule_runs WHERE schedule_id = $1 AND fire_time = $2),
				EXISTS (SELECT FROM schedule_runs r JOIN tasks t ON t.task_id = r.task_id
					WHERE r.schedule_id = $1 AND r.state = 'enqueued' AND t.state IN ('PENDING', 'PROGRESS', 'RETRY'))`,
			f.ScheduleID, f.FireTime).Scan(&exists, &running)
		if err != nil {
			return err
		}
		if f.Repeats != nil && !exists {
			rows, err := tx.Query(ctx, `SELECT fire_time FROM schedule_runs WHERE schedule_id = $1
				AND fire_time >= $2::timestamptz - interval '2 hours' AND fire_time < $2 ORDER BY fire_time`, f.ScheduleID, f.FireTime)
			if err != nil {
				return err
			}
			earlier, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
			if err != nil {
				return err
			}
			if len(earlier) > 0 && f.Repeats(sched, earlier) {
				outcome = FireRepeated
				return nil
			}
		}
		switch {
		case exists:
			outcome = FireDuplicate
			return nil
		case running && sched.Overlap == OverlapSkip:
			outcome = FireSkipped
			_, err := tx.Exec(ctx, `INSERT INTO schedule_runs (schedule_id, fire_time, state) VALUES ($1, $2, 'skipped')
				ON CONFLICT DO NOTHING`, f.ScheduleID, f.FireTime)
			return err
		}
		if doc, j, err = f.Build(sched); err != nil {
			return err
		}
		if err := insertDocumentTx(ctx, tx, doc, sched.ID); err != nil {
			return err
		}
		j.DocumentID = doc.ID
		if _, err := tx.Exec(ctx, `INSERT INTO schedule_runs (schedule_id, fire_time, task_id, state) VALUES ($1, $2, $3, 'enqueued')`,
			f.ScheduleID, f.FireTime, doc.TaskID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE schedules SET last_run_at = greatest(coalesce(last_run_at, $2), $2) WHERE id = $1`, f.ScheduleID, f.FireTime)
		outcome = FireEnqueued
		return err
	})
	if err != nil {
		return 0, nil, nil, nil, fmt.Errorf("docstore: record fire of schedule %s at %s: %w", f.ScheduleID, f.FireTime.Format(time.RFC3339), err)
	}
	return outcome, sched, doc, j, nil
}

// insertDocumentTx is InsertDocument in tx, its task marked as made by schedule scheduleID.
func insertDocumentTx(ctx context.Context, tx pgx.Tx, d *Document, scheduleID string) error {
	if d.Status == "" {
		d.Status = job.DocQueued
	}
	err := tx.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO documents (tenant_id, agent_id, kind, filename, url, content_type, size_bytes, sha256, status, task_id, priority, job)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			RETURNING id, created_at, updated_at
		), task AS (
			INSERT INTO tasks (task_id, tenant_id, kind, priority, payload, document_id, created_at, schedule_id)
			SELECT $10::text, $1::text, $3::text, $11::text, $13::jsonb || jsonb_build_object('document_id', ins.id), ins.id,
				ins.created_at, $14::text FROM ins
		)
		SELECT id, created_at, updated_at FROM ins`,
		d.TenantID, d.AgentID, d.Kind, d.Filename, d.URL, d.ContentType, d.SizeBytes, d.SHA256, d.Status, d.TaskID, d.Priority, jsonOrNull(d.Job),
		documentPayload(d), scheduleID,
	).Scan(&d.ID, &d.CreatedAt, &d.UpdatedAt)
	if err != nil {
		return fmt.Errorf("insert document: %w", err)
	}
	return nil
}

// SetTaskRunAt holds task taskID until runAt: the sweeper leaves it alone until then (the job
// is published when its delayed fire comes, see [Store.DelayedTask]).
func (s *Store) SetTaskRunAt(ctx context.Context, taskID string, runAt time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE tasks SET run_at = $2 WHERE task_id = $1`, taskID, runAt); err != nil {
		return fmt.Errorf("docstore: set run_at of task %s: %w", taskID, err)
	}
	return nil
}

// DelayedTask returns task taskID if it is held for a run_at and still waiting: PENDING, not
// published. job.ErrNotFound otherwise (no such task, cancelled, or already published).
func (s *Store) DelayedTask(ctx context.Context, taskID string) (*Task, error) {
	t, err := scanTask(s.pool.QueryRow(ctx, `SELECT `+taskColumns+` FROM tasks t
		WHERE t.task_id = $1 AND t.run_at IS NOT NULL AND t.state = 'PENDING' AND t.published_at IS NULL`, taskID))
	if err != nil {
		return nil, fmt.Errorf("docstore: delayed task %s: %w", taskID, err)
	}
	return t, nil
}
