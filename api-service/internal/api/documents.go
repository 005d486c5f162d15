package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

func documentID(c *gin.Context) (int64, error) {
	id, err := parseInt64(c.Param("id"))
	if err != nil || id <= 0 {
		return 0, errBadRequest("document id must be a positive integer")
	}
	return id, nil
}

func (s *Server) getDocument(c *gin.Context) {
	id, err := documentID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	doc, err := s.docs.GetDocument(c.Request.Context(), tenantOf(c), id)
	if err != nil {
		s.fail(c, storeError(err, "document not found"))
		return
	}
	c.JSON(http.StatusOK, doc)
}

// deleteDocument cancels the document's task if it is still running, then removes the
// document, its chunks and its uploaded bytes.
func (s *Server) deleteDocument(c *gin.Context) {
	ctx := c.Request.Context()
	tenant := tenantOf(c)
	id, err := documentID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	doc, err := s.docs.GetDocument(ctx, tenant, id)
	if err != nil {
		s.fail(c, storeError(err, "document not found"))
		return
	}
	if doc.Status == job.DocQueued || doc.Status == job.DocProcessing {
		if err := s.docs.Cancel(ctx, tenant, id); err != nil && !errors.Is(err, job.ErrConflict) {
			s.fail(c, storeError(err, "document not found"))
			return
		}
		_, _ = s.statuses.Update(ctx, doc.TaskID, func(st *job.Status) error {
			if st.State.Terminal() {
				return job.ErrConflict
			}
			st.State, st.Status = job.StateRevoked, "cancelled: document deleted"
			return nil
		})
		_ = s.nc.Publish(job.CancelSubject(doc.TaskID), nil)
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
	resp := gin.H{"documents": docs}
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
	id, err := documentID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if _, err := s.docs.GetDocument(ctx, tenant, id); err != nil {
		s.fail(c, storeError(err, "document not found"))
		return
	}
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
