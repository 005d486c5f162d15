package jobqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
)

// TaskStore is the permanent record of tasks, the outbox the enqueue path writes to
// (*docstore.Store implements it).
type TaskStore interface {
	// InsertTask records the task of j, PENDING and unpublished, with j as its payload.
	InsertTask(ctx context.Context, j *job.Job) error
	// MarkTaskPublished records that the task's job is stored in stream at seq.
	MarkTaskPublished(ctx context.Context, taskID, stream string, seq uint64) error
	// DeleteTask removes a task whose job was never published.
	DeleteTask(ctx context.Context, taskID string) error
	// CancelTask revokes a task of tenant (and cancels its document): job.ErrNotFound for no
	// such task, job.ErrConflict for a finished one.
	CancelTask(ctx context.Context, tenantID, taskID string) error
}

// StatusStore is the part of the TASKS status store the enqueue path uses
// (*taskstatus.Store implements it).
type StatusStore interface {
	Create(ctx context.Context, st *job.Status) error
	Put(ctx context.Context, st *job.Status) error
	Get(ctx context.Context, taskID string) (*job.Status, uint64, error)
	Update(ctx context.Context, taskID string, fn func(st *job.Status) error) (*job.Status, error)
	Delete(ctx context.Context, taskID string) error
}

// Announcer publishes core NATS messages, such as cancellation announcements (*nats.Conn).
type Announcer interface {
	Publish(subject string, data []byte) error
}

// EnqueuerDeps are the collaborators of an [Enqueuer]. Announcer and Marks may be nil.
type EnqueuerDeps struct {
	Tasks     TaskStore
	Statuses  StatusStore
	JetStream jetstream.Publisher
	// Announcer tells running workers of a cancellation at once; without it they notice it
	// at their next heartbeat.
	Announcer Announcer
	// Marks, if set, records publish marks instead of TaskStore.MarkTaskPublished, e.g. in
	// batches: an enqueue then does not wait for its mark. A lost mark only leaves the task to
	// the sweeper, whose re-publish the job stream de-duplicates.
	Marks  func(taskID, stream string, seq uint64)
	Logger *slog.Logger
}

// Enqueuer is the one path by which jobs enter the job streams: record the task (the outbox
// row), create its PENDING status, publish the job with Nats-Msg-Id, mark the task published
// with the stream and sequence of the acknowledgement. It also cancels tasks, of every kind.
type Enqueuer struct {
	tasks    TaskStore
	statuses StatusStore
	pub      *Publisher
	announce Announcer
	marks    func(taskID, stream string, seq uint64)
	log      *slog.Logger
	now      func() time.Time
}

// NewEnqueuer returns an Enqueuer on d.
func NewEnqueuer(d EnqueuerDeps) *Enqueuer {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Enqueuer{tasks: d.Tasks, statuses: d.Statuses, pub: NewPublisher(d.JetStream), announce: d.Announcer,
		marks: d.Marks, log: d.Logger, now: time.Now}
}

// Enqueue is one job to enqueue and how.
type Enqueue struct {
	Job *job.Job
	// Recorded says the task is recorded already: written by the caller together with its
	// document row, in one statement or transaction (docstore.Store.InsertDocument and the
	// like), or an existing task re-queued. Otherwise Enqueue records it (TaskStore.InsertTask)
	// and, if the job is not published, removes it again.
	Recorded bool
	// MsgID is the publish's Nats-Msg-Id: the task id unless set (a deliberate re-publish
	// uses "<task id>:<n>", which the duplicate window cannot take for the first publish).
	MsgID string
	// Message is the PENDING status's message (default "queued"); CreatedAt its creation time
	// (default now).
	Message   string
	CreatedAt time.Time
	// Replace overwrites the task's status, whatever it is (a finished task re-queued),
	// instead of creating it, before the job is published.
	Replace bool
	// DropDuplicate undoes an enqueue whose publish the job stream dropped as a duplicate of
	// MsgID (another enqueue of the same job within the duplicate window), as it undoes a
	// failed one, and reports it in [Enqueued.Duplicate].
	DropDuplicate bool
	// Undo, if set, undoes the caller's writes for a job that was not published (the
	// document row it inserted, say); it runs before the task row is removed. It is given a
	// context that is not cancelled with the request's.
	Undo func(ctx context.Context)
}

// Enqueued is where an enqueued job is stored.
type Enqueued struct {
	Stream string
	Seq    uint64
	// Duplicate: the stream already held the job (same Nats-Msg-Id within its duplicate
	// window); Stream and Seq are that job's.
	Duplicate bool
}

