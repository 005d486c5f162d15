package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
)

func documentID(c *gin.Context) (int64, error) {
	id, err := parseInt64(c.Param("id"))
	if err != nil || id <= 0 {
		return 0, errBadRequest("document id must be a positive integer")
	}
	return id, nil
}

// documentOf loads document :id of the caller's tenant, answering 400 or 404 itself when it
// cannot.
func (s *Server) documentOf(c *gin.Context) (*docstore.Document, bool) {
	id, err := documentID(c)
	if err != nil {
		s.fail(c, err)
		return nil, false
	}
	doc, err := s.docs.GetDocument(c.Request.Context(), tenantOf(c), id)
	if err != nil {
		s.fail(c, storeError(err, "document not found"))
		return nil, false
	}
	return doc, true
}

func (s *Server) getDocument(c *gin.Context) {
	doc, ok := s.documentOf(c)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, s.documentView(doc))
}

// documentView is a document as the API shows it.
type documentView struct {
	*docstore.Document
	// StaleEmbeddings: the document's chunks were embedded with another model than the one
	// search uses now; POST /api/v1/documents/{id}/reindex re-embeds them.
	StaleEmbeddings bool `json:"stale_embeddings,omitempty"`
}

func (s *Server) documentView(d *docstore.Document) documentView {
	v := documentView{Document: d}
	if s.embedder != nil && d.Status == job.DocCompleted && d.ChunkCount > 0 && d.EmbeddingModel != s.embedder.Model() {
		v.StaleEmbeddings = true
	}
	return v
}

// reindexDocument re-embeds a completed document's chunks with the current embeddings model,
// without re-uploading or re-extracting it: the document gets a new task, queued on high.
func (s *Server) reindexDocument(c *gin.Context) {
	ctx := c.Request.Context()
	tenant := tenantOf(c)
	doc, ok := s.documentOf(c)
	if !ok {
		return
	}
	id := doc.ID
	if doc.Kind == job.KindCrawl {
		s.fail(c, errConflict("a crawl has no chunks of its own; re-index its pages"))
		return
	}
	taskID := uuid.Must(uuid.NewV7()).String()
	c.Set(ctxTaskID, taskID)
	if err := s.docs.Requeue(ctx, tenant, id, taskID, string(job.PriorityHigh)); err != nil {
		if errors.Is(err, job.ErrConflict) {
			s.fail(c, errConflict("only a completed document can be re-indexed; this one is "+doc.Status))
			return
		}
		s.fail(c, storeError(err, "document not found"))
		return
	}
	// Requeue recorded the task; a job that is not published gives the document back to its
	// previous task.
	j := &job.Job{
		TaskID: taskID, Kind: job.KindReindex, TenantID: tenant, AgentID: doc.AgentID, DocumentID: id,
		Priority: job.PriorityHigh, Filename: doc.Filename, URL: doc.URL,
	}
	_, err := s.taskQueue.Enqueue(ctx, jobqueue.Enqueue{Job: j, Recorded: true, Message: "queued: re-embedding",
		Undo: func(ctx context.Context) {
			if err := s.docs.RestorePage(ctx, doc, taskID); err != nil {
				s.log.Error("reindex: restore document", "document_id", id, "err", err)
			}
		}})
	if err != nil {
		s.log.Error("reindex: publish", "task_id", taskID, "err", err)
		s.fail(c, errUnavailable)
		return
	}
	model := ""
	if s.embedder != nil {
		model = " with " + s.embedder.Model()
	}
	c.JSON(http.StatusAccepted, acceptedResponse{
		ID: id, TaskID: taskID, Status: job.DocQueued, Filename: doc.Filename, URL: doc.URL,
		Message:        "re-embedding the document's chunks" + model,
		ProcessingNote: "poll GET /api/v1/tasks/" + taskID + " for progress",
	})
}

// deleteDocument cancels the document's task if it is still running, then removes the
// document, its chunks and its uploaded bytes.
func (s *Server) deleteDocument(c *gin.Context) {
	ctx := c.Request.Context()
	tenant := tenantOf(c)
	doc, ok := s.documentOf(c)
	if !ok {
		return
	}
	id := doc.ID
	if doc.Status == job.DocQueued || doc.Status == job.DocProcessing {
		err := s.taskQueue.Cancel(ctx, tenant, doc.TaskID, "cancelled: document deleted")
		if err != nil && !errors.Is(err, job.ErrConflict) && !errors.Is(err, job.ErrNotFound) {
			s.log.Error("delete document: cancel its task", "task_id", doc.TaskID, "err", err)
			s.fail(c, errUnavailable)
			return
		}
	}
	if err := s.docs.DeleteDocument(ctx, tenant, id); err != nil {
		s.fail(c, storeError(err, "document not found"))
		return
	}
	s.removeObject(doc.TaskID)
	c.JSON(http.StatusOK, gin.H{"id": id, "status": "deleted"})
}

func (s *Server) listDocuments(c *gin.Context) {
	agent, err := agentID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	f := docstore.ListFilter{TenantID: tenantOf(c), AgentID: agent, Status: c.Query("status")}
	switch f.Status {
	case "", job.DocQueued, job.DocProcessing, job.DocCompleted, job.DocFailed, job.DocCancelled:
	default:
		s.fail(c, errBadRequest("status must be queued, processing, completed, failed or cancelled"))
		return
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			s.fail(c, errBadRequest("limit must be 1..500"))
			return
		}
		f.Limit = n
	}
	if v := c.Query("cursor"); v != "" {
		n, err := parseInt64(v)
		if err != nil || n < 1 {
			s.fail(c, errBadRequest("cursor is not valid"))
			return
		}
		f.Before = n
	}
	docs, err := s.docs.ListDocuments(c.Request.Context(), f)
	if err != nil {
		s.fail(c, storeError(err, ""))
		return
	}
	if docs == nil {
		docs = []*docstore.Document{}
	}
	views := make([]documentView, len(docs))
	for i, d := range docs {
		views[i] = s.documentView(d)
	}
	resp := gin.H{"documents": views}
	limit := f.Limit
	if limit == 0 {
		limit = 50
	}
	if len(docs) == limit {
		resp["next_cursor"] = strconv.FormatInt(docs[len(docs)-1].ID, 10)
	}
	c.JSON(http.StatusOK, resp)
}

func (s *Server) listChunks(c *gin.Context) {
	ctx := c.Request.Context()
	tenant := tenantOf(c)
	doc, ok := s.documentOf(c)
	if !ok {
		return
	}
	id := doc.ID
	after := -1
	if v := c.Query("cursor"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.fail(c, errBadRequest("cursor is not valid"))
			return
		}
		after = n
	}
	limit := 100
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.fail(c, errBadRequest("limit must be 1..1000"))
			return
		}
		limit = n
	}
	chunks, err := s.docs.Chunks(ctx, tenant, id, after, limit)
	if err != nil {
		s.fail(c, storeError(err, ""))
		return
	}
	if chunks == nil {
		chunks = []docstore.ChunkRow{}
	}
	resp := gin.H{"chunks": chunks}
	if len(chunks) == limit {
		resp["next_cursor"] = strconv.Itoa(chunks[len(chunks)-1].Ordinal)
	}
	c.JSON(http.StatusOK, resp)
}

// storeError maps a store error: not found → 404 with msg, anything else → 503.
func storeError(err error, notFound string) error {
	if errors.Is(err, job.ErrNotFound) {
		return errNotFound(notFound)
	}
	if errors.Is(err, job.ErrConflict) {
		return errConflict(err.Error())
	}
	return errUnavailable
}
