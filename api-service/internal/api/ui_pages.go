package api

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

// --- tasks ---
//
// Recent tasks come from PostgreSQL, not from listing the TASKS bucket: every task has a
// documents row (uploads, web pages and crawls alike), the rows are indexed by id so the
// newest page is one index scan however many tasks there are, and filters by tenant, agent,
// queue and status are plain predicates. Each row is then joined with its live status in TASKS
// (progress, attempts, the worker's message) while that status exists, and derived from the
// row once it has expired, exactly as GET /api/v1/tasks/{task_id} does.

// uiStates maps a task state filter to the document statuses that can hold it. A live state
// that is not final can sit on a row still queued or already processing (the worker reports
// progress before its handler marks the row), so those select both and the live state decides.
var uiStates = map[job.State][]string{
	job.StatePending:  {job.DocQueued, job.DocProcessing},
	job.StateProgress: {job.DocQueued, job.DocProcessing},
	job.StateRetry:    {job.DocQueued, job.DocProcessing},
	job.StateSuccess:  {job.DocCompleted},
	job.StateFailure:  {job.DocFailed},
	job.StateRevoked:  {job.DocCancelled},
}

type taskRow struct {
	*job.Status
	Name    string // filename or URL
	Percent int
}

type tasksView struct {
	Filter  taskFilter
	States  []job.State
	Queues  []job.Priority
	Tasks   []taskRow
	Next    string // query string of the next page; empty on the last
	Summary string
}

type taskFilter struct {
	State, Queue, Tenant, Agent string
}

func (u *ui) taskRowOf(c *gin.Context, d *docstore.Document) taskRow {
	st, _, err := u.s.statuses.Get(c.Request.Context(), d.TaskID)
	if err != nil || st.TenantID != d.TenantID {
		st = statusOfDocument(d)
	}
	if st.AgentID == "" {
		st.AgentID = d.AgentID
	}
	name := d.Filename
	if name == "" {
		name = d.URL
	}
	pct := 0
	if st.Total > 0 {
		pct = min(max(st.Current*100/st.Total, 0), 100)
	}
	return taskRow{Status: st, Name: name, Percent: pct}
}

func (u *ui) tasksPage(c *gin.Context) {
	f := taskFilter{
		State: strings.ToUpper(c.Query("state")), Queue: c.Query("queue"),
		Tenant: strings.TrimSpace(c.Query("tenant")), Agent: strings.TrimSpace(c.Query("agent")),
	}
	af := docstore.AdminFilter{TenantID: f.Tenant, AgentID: f.Agent, Limit: 50}
	if f.State != "" {
		statuses, ok := uiStates[job.State(f.State)]
		if !ok {
			u.renderError(c, http.StatusBadRequest, "Bad filter", "state must be PENDING, PROGRESS, RETRY, SUCCESS, FAILURE or REVOKED")
			return
		}
		af.Statuses = statuses
	}
	if f.Queue != "" {
		p, err := job.ParsePriority(f.Queue)
		if err != nil {
			u.renderError(c, http.StatusBadRequest, "Bad filter", "queue must be high, medium or low")
			return
		}
		af.Priority = string(p)
	}
	if v := c.Query("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			u.renderError(c, http.StatusBadRequest, "Bad cursor", "before must be a document id")
			return
		}
		af.Before = n
	}
	docs, err := u.s.docs.RecentDocuments(c.Request.Context(), af)
	if err != nil {
		u.s.log.Error("ui: recent tasks", "err", err)
		u.fail(c, errUnavailable)
		return
	}
	view := tasksView{Filter: f, States: []job.State{job.StatePending, job.StateProgress, job.StateRetry, job.StateSuccess, job.StateFailure, job.StateRevoked}, Queues: job.Priorities}
	counts := map[job.State]int{}
	for _, d := range docs {
		row := u.taskRowOf(c, d)
		// The row's status is a coarse filter: the live state decides (RETRY, or a status that
		// moved on since the query).
		if f.State != "" && string(row.State) != f.State {
			continue
		}
		counts[row.State]++
		view.Tasks = append(view.Tasks, row)
	}
	if len(docs) == af.Limit {
		q := url.Values{}
		for k, v := range map[string]string{"state": f.State, "queue": f.Queue, "tenant": f.Tenant, "agent": f.Agent} {
			if v != "" {
				q.Set(k, v)
			}
		}
		q.Set("before", strconv.FormatInt(docs[len(docs)-1].ID, 10))
		view.Next = q.Encode()
	}
	view.Summary = strconv.Itoa(len(view.Tasks)) + " tasks shown"
	if len(view.Tasks) == 1 {
		view.Summary = "1 task shown"
	}
	for _, s := range view.States {
		if counts[s] > 0 {
			view.Summary += ", " + strconv.Itoa(counts[s]) + " " + string(s)
		}
	}
	u.render(c, http.StatusOK, "tasks", authOf(c), view)
}

