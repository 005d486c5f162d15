package docstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quirehq/quire/shared/job"
)

// The tasks table is the permanent record and the outbox of every task, whatever its kind
// (DESIGN §10). A statement or transaction that writes both a document and its task locks the
// documents row first, as the worker's commit (Complete) does, so that none waits for another
// in a cycle. A task of a document (kind document, webpage or crawl) is recorded by the
// statement that inserts or re-queues its documents row ([Store.InsertDocument],
// [Store.InsertUnlessDuplicate], [Store.Requeue], [Store.RequeuePageJob]); a task without a
// document by [Store.InsertTask]. Store implements jobqueue.TaskStore.

// Task is a row of the tasks table.
type Task struct {
	TaskID   string
	TenantID string
	Kind     job.Kind
	Priority job.Priority
	// Payload is the job as published (its JSON body).
	Payload     []byte
	State       job.State
	Attempts    int
	Error       string
	BatchID     string
	ScheduleID  string
	DocumentID  int64 // 0 when the task has no document (or it was deleted)
	Stream      string
	StreamSeq   uint64
	PublishedAt *time.Time
	RunAt       *time.Time
	CreatedAt   time.Time
	FinishedAt  *time.Time
}

// Job decodes the task's payload, with the task's document id.
func (t *Task) Job() (*job.Job, error) {
	j, err := job.Decode(t.Payload)
	if err != nil {
		return nil, fmt.Errorf("docstore: task %s payload: %w", t.TaskID, err)
	}
	if t.DocumentID != 0 {
		j.DocumentID = t.DocumentID
	}
	return j, nil
}

const taskColumns = `t.task_id, t.tenant_id, t.kind, t.priority, t.payload, t.state, t.attempts, t.error,
	coalesce(t.batch_id, ''), coalesce(t.schedule_id, ''), coalesce(t.document_id, 0), t.stream, t.stream_seq,
	t.published_at, t.run_at, t.created_at, t.finished_at`

func scanTask(row pgx.Row) (*Task, error) {
	var t Task
	var seq int64
	err := row.Scan(&t.TaskID, &t.TenantID, &t.Kind, &t.Priority, &t.Payload, &t.State, &t.Attempts, &t.Error,
		&t.BatchID, &t.ScheduleID, &t.DocumentID, &t.Stream, &seq, &t.PublishedAt, &t.RunAt, &t.CreatedAt, &t.FinishedAt)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, job.ErrNotFound
		}
		return nil, err
	}
	t.StreamSeq = uint64(seq)
	return &t, nil
}

// documentPayload is the JSON of the job a documents row is inserted for: d.Job when it is
// that job, otherwise the job rebuilt from the row's columns. The document id is added by the
// statement that inserts the row.
func documentPayload(d *Document) string {
	if len(d.Job) > 0 {
		var j job.Job
		if json.Unmarshal(d.Job, &j) == nil && j.TaskID == d.TaskID {
			j.V = job.Version
			if b, err := json.Marshal(&j); err == nil {
				return string(b)
			}
		}
	}
	j := job.Job{
		V: job.Version, TaskID: d.TaskID, Kind: d.Kind, TenantID: d.TenantID, AgentID: d.AgentID,
		Priority: job.Priority(d.Priority), Filename: d.Filename, ContentType: d.ContentType, URL: d.URL,
	}
	if d.Kind == job.KindDocument {
		j.Object = d.TaskID
	}
	b, _ := json.Marshal(&j) // a struct of strings and numbers always encodes
	return string(b)
}

// InsertTask records the task of j, a job without a documents row of its own (j.DocumentID,
// if set, is recorded as its document): state PENDING, unpublished, payload j.
func (s *Store) InsertTask(ctx context.Context, j *job.Job) error {
	j.V = job.Version
	payload, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("docstore: insert task %s: %w", j.TaskID, err)
	}
	var docID *int64
	if j.DocumentID != 0 {
		docID = &j.DocumentID
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO tasks (task_id, tenant_id, kind, priority, payload, document_id)
		VALUES ($1, $2, $3, $4, $5, $6)`, j.TaskID, j.TenantID, j.Kind, j.Priority, string(payload), docID); err != nil {
		return fmt.Errorf("docstore: insert task %s: %w", j.TaskID, err)
	}
	return nil
}

// DeleteTask removes task taskID if its job was never published and no document points at it
// (undoing a recorded task whose publish failed); otherwise it does nothing.
func (s *Store) DeleteTask(ctx context.Context, taskID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM tasks WHERE task_id = $1 AND published_at IS NULL
		AND NOT EXISTS (SELECT FROM documents WHERE task_id = $1)`, taskID); err != nil {
		return fmt.Errorf("docstore: delete task %s: %w", taskID, err)
	}
	return nil
}

// PublishMark records that the job of a task is stored in a job stream, at a sequence.
type PublishMark struct {
	TaskID string
	Stream string
	Seq    uint64
}

