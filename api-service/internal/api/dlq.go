package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
)

// deadLetter is one message of JOBS_DLQ as the API shows it; its id is the stream sequence.
type deadLetter struct {
	ID              uint64       `json:"id"`
	TaskID          string       `json:"task_id"`
	Kind            job.Kind     `json:"kind"`
	Queue           job.Priority `json:"queue"`
	AgentID         string       `json:"agent_id"`
	DocumentID      int64        `json:"document_id,omitempty"`
	Filename        string       `json:"filename,omitempty"`
	URL             string       `json:"url,omitempty"`
	Error           string       `json:"error"`
	Attempts        int          `json:"attempts"`
	OriginalSubject string       `json:"original_subject"`
	DeadLetteredAt  string       `json:"dead_lettered_at,omitempty"`
	// TenantID is shown only to the operator (the dashboard), never in the tenant's JSON.
	TenantID string `json:"-"`
}

// dlqScanLimit bounds how many dead letters one list request reads looking for the caller's.
const dlqScanLimit = 5000

// dlqStreamOf returns the JOBS_DLQ stream, or errUnavailable.
func (s *Server) dlqStreamOf(ctx context.Context) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, job.DLQStream)
	if err != nil {
		s.log.Error("dlq stream", "err", err)
		return nil, errUnavailable
	}
	return st, nil
}

// tenantOfMessage reads the tenant of a dead letter: its header, else its job body.
func tenantOfMessage(m *jetstream.RawStreamMsg) (string, *job.Job) {
	j, _ := job.Decode(m.Data)
	if t := m.Header.Get(job.HeaderTenantID); t != "" {
		return t, j
	}
	if j != nil {
		return j.TenantID, j
	}
	return "", nil
}

func toDeadLetter(m *jetstream.RawStreamMsg, tenant string, j *job.Job) deadLetter {
	d := deadLetter{
		ID: m.Sequence, TaskID: m.Header.Get(job.HeaderTaskID), Error: m.Header.Get(job.HeaderError),
		OriginalSubject: m.Header.Get(job.HeaderOriginalSubject), DeadLetteredAt: m.Header.Get(job.HeaderDeadLetteredAt),
		TenantID: tenant,
	}
	d.Attempts, _ = strconv.Atoi(m.Header.Get(job.HeaderAttempts))
	if j != nil {
		d.Kind, d.Queue, d.AgentID, d.DocumentID, d.Filename, d.URL = j.Kind, j.Priority, j.AgentID, j.DocumentID, j.Filename, j.URL
	}
	return d
}

// scanDeadLetters reads the dead letters of st from sequence from on, oldest first, and returns
// up to limit of those keep accepts. It reads at most dlqScanLimit messages; more reports that
// the scan stopped before the end of the stream (a page was filled, or the bound was reached),
// and last is the sequence of the last message read. Both the tenant's JSON list and the
// operator dashboard's cross-tenant list read through it.
func (s *Server) scanDeadLetters(ctx context.Context, st jetstream.Stream, from uint64, limit int, keep func(d *deadLetter) bool) (out []deadLetter, more bool, last uint64, err error) {
	out = []deadLetter{}
	seq := max(from, 1)
	for scanned := 0; scanned < dlqScanLimit; scanned++ {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(job.DLQSubjects))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			s.log.Error("dlq read", "err", err)
			return nil, false, 0, errUnavailable
		}
		seq, last = m.Sequence+1, m.Sequence
		t, j := tenantOfMessage(m)
		if d := toDeadLetter(m, t, j); keep(&d) {
			if len(out) == limit {
				more = true
				break
			}
			out = append(out, d)
		}
		if scanned == dlqScanLimit-1 {
			more = true
		}
	}
	return out, more, last, nil
}

// listDeadLetters pages through the caller's dead letters, oldest first; `cursor` is the id to
// continue after.
func (s *Server) listDeadLetters(c *gin.Context) {
	tenant := tenantOf(c)
	limit := 50
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			s.fail(c, errBadRequest("limit must be 1..500"))
			return
		}
		limit = n
	}
	seq := uint64(1)
	if v := c.Query("cursor"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.fail(c, errBadRequest("cursor is not valid"))
			return
		}
		seq = n + 1
	}
	st, err := s.dlqStreamOf(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	out, more, last, err := s.scanDeadLetters(c.Request.Context(), st, seq, limit, func(d *deadLetter) bool { return d.TenantID == tenant })
	if err != nil {
		s.fail(c, err)
		return
	}
	resp := gin.H{"dead_letters": out}
	if more && len(out) > 0 {
		resp["next_cursor"] = strconv.FormatUint(out[len(out)-1].ID, 10)
	} else if more {
		resp["next_cursor"] = strconv.FormatUint(last, 10)
	}
	c.JSON(http.StatusOK, resp)
}

// loadDeadLetter reads dead letter id of any tenant: its message, tenant and job (nil when the
// body is not a valid job). Not found is a 404 *httpError.
func (s *Server) loadDeadLetter(ctx context.Context, st jetstream.Stream, id uint64) (*jetstream.RawStreamMsg, string, *job.Job, error) {
	m, err := st.GetMsg(ctx, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, "", nil, errNotFound("dead letter not found")
	}
	if err != nil {
		s.log.Error("dlq read", "err", err)
		return nil, "", nil, errUnavailable
	}
	t, j := tenantOfMessage(m)
	return m, t, j, nil
}

