package api

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/quirehq/quire/shared/docstore"
)

// searchRequest is the body of POST /api/v1/agents/{agent_id}/search.
type searchRequest struct {
	Q      string          `json:"q"`
	K      *int            `json:"k"`
	Filter json.RawMessage `json:"filter"`
}

// searchPost answers POST /api/v1/agents/{agent_id}/search {"q","k"?,"filter"?}: the GET
// search, with a filter on the chunks' documents (docstore.Filter) applied inside both
// rankings. A filter that cannot be compiled is a 400 naming its offending part, e.g.
// "filter.$and[1].metadata.year: $gt needs a number or a string".
func (s *Server) searchPost(c *gin.Context) {
	agent, err := agentID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var req searchRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	req.Q = strings.TrimSpace(req.Q)
	if err := checkSearchText(req.Q); err != nil {
		s.fail(c, err)
		return
	}
	k := defaultSearchK
	if req.K != nil {
		if *req.K < 1 || *req.K > maxSearchK {
			s.fail(c, errBadRequest("k must be an integer in 1..50"))
			return
		}
		k = *req.K
	}
	filter, err := docstore.ParseFilter(req.Filter)
	if err != nil {
		if fe, ok := errors.AsType[*docstore.FilterError](err); ok {
			s.fail(c, errBadRequest(fe.Path+": "+fe.Msg))
			return
		}
		s.fail(c, errBadRequest(err.Error()))
		return
	}
	s.answerSearch(c, docstore.SearchQuery{TenantID: tenantOf(c), AgentID: agent, Text: req.Q, K: k, Filter: filter})
}
