package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
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
}

// dlqScanLimit bounds how many dead letters one list request reads looking for the caller's.
const dlqScanLimit = 5000

func (s *Server) dlqStream(c *gin.Context) (jetstream.Stream, bool) {
	st, err := s.js.Stream(c.Request.Context(), job.DLQStream)
	if err != nil {
		s.log.Error("dlq stream", "err", err)
		s.fail(c, errUnavailable)
		return nil, false
	}
	return st, true
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

func toDeadLetter(m *jetstream.RawStreamMsg, j *job.Job) deadLetter {
	d := deadLetter{
		ID: m.Sequence, TaskID: m.Header.Get(job.HeaderTaskID), Error: m.Header.Get(job.HeaderError),
		OriginalSubject: m.Header.Get(job.HeaderOriginalSubject), DeadLetteredAt: m.Header.Get(job.HeaderDeadLetteredAt),
	}
	d.Attempts, _ = strconv.Atoi(m.Header.Get(job.HeaderAttempts))
	if j != nil {
		d.Kind, d.Queue, d.AgentID, d.DocumentID, d.Filename, d.URL = j.Kind, j.Priority, j.AgentID, j.DocumentID, j.Filename, j.URL
	}
	return d
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
	st, ok := s.dlqStream(c)
	if !ok {
		return
	}
	out := []deadLetter{}
	var last uint64
	more := false
	for scanned := 0; scanned < dlqScanLimit; scanned++ {
		m, err := st.GetMsg(c.Request.Context(), seq, jetstream.WithGetMsgSubject(job.DLQSubjects))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			s.log.Error("dlq read", "err", err)
			s.fail(c, errUnavailable)
			return
		}
		seq, last = m.Sequence+1, m.Sequence
		if t, j := tenantOfMessage(m); t == tenant {
			if len(out) == limit {
				more = true
				break
			}
			out = append(out, toDeadLetter(m, j))
		}
		if scanned == dlqScanLimit-1 {
			more = true
		}
	}
	resp := gin.H{"dead_letters": out}
	if more && len(out) > 0 {
		resp["next_cursor"] = strconv.FormatUint(out[len(out)-1].ID, 10)
	} else if more {
		resp["next_cursor"] = strconv.FormatUint(last, 10)
	}
	c.JSON(http.StatusOK, resp)
}

// deadLetterOf loads dead letter :id of the caller's tenant (404 otherwise).
func (s *Server) deadLetterOf(c *gin.Context) (jetstream.Stream, *jetstream.RawStreamMsg, *job.Job, bool) {
	id, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil || id == 0 {
		s.fail(c, errBadRequest("dead letter id must be a positive integer"))
		return nil, nil, nil, false
	}
	st, ok := s.dlqStream(c)
	if !ok {
		return nil, nil, nil, false
	}
	m, err := st.GetMsg(c.Request.Context(), id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		s.fail(c, errNotFound("dead letter not found"))
		return nil, nil, nil, false
	}
	if err != nil {
		s.log.Error("dlq read", "err", err)
		s.fail(c, errUnavailable)
		return nil, nil, nil, false
	}
	t, j := tenantOfMessage(m)
	if t != tenantOf(c) {
		s.fail(c, errNotFound("dead letter not found"))
		return nil, nil, nil, false
	}
	return st, m, j, true
}

// retryDeadLetter re-queues a dead letter on its original subject with its attempts reset:
// the status goes back to PENDING, the document to queued, and the dead letter is removed.
// The re-publish uses Nats-Msg-Id "<task id>:r<dead letter id>", which the duplicate window
// cannot mistake for the first publish.
func (s *Server) retryDeadLetter(c *gin.Context) {
	ctx := c.Request.Context()
	st, m, j, ok := s.deadLetterOf(c)
	if !ok {
		return
	}
	if j == nil {
		s.fail(c, errConflict("this dead letter is not a valid job and cannot be retried; delete it"))
		return
	}
	if j.DocumentID != 0 {
		if _, err := s.docs.GetDocument(ctx, j.TenantID, j.DocumentID); err != nil {
			if errors.Is(err, job.ErrNotFound) {
				s.fail(c, errConflict("the document of this dead letter was deleted; delete the dead letter"))
				return
			}
			s.fail(c, errUnavailable)
			return
		}
		if err := s.docs.SetStatus(ctx, j.DocumentID, job.DocQueued, ""); err != nil {
			s.fail(c, errUnavailable)
			return
		}
	}
	status := &job.Status{
		TaskID: j.TaskID, State: job.StatePending, Status: "re-queued from the dead-letter queue", Total: 100,
		DocumentID: j.DocumentID, Queue: j.Priority, Kind: j.Kind, TenantID: j.TenantID, AgentID: j.AgentID, URL: j.URL,
		CreatedAt: s.now().UTC(),
	}
	if err := s.statuses.Put(ctx, status); err != nil {
		s.fail(c, errUnavailable)
		return
	}
	j.EnqueuedAt = s.now().UTC()
	if err := s.publisher.Publish(ctx, j, j.TaskID+":r"+strconv.FormatUint(m.Sequence, 10)); err != nil {
		s.log.Error("dlq retry: publish", "task_id", j.TaskID, "err", err)
		s.fail(c, errUnavailable)
		return
	}
	if err := st.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		s.log.Warn("dlq retry: remove dead letter", "task_id", j.TaskID, "err", err)
	}
	s.log.Info("dead letter re-queued", "task_id", j.TaskID, "dead_letter", m.Sequence)
	c.JSON(http.StatusAccepted, gin.H{"id": m.Sequence, "task_id": j.TaskID, "status": "queued", "message": "job re-queued with its attempts reset"})
}

// deleteDeadLetter purges a dead letter and the uploaded bytes it kept.
func (s *Server) deleteDeadLetter(c *gin.Context) {
	st, m, j, ok := s.deadLetterOf(c)
	if !ok {
		return
	}
	if err := st.DeleteMsg(c.Request.Context(), m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		s.fail(c, errUnavailable)
		return
	}
	if j != nil && j.Object != "" {
		s.removeObject(j.Object)
	}
	c.JSON(http.StatusOK, gin.H{"id": m.Sequence, "status": "deleted", "deleted_at": time.Now().UTC()})
}