type taskView struct {
	Task       taskRow
	Document   *docstore.Document
	Cancelable bool
}

// findTask loads a task of any tenant: its document and its live (or derived) status.
func (u *ui) findTask(c *gin.Context, taskID string) (*job.Status, *docstore.Document, error) {
	ctx := c.Request.Context()
	doc, err := u.s.docs.FindTask(ctx, taskID)
	switch {
	case errors.Is(err, job.ErrNotFound):
		// No document: the live status, else the task's own record (a task of another kind).
		st, _, err := u.s.statuses.Get(ctx, taskID)
		if errors.Is(err, job.ErrNotFound) {
			tenant, terr := u.s.docs.FindTaskTenant(ctx, taskID)
			if errors.Is(terr, job.ErrNotFound) {
				return nil, nil, errNotFound("task not found")
			}
			if terr != nil {
				u.s.log.Error("ui: task record", "task_id", taskID, "err", terr)
				return nil, nil, errUnavailable
			}
			st, err := u.s.lookupTask(ctx, tenant, taskID)
			return st, nil, err
		}
		if err != nil {
			u.s.log.Error("ui: task status", "task_id", taskID, "err", err)
			return nil, nil, errUnavailable
		}
		return st, nil, nil
	case err != nil:
		u.s.log.Error("ui: task document", "task_id", taskID, "err", err)
		return nil, nil, errUnavailable
	}
	st, err := u.s.lookupTask(ctx, doc.TenantID, taskID)
	if err != nil {
		return nil, nil, err
	}
	return st, doc, nil
}

func (u *ui) taskPage(c *gin.Context) {
	taskID := c.Param("task_id")
	st, doc, err := u.findTask(c, taskID)
	if err != nil {
		u.fail(c, err)
		return
	}
	row := taskRow{Status: st}
	if doc != nil {
		row = u.taskRowOf(c, doc)
		row.Status = st
	}
	if st.Total > 0 {
		row.Percent = min(max(st.Current*100/st.Total, 0), 100)
	}
	u.render(c, http.StatusOK, "task", authOf(c), taskView{Task: row, Document: doc, Cancelable: !st.State.Terminal()})
}

// cancelTask cancels a task of any tenant through the JSON API's cancelTaskOf.
func (u *ui) cancelTask(c *gin.Context) {
	taskID := c.Param("task_id")
	st, _, err := u.findTask(c, taskID)
	if err != nil {
		u.fail(c, err)
		return
	}
	if err := u.s.cancelTaskOf(c.Request.Context(), st.TenantID, taskID); err != nil {
		u.fail(c, err)
		return
	}
	u.s.log.Info("ui: task cancelled by the operator", "task_id", taskID)
	c.Redirect(http.StatusSeeOther, "/ui/tasks/"+url.PathEscape(taskID)+"?notice=cancelled")
}

// --- dead letters ---

type dlqFilter struct {
	Queue, Kind, Tenant, Agent, Error string
}

func (f dlqFilter) match(d *deadLetter) bool {
	return (f.Queue == "" || string(d.Queue) == f.Queue) && (f.Kind == "" || string(d.Kind) == f.Kind) &&
		(f.Tenant == "" || d.TenantID == f.Tenant) && (f.Agent == "" || d.AgentID == f.Agent) &&
		(f.Error == "" || strings.Contains(strings.ToLower(d.Error), strings.ToLower(f.Error)))
}

func (f dlqFilter) query() string {
	q := url.Values{}
	for k, v := range map[string]string{"queue": f.Queue, "kind": f.Kind, "tenant": f.Tenant, "agent": f.Agent, "error": f.Error} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q.Encode()
}

func dlqFilterOf(get func(string) string) dlqFilter {
	return dlqFilter{
		Queue: strings.TrimSpace(get("queue")), Kind: strings.TrimSpace(get("kind")), Tenant: strings.TrimSpace(get("tenant")),
		Agent: strings.TrimSpace(get("agent")), Error: strings.TrimSpace(get("error")),
	}
}

type dlqView struct {
	Filter      dlqFilter
	FilterQuery string
	Queues      []job.Priority
	Kinds       []job.Kind
	Letters     []deadLetter
	More        bool
	Next        string
}

const uiDLQPage = 100

