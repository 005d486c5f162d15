package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/quirehq/quire/shared/job"
)

// httpError is an error with the status and code the client sees.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errBadRequest(msg string) error { return &httpError{http.StatusBadRequest, "bad_request", msg} }
func errNotFound(msg string) error   { return &httpError{http.StatusNotFound, "not_found", msg} }
func errConflict(msg string) error   { return &httpError{http.StatusConflict, "conflict", msg} }

var (
	errInternal    = &httpError{http.StatusInternalServerError, "internal", "internal error"}
	errUnavailable = &httpError{http.StatusServiceUnavailable, "unavailable", "a dependency (NATS or PostgreSQL) is unavailable; nothing was stored, try again"}
)

// errorBody is the one error shape of the API.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// fail writes err as the API's JSON error. Errors that are not client errors are logged and
// reported without internals.
func (s *Server) fail(c *gin.Context, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, job.ErrNotFound):
		he = errNotFound("not found").(*httpError)
	case errors.Is(err, job.ErrConflict):
		he = errConflict("conflict").(*httpError)
	default:
		s.log.Error("request failed", "method", c.Request.Method, "route", c.FullPath(), "err", err)
		he = errInternal
	}
	var body errorBody
	body.Error.Code, body.Error.Message = he.code, he.msg
	if he.status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="quire"`)
	}
	c.AbortWithStatusJSON(he.status, body)
}
