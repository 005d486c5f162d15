package api

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPIDocument is the OpenAPI 3 description of every route New registers. openapi_test.go
// fails when a route is registered without being documented, or documented without being
// registered, and validates the document's examples against its schemas.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns a copy of the API's OpenAPI 3 document (JSON).
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

// serveOpenAPI serves GET /api/v1/openapi.json. It needs no token: the document describes the
// API, not any tenant's data.
func (s *Server) serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", openAPIDocument)
}
