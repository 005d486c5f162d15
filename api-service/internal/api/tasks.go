package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

// taskResponse is the task status of DESIGN §3.
type taskResponse struct {
	TaskID     string           `json:"task_id"`
	State      job.State        `json:"state"`
	Status     string           `json:"status"`
	Current    int              `json:"current"`
	Total      int              `json:"total"`
	DocumentID int64            `json:"document_id,omitempty"`
	ChunkCount int              `json:"chunk_count"`
	Attempts   int              `json:"attempts"`
	Queue      job.Priority     `json:"queue"`
	Kind       job.Kind         `json:"kind,omitempty"`
	Error      string           `json:"error,omitempty"`
	URL        string           `json:"url,omitempty"`
	Crawl      *job.CrawlCounts `json:"crawl,omitempty"`
	CreatedAt  time.Time        `json:"created_at"`
	UpdatedAt  time.Time        `json:"updated_at"`
}

func taskFromStatus(st *job.Status) taskResponse {
	return taskResponse{
		TaskID: st.TaskID, State: st.State, Status: st.Status, Current: st.Current, Total: st.Total,
		DocumentID: st.DocumentID, ChunkCount: st.ChunkCount, Attempts: st.Attempts, Queue: st.Queue,
		Kind: st.Kind, Error: st.Error, URL: st.URL, Crawl: st.Crawl, CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt,
	}
}

// lookupTask returns the live status of a task of the caller's tenant or, once it has expired,
// one derived from the task's record (and its document's, for a document's current task).
// Another tenant's task is not found.
func (s *Server) lookupTask(ctx context.Context, tenant, taskID string) (*job.Status, error) {
	st, _, err := s.statuses.Get(ctx, taskID)
	if err == nil {
		if st.TenantID != tenant {
			return nil, errNotFound("task not found")
		}
		return st, nil
	}
	if !errors.Is(err, job.ErrNotFound) {
		s.log.Error("task status lookup", "task_id", taskID, "err", err)
		return nil, errUnavailable
	}
	t, doc, err := s.docs.GetTask(ctx, tenant, taskID)
	if errors.Is(err, job.ErrNotFound) {
		return nil, errNotFound("task not found")
	}
	if err != nil {
		s.log.Error("task record lookup", "task_id", taskID, "err", err)
		return nil, errUnavailable
	}
	if doc != nil {
		st := statusOfDocument(doc)
		st.Attempts = t.Attempts
		return st, nil
	}
	return statusOfTask(t), nil
}

// statusOfTask derives a task status from its record alone, for a task without a document
// (or one whose document has moved on to a newer task) whose live status has expired.
func statusOfTask(t *docstore.Task) *job.Status {
	st := &job.Status{
		TaskID: t.TaskID, State: t.State, Status: taskStateWords[t.State], Total: 100, DocumentID: t.DocumentID,
		Attempts: t.Attempts, Queue: t.Priority, Kind: t.Kind, Error: t.Error, CreatedAt: t.CreatedAt,
		UpdatedAt: t.CreatedAt, TenantID: t.TenantID,
	}
	if t.FinishedAt != nil {
		st.UpdatedAt = *t.FinishedAt
	} else if t.PublishedAt != nil {
		st.UpdatedAt = *t.PublishedAt
	}
	if j, err := t.Job(); err == nil {
		st.AgentID, st.URL = j.AgentID, j.URL
	}
	if st.State.Terminal() {
		st.Current = 100
	}
	return st
}

// taskStateWords are the status messages of tasks answered from their record, in the words of
// document statuses.
var taskStateWords = map[job.State]string{
	job.StatePending: job.DocQueued, job.StateProgress: job.DocProcessing, job.StateRetry: job.DocProcessing,
	job.StateSuccess: job.DocCompleted, job.StateFailure: job.DocFailed, job.StateRevoked: job.DocCancelled,
}

// statusOfDocument derives a task status from its document record, for a task whose live
// status has expired.
func statusOfDocument(doc *docstore.Document) *job.Status {
	st := &job.Status{
		TaskID: doc.TaskID, State: job.StateOfDocument(doc.Status), Status: doc.Status, Total: 100,
		DocumentID: doc.ID, ChunkCount: doc.ChunkCount, Queue: job.Priority(doc.Priority), Kind: doc.Kind,
		Error: doc.Error, URL: doc.URL, CreatedAt: doc.CreatedAt, UpdatedAt: doc.UpdatedAt, TenantID: doc.TenantID,
		AgentID: doc.AgentID,
	}
	if st.State.Terminal() {
		st.Current = 100
	}
	return st
}

func (s *Server) getTask(c *gin.Context) {
	st, err := s.lookupTask(c.Request.Context(), tenantOf(c), c.Param("task_id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, taskFromStatus(st))
}

// cancelTask serves DELETE /api/v1/tasks/{task_id}: [Server.cancelTaskOf] for the caller's
// tenant.
func (s *Server) cancelTask(c *gin.Context) {
	taskID := c.Param("task_id")
	if err := s.cancelTaskOf(c.Request.Context(), tenantOf(c), taskID); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"task_id": taskID, "status": "cancelled", "message": "task cancelled; a running job stops within a second"})
}

// cancelTaskOf revokes a queued or running task of tenant, of any kind, through the one
// cancel path (jobqueue.Enqueuer.Cancel): the task's record is revoked first, its document
// cancelled with it (the record the worker's commit checks), then the status becomes REVOKED
// and running workers are told at once. It returns an *httpError: 404 for no such task of
// tenant, 409 for a finished one, 503 when NATS or PostgreSQL fails. The JSON API and the
// operator dashboard both cancel through it.
func (s *Server) cancelTaskOf(ctx context.Context, tenant, taskID string) error {
	st, err := s.lookupTask(ctx, tenant, taskID)
	if err != nil {
		return err
	}
	if st.State.Terminal() {
		return errConflict("task already finished (" + string(st.State) + ")")
	}
	err = s.taskQueue.Cancel(ctx, tenant, taskID, "cancelled")
	switch {
	case errors.Is(err, job.ErrConflict):
		return errConflict("task already finished")
	case errors.Is(err, job.ErrNotFound):
		return errNotFound("task not found")
	case err != nil:
		s.log.Error("cancel", "task_id", taskID, "err", err)
		return errUnavailable
	}
	s.log.Info("task cancelled", "task_id", taskID)
	return nil
}
