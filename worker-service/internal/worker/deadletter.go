package worker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/taskstatus"
)

// deadLetter dead-letters a job whose status is tracked after attempts runs, marking the task
// FAILURE and telling failures (if not nil).
func (w *Worker) deadLetter(ctx context.Context, msg jetstream.Msg, p job.Priority, j *job.Job, tr *taskstatus.Tracker, failures FailureRecorder, attempts int, seq uint64, cause error) {
	if !w.publishDeadLetter(ctx, msg, p, j.Kind, j.TaskID, attempts, seq, cause) {
		return
	}
	reason := cause.Error()
	if err := tr.Update(ctx, func(st *job.Status) error {
		st.State, st.Error, st.Attempts = job.StateFailure, reason, attempts
		st.Status = "failed: dead-lettered"
		return nil
	}); err != nil {
		w.log.Warn("could not record failure status", "task_id", j.TaskID, "err", err)
	}
	if failures != nil {
		if err := failures.JobFailed(ctx, j, reason); err != nil {
			w.log.Warn("could not record failure", "task_id", j.TaskID, "err", err)
		}
	}
	if err := msg.Ack(); err != nil {
		w.log.Warn("ack of dead-lettered job failed", "task_id", j.TaskID, "err", err)
	}
	w.recordTask(ctx, j.TaskID, job.StateFailure, attempts, reason)
}

// deadLetterUndecodable dead-letters a message that is not a valid job. Its kind is the last
// token of its subject (jobs.<priority>.<kind>), its task id the Quire-Task-Id header.
func (w *Worker) deadLetterUndecodable(ctx context.Context, msg jetstream.Msg, p job.Priority, delivery int, seq uint64, cause error) {
	subject := msg.Subject()
	kind := job.Kind(subject[strings.LastIndexByte(subject, '.')+1:])
	if w.publishDeadLetter(ctx, msg, p, kind, msg.Headers().Get(job.HeaderTaskID), delivery, seq, cause) {
		_ = msg.Ack()
	}
}

// publishDeadLetter copies msg to JOBS_DLQ (dlq.<priority>.<kind>) with the failure headers.
// On failure it hands the job back (Nak with a delay) and returns false, so nothing is lost.
func (w *Worker) publishDeadLetter(ctx context.Context, msg jetstream.Msg, p job.Priority, kind job.Kind, taskID string, attempts int, seq uint64, cause error) bool {
	dl := &nats.Msg{Subject: job.DLQSubject(p, kind), Data: msg.Data(), Header: nats.Header{}}
	for k, v := range msg.Headers() {
		if k != job.HeaderMsgID && k != "Nats-Expected-Stream" {
			dl.Header[k] = v
		}
	}
	dl.Header.Set(job.HeaderError, cause.Error())
	dl.Header.Set(job.HeaderAttempts, strconv.Itoa(attempts))
	dl.Header.Set(job.HeaderOriginalSubject, msg.Subject())
	dl.Header.Set(job.HeaderTaskID, taskID)
	dl.Header.Set(job.HeaderDeadLetteredAt, time.Now().UTC().Format(time.RFC3339Nano))
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// One dead letter per stored job message, however often its settling is retried.
	msgID := fmt.Sprintf("%s:%s:%d", taskID, p, seq)
	if _, err := w.js.PublishMsg(pctx, dl, jetstream.WithMsgID(msgID)); err != nil {
		w.log.Error("dead-letter publish failed; job handed back", "task_id", taskID, "err", err)
		_ = msg.NakWithDelay(5 * time.Second)
		return false
	}
	return true
}