// Enqueue records, announces (PENDING) and publishes q.Job, setting its EnqueuedAt. The
// status is created while the job is published (replaced before it, with q.Replace), both
// awaited; a worker that takes the job
// first creates the status itself, which is then the status Enqueue meant to write. A status
// that cannot be stored once the job is queued is logged and left to the worker. When the
// record or the publish fails, Enqueue undoes what it and q.Undo wrote and returns the error,
// so nothing half-done is left; except that a task the caller recorded and gave no Undo
// (the sweeper's, a re-queued one) stays, with its status, for the sweeper to publish.
func (e *Enqueuer) Enqueue(ctx context.Context, q Enqueue) (Enqueued, error) {
	j := q.Job
	if !q.Recorded {
		if err := e.tasks.InsertTask(ctx, j); err != nil {
			return Enqueued{}, fmt.Errorf("jobqueue: enqueue %s: %w", j.TaskID, err)
		}
	}
	msgID := q.MsgID
	if msgID == "" {
		msgID = j.TaskID
	}
	j.EnqueuedAt = e.now().UTC()
	st := job.PendingStatus(j, q.Message)
	st.CreatedAt = q.CreatedAt
	if q.Replace && st.CreatedAt.IsZero() {
		st.CreatedAt = j.EnqueuedAt
	}
	created := make(chan error, 1)
	if q.Replace {
		// The status is replaced before the job is published: a worker that took the job
		// first would find the task's previous, final status and settle the job unrun.
		if err := e.statuses.Put(ctx, st); err != nil {
			e.undo(ctx, q, false)
			return Enqueued{}, fmt.Errorf("jobqueue: enqueue %s: status: %w", j.TaskID, err)
		}
		created <- nil
	} else {
		go func() { created <- e.statuses.Create(ctx, st) }()
	}
	ack, pubErr := e.pub.PublishAck(ctx, j, msgID)
	stErr := <-created
	if pubErr == nil && ack.Duplicate && q.DropDuplicate {
		e.undo(ctx, q, stErr == nil)
		return Enqueued{Stream: ack.Stream, Seq: ack.Sequence, Duplicate: true}, nil
	}
	if pubErr != nil {
		e.undo(ctx, q, stErr == nil)
		return Enqueued{}, fmt.Errorf("jobqueue: enqueue %s: %w", j.TaskID, pubErr)
	}
	if stErr != nil && !errors.Is(stErr, job.ErrConflict) {
		if stErr = e.statuses.Create(ctx, st); stErr != nil && !errors.Is(stErr, job.ErrConflict) {
			e.log.Warn("enqueue: task status not stored; its worker will create it", "task_id", j.TaskID, "err", stErr)
		}
	}
	if e.marks != nil {
		e.marks(j.TaskID, ack.Stream, ack.Sequence)
	} else if err := e.tasks.MarkTaskPublished(context.WithoutCancel(ctx), j.TaskID, ack.Stream, ack.Sequence); err != nil {
		// The job is queued; an unmarked task is only re-published by the sweeper, a duplicate.
		e.log.Warn("enqueue: could not mark the task published", "task_id", j.TaskID, "err", err)
	}
	return Enqueued{Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// undo removes what an enqueue wrote for a job that was not published: the caller's writes,
// the status if this enqueue stored it, the task row if it recorded it. A task recorded by the
// caller without an Undo stays as it is, status included, for the sweeper to publish.
func (e *Enqueuer) undo(ctx context.Context, q Enqueue, statusStored bool) {
	if q.Recorded && q.Undo == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	taskID := q.Job.TaskID
	if q.Undo != nil {
		q.Undo(ctx)
	}
	if statusStored {
		if err := e.statuses.Delete(ctx, taskID); err != nil {
			e.log.Warn("enqueue: undo task status", "task_id", taskID, "err", err)
		}
	}
	if !q.Recorded {
		if err := e.tasks.DeleteTask(ctx, taskID); err != nil {
			e.log.Warn("enqueue: undo task record", "task_id", taskID, "err", err)
		}
	}
}

// Cancel revokes a queued or running task of tenant, of any kind: the task's record becomes
// REVOKED (its document, if any, cancelled in the same transaction: the record the worker's
// commit checks), then its status REVOKED with message (default "cancelled"), then running
// workers are told at once. A queued task's job is then never started; a running one stops
// within a second. It fails with job.ErrNotFound when tenant has neither a record nor a status
// of the task, and job.ErrConflict when the task already finished.
func (e *Enqueuer) Cancel(ctx context.Context, tenantID, taskID, message string) error {
	if message == "" {
		message = "cancelled"
	}
	st, _, err := e.statuses.Get(ctx, taskID)
	switch {
	case err == nil && st.TenantID != tenantID:
		return fmt.Errorf("jobqueue: cancel %s: %w", taskID, job.ErrNotFound)
	case err == nil && st.State.Terminal() && st.State != job.StateRevoked:
		return fmt.Errorf("jobqueue: cancel %s: already %s: %w", taskID, st.State, job.ErrConflict)
	case err != nil && !errors.Is(err, job.ErrNotFound):
		return fmt.Errorf("jobqueue: cancel %s: %w", taskID, err)
	}
	hasStatus := err == nil
	recErr := e.tasks.CancelTask(ctx, tenantID, taskID)
	switch {
	case errors.Is(recErr, job.ErrNotFound) && hasStatus:
		// A task known only by its live status.
	case recErr != nil:
		return fmt.Errorf("jobqueue: cancel %s: %w", taskID, recErr)
	}
	_, err = e.statuses.Update(ctx, taskID, func(st *job.Status) error {
		if st.State.Terminal() && st.State != job.StateRevoked {
			return job.ErrConflict
		}
		st.State, st.Status = job.StateRevoked, message
		return nil
	})
	switch {
	case errors.Is(err, job.ErrConflict):
		return fmt.Errorf("jobqueue: cancel %s: already finished: %w", taskID, job.ErrConflict)
	case err != nil && !errors.Is(err, job.ErrNotFound):
		return fmt.Errorf("jobqueue: cancel %s: status: %w", taskID, err)
	}
	if e.announce != nil {
		if err := e.announce.Publish(job.CancelSubject(taskID), nil); err != nil {
			e.log.Warn("cancel: announce", "task_id", taskID, "err", err)
		}
	}
	return nil
}