func (u *ui) deadLettersPage(c *gin.Context) {
	f := dlqFilterOf(c.Query)
	from := uint64(1)
	if v := c.Query("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			u.renderError(c, http.StatusBadRequest, "Bad cursor", "after must be a dead letter id")
			return
		}
		from = n + 1
	}
	ctx := c.Request.Context()
	st, err := u.s.dlqStreamOf(ctx)
	if err != nil {
		u.fail(c, err)
		return
	}
	letters, more, last, err := u.s.scanDeadLetters(ctx, st, from, uiDLQPage, f.match)
	if err != nil {
		u.fail(c, err)
		return
	}
	view := dlqView{Filter: f, FilterQuery: f.query(), Queues: job.Priorities, Kinds: []job.Kind{job.KindDocument, job.KindWebpage, job.KindCrawl, job.KindReindex}, Letters: letters, More: more}
	if more {
		after := last
		if len(letters) > 0 {
			after = letters[len(letters)-1].ID
		}
		q, _ := url.ParseQuery(f.query())
		q.Set("after", strconv.FormatUint(after, 10))
		view.Next = q.Encode()
	}
	u.render(c, http.StatusOK, "dlq", authOf(c), view)
}

func (u *ui) dlqBack(c *gin.Context, notice string, n int) {
	q, _ := url.ParseQuery(dlqFilterOf(c.PostForm).query())
	q.Set("notice", notice)
	if n >= 0 {
		q.Set("n", strconv.Itoa(n))
	}
	c.Redirect(http.StatusSeeOther, "/ui/dlq?"+q.Encode())
}

// deadLetterAction loads dead letter :id (any tenant) and applies act to it.
func (u *ui) deadLetterAction(c *gin.Context, act func(st deadLetterTarget) error) bool {
	id, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil || id == 0 {
		u.renderError(c, http.StatusBadRequest, "Bad dead letter id", "the id must be a positive integer")
		return false
	}
	ctx := c.Request.Context()
	st, err := u.s.dlqStreamOf(ctx)
	if err != nil {
		u.fail(c, err)
		return false
	}
	m, _, j, err := u.s.loadDeadLetter(ctx, st, id)
	if err != nil {
		u.fail(c, err)
		return false
	}
	if err := act(deadLetterTarget{st: st, m: m, j: j}); err != nil {
		u.fail(c, err)
		return false
	}
	return true
}

func (u *ui) retryDeadLetter(c *gin.Context) {
	if u.deadLetterAction(c, func(t deadLetterTarget) error { return u.s.requeueDeadLetter(c.Request.Context(), t.st, t.m, t.j) }) {
		u.s.log.Info("ui: dead letter re-queued by the operator", "dead_letter", c.Param("id"))
		u.dlqBack(c, "retried", -1)
	}
}

func (u *ui) purgeDeadLetter(c *gin.Context) {
	if u.deadLetterAction(c, func(t deadLetterTarget) error { return u.s.purgeDeadLetter(c.Request.Context(), t.st, t.m, t.j) }) {
		u.s.log.Info("ui: dead letter purged by the operator", "dead_letter", c.Param("id"))
		u.dlqBack(c, "purged", -1)
	}
}

// uiBulkLimit bounds how many dead letters one "retry all" or "purge all" acts on.
const uiBulkLimit = 1000

// bulkDeadLetters applies act to every dead letter matching the posted filter (at most
// uiBulkLimit), stopping at the first failure.
func (u *ui) bulkDeadLetters(c *gin.Context, notice string, act func(t deadLetterTarget) error) {
	ctx := c.Request.Context()
	f := dlqFilterOf(c.PostForm)
	st, err := u.s.dlqStreamOf(ctx)
	if err != nil {
		u.fail(c, err)
		return
	}
	letters, _, _, err := u.s.scanDeadLetters(ctx, st, 1, uiBulkLimit, f.match)
	if err != nil {
		u.fail(c, err)
		return
	}
	done := 0
	for _, d := range letters {
		m, _, j, err := u.s.loadDeadLetter(ctx, st, d.ID)
		var he *httpError
		if errors.As(err, &he) && he.status == http.StatusNotFound {
			continue // retried or purged meanwhile
		}
		if err == nil {
			err = act(deadLetterTarget{st: st, m: m, j: j})
		}
		if err != nil {
			u.s.log.Warn("ui: bulk dead-letter action stopped", "action", notice, "dead_letter", d.ID, "done", done, "err", err)
			u.fail(c, err)
			return
		}
		done++
	}
	u.s.log.Info("ui: bulk dead-letter action", "action", notice, "count", done, "filter", f.query())
	u.dlqBack(c, notice, done)
}

func (u *ui) retryAllDeadLetters(c *gin.Context) {
	u.bulkDeadLetters(c, "retried-all", func(t deadLetterTarget) error {
		return u.s.requeueDeadLetter(c.Request.Context(), t.st, t.m, t.j)
	})
}

