package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/quirehq/quire/shared/docstore"
)

const (
	maxSearchQueryChars = 1000
	maxSearchK          = 50
	defaultSearchK      = 10
	// searchEmbedTimeout bounds embedding the query; past it the search answers from full
	// text alone rather than keep the client waiting on the embeddings endpoint.
	searchEmbedTimeout = 10 * time.Second
)

// searchResult is one hit of GET /api/v1/agents/{agent_id}/search.
type searchResult struct {
	ChunkID    int64   `json:"chunk_id"`
	DocumentID int64   `json:"document_id"`
	Filename   string  `json:"filename"`
	URL        string  `json:"url"`
	Title      string  `json:"title"`
	Page       int     `json:"page"`
	Heading    string  `json:"heading"`
	Ordinal    int     `json:"ordinal"`
	Content    string  `json:"content"`
	Score      float64 `json:"score"`

	// Location is where the chunk sits ({"slide":2}, {"sheet":"Sales","row_start":2,
	// "row_end":41}, {"page":3}, {"chapter":4}); null when its document has no positions.
	Location json.RawMessage `json:"location"`
	// Metadata is the document's metadata object.
	Metadata json.RawMessage `json:"metadata"`
}

// search answers GET /api/v1/agents/{agent_id}/search?q=...&k=10 with the caller's chunks of
// that agent that best match q: full-text and vector rankings fused by reciprocal rank fusion
// (docstore.Store.Search). The query is embedded with the same provider and model as the
// workers'. If embedding fails (endpoint down, timeout), the answer comes from full text alone
// and says so in "ranking".
func (s *Server) search(c *gin.Context) {
	agent, err := agentID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	q := strings.TrimSpace(c.Query("q"))
	if err := checkSearchText(q); err != nil {
		s.fail(c, err)
		return
	}
	k := defaultSearchK
	if v := c.Query("k"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || strings.Trim(v, "0123456789") != "" || n < 1 || n > maxSearchK {
			s.fail(c, errBadRequest("k must be an integer in 1..50"))
			return
		}
		k = n
	}
	s.answerSearch(c, docstore.SearchQuery{TenantID: tenantOf(c), AgentID: agent, Text: q, K: k})
}

// checkSearchText validates a search's q.
func checkSearchText(q string) error {
	switch {
	case q == "":
		return errBadRequest("q is required")
	case !utf8.ValidString(q):
		return errBadRequest("q is not valid UTF-8")
	case strings.ContainsRune(q, 0):
		return errBadRequest("q contains a NUL character")
	case utf8.RuneCountInString(q) > maxSearchQueryChars:
		return errBadRequest("q is longer than 1000 characters")
	}
	return nil
}

// answerSearch runs query and writes the answer of both search routes.
func (s *Server) answerSearch(c *gin.Context, query docstore.SearchQuery) {
	ctx := c.Request.Context()
	hits, ranking, err := s.searchChunks(ctx, query)
	if err != nil {
		if ctx.Err() == nil {
			s.fail(c, err)
		}
		return // on a context error, the client went away
	}
	if !s.cfg.NoUsage {
		if err := s.docs.RecordSearch(ctx, query.TenantID, query.AgentID); err != nil {
			s.log.Error("search: count the search", "err", err)
			s.fail(c, errUnavailable)
			return
		}
	}
	results := make([]searchResult, len(hits))
	for i, h := range hits {
		results[i] = searchResult{
			ChunkID: h.ChunkID, DocumentID: h.DocumentID, Filename: h.Filename, URL: h.URL, Title: h.Title,
			Page: h.Page, Heading: h.Heading, Location: h.Location, Ordinal: h.Ordinal, Content: h.Content, Score: h.Score,
			Metadata: h.Metadata,
		}
	}
	c.JSON(http.StatusOK, gin.H{"query": query.Text, "k": query.K, "ranking": ranking, "results": results})
}

// searchChunks embeds query.Text (when an embedder is configured) and runs the search,
// returning the hits and the ranking used: "hybrid", or "full_text" when there is no embedder
// or embedding the query failed. Errors are *httpError values (400 for a query the store
// refuses, 503 otherwise) or ctx's error. The JSON API and the operator dashboard both search
// through it.
func (s *Server) searchChunks(ctx context.Context, query docstore.SearchQuery) ([]docstore.SearchHit, string, error) {
	ranking := "hybrid"
	if s.embedder == nil {
		ranking = "full_text"
	} else {
		ectx, cancel := context.WithTimeout(ctx, searchEmbedTimeout)
		vecs, err := s.embedder.Embed(ectx, []string{query.Text})
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil, "", ctx.Err()
		case err != nil || len(vecs) != 1:
			s.log.Warn("search: embedding the query failed; answering from full text", "err", err)
			ranking = "full_text"
		default:
			query.Embedding, query.Model = vecs[0], s.embedder.Model()
		}
	}
	hits, err := s.docs.Search(ctx, query)
	if err != nil {
		if fe, ok := errors.AsType[*docstore.FilterError](err); ok {
			return nil, "", errBadRequest(fe.Path + ": " + fe.Msg)
		}
		if errors.Is(err, docstore.ErrBadQuery) {
			return nil, "", errBadRequest(err.Error())
		}
		s.log.Error("search failed", "err", err)
		return nil, "", storeError(err, "")
	}
	return hits, ranking, nil
}