// MarkTaskPublished records that the job of task taskID is stored in stream at seq (the
// publish acknowledgement). It writes the tasks row alone: a document's PublishedAt is read
// from its task.
func (s *Store) MarkTaskPublished(ctx context.Context, taskID, stream string, seq uint64) error {
	return s.MarkTasksPublished(ctx, []PublishMark{{TaskID: taskID, Stream: stream, Seq: seq}})
}

// MarkTasksPublished is MarkTaskPublished for several tasks in one statement. Like
// FinishTasks it writes the rows in the order of their task ids, so that two batches of the
// same tasks never wait for each other in a cycle.
func (s *Store) MarkTasksPublished(ctx context.Context, marks []PublishMark) error {
	if len(marks) == 0 {
		return nil
	}
	marks = slices.SortedFunc(slices.Values(marks), func(a, b PublishMark) int { return strings.Compare(a.TaskID, b.TaskID) })
	ids, streams, seqs := make([]string, len(marks)), make([]string, len(marks)), make([]int64, len(marks))
	for i, m := range marks {
		ids[i], streams[i], seqs[i] = m.TaskID, m.Stream, int64(m.Seq)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE tasks SET published_at = now(), stream = m.stream, stream_seq = m.seq
		FROM unnest($1::text[], $2::text[], $3::bigint[]) AS m(task_id, stream, seq)
		WHERE tasks.task_id = m.task_id`,
		ids, streams, seqs); err != nil {
		return fmt.Errorf("docstore: mark %d tasks published: %w", len(marks), err)
	}
	return nil
}

// UnpublishedTasks returns PENDING tasks, of every kind, whose job no job stream has
// acknowledged minAge after they were recorded (the API stopped between recording a task and
// publishing its job), oldest first, at most limit. A task whose run_at is still ahead is not
// among them.
func (s *Store) UnpublishedTasks(ctx context.Context, minAge time.Duration, limit int) ([]*Task, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+taskColumns+` FROM tasks t
		WHERE t.published_at IS NULL AND t.state = 'PENDING' AND t.created_at < now() - $1::interval
		  AND (t.run_at IS NULL OR t.run_at <= now())
		ORDER BY t.created_at LIMIT $2`, minAge.String(), limit)
	if err != nil {
		return nil, fmt.Errorf("docstore: unpublished tasks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Task, error) { return scanTask(r) })
	if err != nil {
		return nil, fmt.Errorf("docstore: unpublished tasks: %w", err)
	}
	return out, nil
}

// GetTask returns task taskID of tenant and, when the task is its document's current one, the
// document; job.ErrNotFound if the tenant has no such task.
func (s *Store) GetTask(ctx context.Context, tenantID, taskID string) (*Task, *Document, error) {
	t, err := scanTask(s.pool.QueryRow(ctx, `SELECT `+taskColumns+` FROM tasks t WHERE t.task_id = $1 AND t.tenant_id = $2`, taskID, tenantID))
	if err != nil {
		return nil, nil, fmt.Errorf("docstore: get task %s: %w", taskID, err)
	}
	if t.DocumentID == 0 {
		return t, nil, nil
	}
	d, err := s.GetDocumentByTask(ctx, tenantID, taskID)
	if errors.Is(err, job.ErrNotFound) {
		return t, nil, nil // the document has moved on to a newer task
	}
	if err != nil {
		return nil, nil, err
	}
	return t, d, nil
}

// FindTaskTenant returns the tenant of task taskID, whatever it is, for the operator's views
// (the admin token sees every tenant); job.ErrNotFound if the task is not recorded.
func (s *Store) FindTaskTenant(ctx context.Context, taskID string) (string, error) {
	var tenant string
	err := s.pool.QueryRow(ctx, `SELECT tenant_id FROM tasks WHERE task_id = $1`, taskID).Scan(&tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("docstore: find task %s: %w", taskID, job.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("docstore: find task %s: %w", taskID, err)
	}
	return tenant, nil
}

// CancelTask revokes task taskID of tenant unless it has finished: the task becomes REVOKED
// and, when it is its document's current task, the document cancelled, in one transaction
// (the worker's commit checks the document, so a cancelled document never gets results). It
// fails with job.ErrNotFound when tenant has no such task and job.ErrConflict when the task or
// its document already finished; nothing is written then.
func (s *Store) CancelTask(ctx context.Context, tenantID, taskID string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var docID *int64
		err := tx.QueryRow(ctx, `SELECT document_id FROM tasks WHERE task_id = $1 AND tenant_id = $2`,
			taskID, tenantID).Scan(&docID)
		if errors.Is(err, pgx.ErrNoRows) {
			return job.ErrNotFound
		}
		if err != nil {
			return err
		}
		// The document is locked before the task (see the lock order above).
		if docID != nil {
			var status string
			err := tx.QueryRow(ctx, `UPDATE documents d SET status = 'cancelled', updated_at = now(), completed_at = now()
				FROM (SELECT id, status FROM documents WHERE id = $1 AND task_id = $2 FOR UPDATE) old
				WHERE d.id = old.id RETURNING old.status`, *docID, taskID).Scan(&status)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				// The document has moved on to another task; only this task is revoked.
			case err != nil:
				return err
			case status != job.DocQueued && status != job.DocProcessing:
				return fmt.Errorf("document already %s: %w", status, job.ErrConflict)
			}
		}
		var state job.State
		if err := tx.QueryRow(ctx, `SELECT state FROM tasks WHERE task_id = $1 FOR UPDATE`, taskID).Scan(&state); err != nil {
			return err
		}
		if state.Terminal() {
			return fmt.Errorf("already %s: %w", state, job.ErrConflict)
		}
		_, err = tx.Exec(ctx, `UPDATE tasks SET state = 'REVOKED', finished_at = now() WHERE task_id = $1`, taskID)
		return err
	})
	if err != nil {
		return fmt.Errorf("docstore: cancel task %s: %w", taskID, err)
	}
	return nil
}

// TaskOutcome is the final outcome of a task's run, for [Store.FinishTasks].
type TaskOutcome struct {
	TaskID   string
	State    job.State // SUCCESS, FAILURE or REVOKED
	Attempts int
	Error    string
}

// FinishTask records the final outcome of task taskID: its state (SUCCESS, FAILURE or
// REVOKED), the runs it took and, for a failure, why. A REVOKED task stays REVOKED (a run that
// ends after its cancellation does not undo it). A task that is not recorded is ignored.
func (s *Store) FinishTask(ctx context.Context, taskID string, state job.State, attempts int, reason string) error {
	return s.FinishTasks(ctx, []TaskOutcome{{TaskID: taskID, State: state, Attempts: attempts, Error: reason}})
}

// FinishTasks is FinishTask for several tasks in one statement, in the order of their task
// ids (see MarkTasksPublished).
func (s *Store) FinishTasks(ctx context.Context, outcomes []TaskOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	outcomes = slices.SortedFunc(slices.Values(outcomes), func(a, b TaskOutcome) int { return strings.Compare(a.TaskID, b.TaskID) })
	ids, states, attempts, errs := make([]string, len(outcomes)), make([]string, len(outcomes)), make([]int32, len(outcomes)), make([]string, len(outcomes))
	for i, o := range outcomes {
		if !o.State.Terminal() {
			return fmt.Errorf("docstore: finish task %s: %s is not a final state", o.TaskID, o.State)
		}
		ids[i], states[i], attempts[i], errs[i] = o.TaskID, string(o.State), int32(o.Attempts), o.Error
	}
	if _, err := s.pool.Exec(ctx, `UPDATE tasks SET state = o.state, attempts = o.attempts, error = o.error,
			finished_at = coalesce(tasks.finished_at, now())
		FROM unnest($1::text[], $2::text[], $3::int[], $4::text[]) AS o(task_id, state, attempts, error)
		WHERE tasks.task_id = o.task_id AND (tasks.state <> 'REVOKED' OR o.state = 'REVOKED')
		  AND (tasks.state, tasks.attempts, tasks.error, tasks.finished_at IS NOT NULL) IS DISTINCT FROM (o.state, o.attempts, o.error, true)`,
		ids, states, attempts, errs); err != nil {
		return fmt.Errorf("docstore: finish %d tasks: %w", len(outcomes), err)
	}
	return nil
}

// RequeueTask makes task taskID of tenant PENDING and unpublished again, its attempts and
// error reset, for a re-publish of its job (a dead letter retried); its document, if it is
// the task's, goes back to queued. job.ErrNotFound if tenant has no such task, job.ErrConflict
// if the task's document was deleted.
func (s *Store) RequeueTask(ctx context.Context, tenantID, taskID string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var docID *int64
		var hadDoc bool
		err := tx.QueryRow(ctx, `SELECT document_id, (payload ->> 'document_id') IS NOT NULL FROM tasks
			WHERE task_id = $1 AND tenant_id = $2`, taskID, tenantID).Scan(&docID, &hadDoc)
		if errors.Is(err, pgx.ErrNoRows) {
			return job.ErrNotFound
		}
		if err != nil {
			return err
		}
		if docID == nil && hadDoc {
			return fmt.Errorf("its document was deleted: %w", job.ErrConflict)
		}
		// The document is locked before the task (see the lock order above).
		if docID != nil {
			if _, err := tx.Exec(ctx, `UPDATE documents SET status = 'queued', error = '', completed_at = NULL,
				updated_at = now() WHERE id = $1 AND task_id = $2`, *docID, taskID); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE tasks SET state = 'PENDING', attempts = 0, error = '', published_at = NULL,
			finished_at = NULL WHERE task_id = $1`, taskID)
		return err
	})
	if err != nil {
		return fmt.Errorf("docstore: requeue task %s: %w", taskID, err)
	}
	return nil
}
