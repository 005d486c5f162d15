package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

// Limits of the webpage and crawl requests.
const (
	// maxURLRequestBytes caps the JSON body of a webpage or crawl request.
	maxURLRequestBytes = 64 << 10
	// maxURLLength caps the submitted URL.
	maxURLLength = 8 << 10

	defaultCrawlPages = 50
	maxCrawlPages     = 1000
	defaultCrawlDepth = 2
	maxCrawlDepth     = 10
)

// urlSubmission holds the fields a webpage and a crawl request share.
type urlSubmission struct {
	URL         string          `json:"url"`
	RunAt       string          `json:"run_at"`
	Metadata    json.RawMessage `json:"metadata"`
	CallbackURL string          `json:"callback_url"`
}

type webpageRequest struct {
	urlSubmission
	Priority string `json:"priority"`
}

type crawlRequest struct {
	urlSubmission
	MaxPages *int `json:"max_pages"`
	MaxDepth *int `json:"max_depth"`
}

// checkedURLSubmission is a urlSubmission that passed checkURLSubmission.
type checkedURLSubmission struct {
	url      string
	metadata json.RawMessage
	callback string
	runAt    time.Time
}

// checkURLSubmission checks the shared fields of a webpage or crawl request, then the
// tenant's quota and the NATS connection; on false it has answered the request.
func (s *Server) checkURLSubmission(c *gin.Context, tenant string, req urlSubmission) (checkedURLSubmission, bool) {
	var out checkedURLSubmission
	var err error
	if out.url, err = checkPageURL(req.URL); err == nil {
		if out.metadata, err = parseMetadata(req.Metadata); err == nil {
			if out.callback, err = s.checkCallbackURL(c.Request.Context(), tenant, req.CallbackURL); err == nil {
				out.runAt, err = s.parseRunAt(req.RunAt)
			}
		}
	}
	if err != nil {
		s.fail(c, err)
		return out, false
	}
	if !s.checkQuota(c, tenant, 1) {
		return out, false
	}
	if !s.nc.IsConnected() {
		s.fail(c, errUnavailable)
		return out, false
	}
	return out, true
}

// crawlResponse is the 202 answer to a crawl: the crawl task and the bounds it runs with.
type crawlResponse struct {
	acceptedResponse
	MaxPages int `json:"max_pages"`
	MaxDepth int `json:"max_depth"`
}

// webpage accepts {"url","priority"?}: one web page to fetch, extract and store like a
// document (priority high unless asked). The answer is the upload's 202 with the url.
func (s *Server) webpage(c *gin.Context) {
	tenant := tenantOf(c)
	agent, err := agentID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var req webpageRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	priority := job.PriorityHigh
	if strings.TrimSpace(req.Priority) != "" {
		if priority, err = job.ParsePriority(req.Priority); err != nil {
			s.fail(c, errBadRequest("priority must be high, medium or low"))
			return
		}
	}
	sub, ok := s.checkURLSubmission(c, tenant, req.urlSubmission)
	if !ok {
		return
	}
	pageURL, metadata, callback, runAt := sub.url, sub.metadata, sub.callback, sub.runAt
	taskID := uuid.Must(uuid.NewV7()).String()
	c.Set(ctxTaskID, taskID)
	doc := &docstore.Document{
		TenantID: tenant, AgentID: agent, Kind: job.KindWebpage, URL: pageURL, TaskID: taskID, Priority: string(priority),
		Metadata: metadata,
	}
	j := &job.Job{TaskID: taskID, Kind: job.KindWebpage, TenantID: tenant, AgentID: agent, Priority: priority, URL: pageURL,
		CallbackURL: callback}
	if err := s.enqueueAt(c.Request.Context(), doc, j, runAt); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, acceptedResponse{
		ID: doc.ID, TaskID: taskID, Status: job.DocQueued, URL: pageURL,
		Message:        "web page accepted for processing" + heldNote(runAt),
		ProcessingNote: "poll GET /api/v1/tasks/" + taskID + " for progress",
		RunAt:          runAtOrNil(runAt),
	})
}