func (u *ui) purgeAllDeadLetters(c *gin.Context) {
	if c.PostForm("confirm") != "yes" {
		u.renderError(c, http.StatusBadRequest, "Not confirmed", "Tick the confirmation box to purge every matching dead letter.")
		return
	}
	u.bulkDeadLetters(c, "purged-all", func(t deadLetterTarget) error {
		return u.s.purgeDeadLetter(c.Request.Context(), t.st, t.m, t.j)
	})
}

// --- documents ---

type documentsView struct {
	Tenant, Agent, Status string
	Statuses              []string
	Agents                []docstore.AgentSummary
	Documents             []*docstore.Document
	Next                  string
}

func (u *ui) documentsPage(c *gin.Context) {
	ctx := c.Request.Context()
	view := documentsView{
		Tenant: strings.TrimSpace(c.Query("tenant")), Agent: strings.TrimSpace(c.Query("agent")), Status: c.Query("status"),
		Statuses: []string{job.DocQueued, job.DocProcessing, job.DocCompleted, job.DocFailed, job.DocCancelled},
	}
	if view.Status != "" && !slices.Contains(view.Statuses, view.Status) {
		u.renderError(c, http.StatusBadRequest, "Bad filter", "status must be queued, processing, completed, failed or cancelled")
		return
	}
	if view.Tenant == "" || view.Agent == "" {
		sums, err := u.s.docs.AgentSummaries(ctx, view.Tenant, 200)
		if err != nil {
			u.s.log.Error("ui: agent summaries", "err", err)
			u.fail(c, errUnavailable)
			return
		}
		view.Agents = sums
		u.render(c, http.StatusOK, "documents", authOf(c), view)
		return
	}
	f := docstore.ListFilter{TenantID: view.Tenant, AgentID: view.Agent, Status: view.Status, Limit: 100}
	if v := c.Query("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			u.renderError(c, http.StatusBadRequest, "Bad cursor", "before must be a document id")
			return
		}
		f.Before = n
	}
	docs, err := u.s.docs.ListDocuments(ctx, f)
	if err != nil {
		u.s.log.Error("ui: documents", "err", err)
		u.fail(c, errUnavailable)
		return
	}
	view.Documents = docs
	if len(docs) == f.Limit {
		q := url.Values{"tenant": {view.Tenant}, "agent": {view.Agent}, "before": {strconv.FormatInt(docs[len(docs)-1].ID, 10)}}
		if view.Status != "" {
			q.Set("status", view.Status)
		}
		view.Next = q.Encode()
	}
	u.render(c, http.StatusOK, "documents", authOf(c), view)
}

// --- search ---

type searchView struct {
	Tenant, Agent, Query string
	K                    int
	Tenants              []string
	Ran                  bool
	Ranking              string
	Results              []docstore.SearchHit
	Error                string
}

func (u *ui) searchPage(c *gin.Context) {
	view := searchView{
		Tenant: strings.TrimSpace(c.Query("tenant")), Agent: strings.TrimSpace(c.Query("agent")),
		Query: strings.TrimSpace(c.Query("q")), K: defaultSearchK,
	}
	for _, t := range u.s.cfg.Tokens {
		if !slices.Contains(view.Tenants, t) {
			view.Tenants = append(view.Tenants, t)
		}
	}
	slices.Sort(view.Tenants)
	if v := c.Query("k"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSearchK {
			view.Error = "k must be an integer in 1..50"
			u.render(c, http.StatusBadRequest, "search", authOf(c), view)
			return
		}
		view.K = n
	}
	if view.Query == "" {
		u.render(c, http.StatusOK, "search", authOf(c), view)
		return
	}
	switch {
	case view.Tenant == "":
		view.Error = "Choose the tenant whose chunks to search."
	case !agentIDPattern.MatchString(view.Agent):
		view.Error = "agent must be 1-128 characters of A-Z a-z 0-9 _ . -"
	case !utf8.ValidString(view.Query) || utf8.RuneCountInString(view.Query) > maxSearchQueryChars:
		view.Error = "The query must be valid text of at most 1000 characters."
	}
	if view.Error != "" {
		u.render(c, http.StatusBadRequest, "search", authOf(c), view)
		return
	}
	hits, ranking, err := u.s.searchChunks(c.Request.Context(), docstore.SearchQuery{TenantID: view.Tenant, AgentID: view.Agent, Text: view.Query, K: view.K})
	if err != nil {
		if c.Request.Context().Err() != nil {
			return
		}
		u.fail(c, err)
		return
	}
	view.Ran, view.Ranking, view.Results = true, ranking, hits
	u.render(c, http.StatusOK, "search", authOf(c), view)
}

// deadLetterTarget is a loaded dead letter an action applies to.
type deadLetterTarget struct {
	st jetstream.Stream
	m  *jetstream.RawStreamMsg
	j  *job.Job
}