// deadLetterOf loads dead letter :id of the caller's tenant (404 otherwise).
func (s *Server) deadLetterOf(c *gin.Context) (jetstream.Stream, *jetstream.RawStreamMsg, *job.Job, bool) {
	id, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil || id == 0 {
		s.fail(c, errBadRequest("dead letter id must be a positive integer"))
		return nil, nil, nil, false
	}
	st, err := s.dlqStreamOf(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return nil, nil, nil, false
	}
	m, t, j, err := s.loadDeadLetter(c.Request.Context(), st, id)
	if err != nil {
		s.fail(c, err)
		return nil, nil, nil, false
	}
	if t != tenantOf(c) {
		s.fail(c, errNotFound("dead letter not found"))
		return nil, nil, nil, false
	}
	return st, m, j, true
}

// retryDeadLetter serves POST /api/v1/dlq/{id}/retry: [Server.requeueDeadLetter] on a dead
// letter of the caller's tenant.
func (s *Server) retryDeadLetter(c *gin.Context) {
	st, m, j, ok := s.deadLetterOf(c)
	if !ok {
		return
	}
	if err := s.requeueDeadLetter(c.Request.Context(), st, m, j); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"id": m.Sequence, "task_id": j.TaskID, "status": "queued", "message": "job re-queued with its attempts reset"})
}

// requeueDeadLetter re-queues dead letter m (job j, of any kind) on its original subject with
// its attempts reset: the task goes back to PENDING and unpublished (its document, if any, to
// queued), the status to PENDING, the job is published, and the dead letter is removed. The
// re-publish uses Nats-Msg-Id "<task id>:r<dead letter id>", which the duplicate window cannot
// mistake for the first publish. It returns an *httpError: 409 when the dead letter is not a
// valid job or its document was deleted, 503 when NATS or PostgreSQL fails.
func (s *Server) requeueDeadLetter(ctx context.Context, st jetstream.Stream, m *jetstream.RawStreamMsg, j *job.Job) error {
	if j == nil {
		return errConflict("this dead letter is not a valid job and cannot be retried; delete it")
	}
	if j.DocumentID != 0 {
		if _, err := s.docs.GetDocument(ctx, j.TenantID, j.DocumentID); err != nil {
			if errors.Is(err, job.ErrNotFound) {
				return errConflict("the document of this dead letter was deleted; delete the dead letter")
			}
			return errUnavailable
		}
	}
	// The task's record goes back to PENDING: were the publish lost, the sweeper would
	// re-publish it. A dead letter without a record (a task from before records) is re-queued
	// with its document alone.
	recorded := true
	switch err := s.docs.RequeueTask(ctx, j.TenantID, j.TaskID); {
	case errors.Is(err, job.ErrConflict):
		return errConflict("the document of this dead letter was deleted; delete the dead letter")
	case errors.Is(err, job.ErrNotFound):
		recorded = false
		if j.DocumentID != 0 {
			if err := s.docs.SetStatus(ctx, j.DocumentID, job.DocQueued, ""); err != nil {
				return errUnavailable
			}
		}
	case err != nil:
		s.log.Error("dlq retry: requeue task", "task_id", j.TaskID, "err", err)
		return errUnavailable
	}
	_, err := s.taskQueue.Enqueue(ctx, jobqueue.Enqueue{
		Job: j, Recorded: recorded, MsgID: j.TaskID + ":r" + strconv.FormatUint(m.Sequence, 10),
		Message: "re-queued from the dead-letter queue", Replace: true,
	})
	if err != nil {
		s.log.Error("dlq retry: publish", "task_id", j.TaskID, "err", err)
		return errUnavailable
	}
	if err := st.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		s.log.Warn("dlq retry: remove dead letter", "task_id", j.TaskID, "err", err)
	}
	s.log.Info("dead letter re-queued", "task_id", j.TaskID, "dead_letter", m.Sequence)
	return nil
}

// deleteDeadLetter serves DELETE /api/v1/dlq/{id}: [Server.purgeDeadLetter] on a dead letter
// of the caller's tenant.
func (s *Server) deleteDeadLetter(c *gin.Context) {
	st, m, j, ok := s.deadLetterOf(c)
	if !ok {
		return
	}
	if err := s.purgeDeadLetter(c.Request.Context(), st, m, j); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": m.Sequence, "status": "deleted", "deleted_at": time.Now().UTC()})
}

// purgeDeadLetter removes dead letter m and the uploaded bytes its job j kept (j may be nil).
func (s *Server) purgeDeadLetter(ctx context.Context, st jetstream.Stream, m *jetstream.RawStreamMsg, j *job.Job) error {
	if err := st.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		s.log.Error("dlq purge", "dead_letter", m.Sequence, "err", err)
		return errUnavailable
	}
	if j != nil && j.Object != "" {
		s.removeObject(j.Object)
	}
	return nil
}