// crawl accepts {"url","max_pages"?,"max_depth"?}: a same-site crawl from url on the low
// queue that fans out one webpage job per page (also on low). max_pages defaults to 50 and is
// capped at 1000, max_depth defaults to 2 and is capped at 10; values above a cap are
// lowered to it (the answer says what the crawl runs with), values below 1 are refused. The
// crawl task's status counts its pages under "crawl".
func (s *Server) crawl(c *gin.Context) {
	tenant := tenantOf(c)
	agent, err := agentID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var req crawlRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	maxPages, err := bound("max_pages", req.MaxPages, defaultCrawlPages, maxCrawlPages)
	if err != nil {
		s.fail(c, err)
		return
	}
	maxDepth, err := bound("max_depth", req.MaxDepth, defaultCrawlDepth, maxCrawlDepth)
	if err != nil {
		s.fail(c, err)
		return
	}
	sub, ok := s.checkURLSubmission(c, tenant, req.urlSubmission)
	if !ok {
		return
	}
	pageURL, metadata, callback, runAt := sub.url, sub.metadata, sub.callback, sub.runAt
	taskID := uuid.Must(uuid.NewV7()).String()
	c.Set(ctxTaskID, taskID)
	doc := &docstore.Document{
		TenantID: tenant, AgentID: agent, Kind: job.KindCrawl, URL: pageURL, TaskID: taskID, Priority: string(job.PriorityLow),
		Metadata: metadata,
	}
	j := &job.Job{
		TaskID: taskID, Kind: job.KindCrawl, TenantID: tenant, AgentID: agent, Priority: job.PriorityLow, URL: pageURL,
		MaxPages: maxPages, MaxDepth: maxDepth, Metadata: job.Metadata(metadata), CallbackURL: callback,
	}
	if err := s.enqueueAt(c.Request.Context(), doc, j, runAt); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, crawlResponse{
		acceptedResponse: acceptedResponse{
			ID: doc.ID, TaskID: taskID, Status: job.DocQueued, URL: pageURL,
			Message: "crawl accepted: its pages are queued as webpage jobs on the low queue" + heldNote(runAt),
			RunAt:   runAtOrNil(runAt),
			ProcessingNote: "poll GET /api/v1/tasks/" + taskID + " for the pages discovered, queued, done and failed; " +
				"the crawl task succeeds once its pages are queued",
		},
		MaxPages: maxPages, MaxDepth: maxDepth,
	})
}

// decodeJSON reads a JSON object of at most maxURLRequestBytes into v: 413 past the cap, 400
// when it is not one valid JSON object.
func decodeJSON(c *gin.Context, v any) error {
	body := newUTF8Reader(http.MaxBytesReader(c.Writer, c.Request.Body, maxURLRequestBytes))
	dec := json.NewDecoder(body)
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); !errors.Is(extra, io.EOF) {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	if err == nil {
		return nil
	}
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &httpError{errTooLarge.status, errTooLarge.code, fmt.Sprintf("request body exceeds %d bytes", mbe.Limit)}
	}
	if errors.Is(err, io.EOF) {
		return errBadRequest("request body must be a JSON object")
	}
	return errBadRequest("malformed JSON body: " + err.Error())
}

// checkPageURL accepts an absolute http or https URL with a host and without credentials,
// and returns it without surrounding space. Addresses are checked by the worker when it
// connects (it alone resolves names, and a name can change what it resolves to).
func checkPageURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	const want = "url must be an absolute http or https URL with a host and without credentials"
	switch {
	case raw == "":
		return "", errBadRequest("url is required")
	case len(raw) > maxURLLength:
		return "", errBadRequest(fmt.Sprintf("url is longer than %d bytes", maxURLLength))
	case strings.ContainsFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return "", errBadRequest(want + " (it contains spaces or control characters)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errBadRequest(want)
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Opaque != "" || u.Hostname() == "" || u.User != nil {
		return "", errBadRequest(want)
	}
	return raw, nil
}

// bound applies a crawl bound's default (when absent) and cap, refusing values below 1.
func bound(name string, v *int, def, limit int) (int, error) {
	switch {
	case v == nil:
		return def, nil
	case *v < 1:
		return 0, errBadRequest(fmt.Sprintf("%s must be at least 1 (default %d, at most %d)", name, def, limit))
	}
	return min(*v, limit), nil
}
