package api

import (
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/quirehq/quire/shared/docstore"
)

// parseMetadata validates a submission's metadata (docstore.ParseMetadata): nil when absent,
// 400 naming the problem otherwise.
func parseMetadata(raw []byte) (json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	md, err := docstore.ParseMetadata(raw)
	if err != nil {
		return nil, errBadRequest(strings.TrimPrefix(err.Error(), docstore.ErrBadMetadata.Error()+": "))
	}
	return md, nil
}

// readMetadataField reads the multipart form field metadata of an upload.
func readMetadataField(p *multipart.Part) (json.RawMessage, error) {
	b, err := io.ReadAll(io.LimitReader(p, docstore.MaxMetadataBytes+1))
	if err != nil {
		return nil, err
	}
	return parseMetadata([]byte(strings.TrimSpace(string(b))))
}

// patchDocumentRequest is the body of PATCH /api/v1/documents/{id}.
type patchDocumentRequest struct {
	Metadata json.RawMessage `json:"metadata"`
}

// patchDocument replaces a document's metadata ({"metadata": {...}}) without processing it
// again; search filters see the new metadata at once. The answer is the updated document.
func (s *Server) patchDocument(c *gin.Context) {
	id, err := documentID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var req patchDocumentRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if len(req.Metadata) == 0 || string(req.Metadata) == "null" {
		s.fail(c, errBadRequest(`metadata is required: {"metadata": {...}}`))
		return
	}
	md, err := parseMetadata(req.Metadata)
	if err != nil {
		s.fail(c, err)
		return
	}
	doc, err := s.docs.SetMetadata(c.Request.Context(), tenantOf(c), id, md)
	if err != nil {
		s.fail(c, storeError(err, "document not found"))
		return
	}
	c.JSON(http.StatusOK, s.documentView(doc))
}
