package api_test

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/api-service/internal/api"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/quiretest"
	"github.com/quirehq/quire/shared/taskstatus"
)

// browser is a dashboard user: a cookie jar, no redirects followed, and the CSRF token of the
// last page it read.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func (e *env) browser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: e.srv.URL, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	if m := csrfInput.FindSubmatch(raw); m != nil {
		b.csrf = string(m[1])
	}
	return resp, string(raw)
}

func (b *browser) get(path string, header ...string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

// post submits a form; csrf adds the session's CSRF token.
func (b *browser) post(path string, form url.Values, csrf bool, header ...string) (*http.Response, string) {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if csrf {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

// signIn signs in with the admin token and reads a page to learn the CSRF token.
func (b *browser) signIn() {
	b.t.Helper()
	resp, body := b.post("/ui/login", url.Values{"token": {tokenAdmin}, "next": {"/ui/tasks"}}, false)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/tasks" {
		b.t.Fatalf("sign-in = %d %s, Location %q", resp.StatusCode, body, resp.Header.Get("Location"))
	}
	if resp, body := b.get("/ui/tasks"); resp.StatusCode != http.StatusOK || b.csrf == "" {
		b.t.Fatalf("tasks page after sign-in = %d, csrf %q:\n%s", resp.StatusCode, b.csrf, body)
	}
}

func wantStatus(t *testing.T, resp *http.Response, body string, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s = %d, want %d:\n%s", resp.Request.Method, resp.Request.URL.RequestURI(), resp.StatusCode, status, body)
	}
}

func wantRedirect(t *testing.T, resp *http.Response, location string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != location {
		t.Fatalf("%s %s = %d to %q, want 303 to %q", resp.Request.Method, resp.Request.URL.RequestURI(), resp.StatusCode, resp.Header.Get("Location"), location)
	}
}

func TestUIDisabledWithoutAdminToken(t *testing.T) {
	a := api.New(api.Config{Tokens: map[string]string{tokenAcme: "acme"}}, api.Deps{})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	for _, path := range []string{"/ui/", "/ui/queues", "/ui/login", "/ui/static/ui.js"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(raw), "API_ADMIN_TOKEN") {
			t.Fatalf("GET %s without an admin token = %d %q, want 404 saying the dashboard is disabled", path, resp.StatusCode, raw)
		}
	}
	// Not even the admin-looking empty token signs in.
	resp, err := http.PostForm(srv.URL+"/ui/login", url.Values{"token": {""}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("sign-in without an admin token = %d, want 404", resp.StatusCode)
	}
}

func TestUISignInSessionAndSignOut(t *testing.T) {
	e := newEnv(t, 0)
	b := e.browser(t)

	// No session: pages send the user to sign in, the script's polling gets 401.
	resp, _ := b.get("/ui/queues?x=1")
	wantRedirect(t, resp, "/ui/login?next="+url.QueryEscape("/ui/queues?x=1"))
	resp, body := b.get("/ui/queues", "X-Quire-Fragment", "live")
	wantStatus(t, resp, body, http.StatusUnauthorized)
	resp, _ = b.get("/ui/")
	wantRedirect(t, resp, "/ui/queues")

	// The sign-in page is an accessible form, served with a strict content security policy.
	resp, body = b.get("/ui/login?next=/ui/dlq")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{`<label for="token">`, `id="token"`, `type="password"`, `value="/ui/dlq"`, `<html lang="en">`} {
		if !strings.Contains(body, want) {
			t.Errorf("sign-in page lacks %s", want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}

	// Wrong tokens: 401, the form again with an error, no cookie.
	for _, tok := range []string{"nope", tokenAcme, tokenAdmin + "x", ""} {
		resp, body = b.post("/ui/login", url.Values{"token": {tok}}, false)
		wantStatus(t, resp, body, http.StatusUnauthorized)
		if !strings.Contains(body, "not the admin token") || len(resp.Cookies()) != 0 {
			t.Fatalf("wrong token %q: body %s, cookies %v", tok, body, resp.Cookies())
		}
	}
	// A cross-site sign-in form is refused.
	resp, body = b.post("/ui/login", url.Values{"token": {tokenAdmin}}, false, "Origin", "https://evil.example")
	wantStatus(t, resp, body, http.StatusForbidden)
	resp, body = b.post("/ui/login", url.Values{"token": {tokenAdmin}}, false, "Sec-Fetch-Site", "cross-site")
	wantStatus(t, resp, body, http.StatusForbidden)
	// Behind a proxy that rewrites Host, the browser's Sec-Fetch-Site or the proxy's
	// X-Forwarded-Host vouches for the origin.
	for _, h := range [][]string{
		{"Origin", "https://dash.example", "Sec-Fetch-Site", "same-origin"},
		{"Origin", "https://dash.example", "X-Forwarded-Host", "dash.example"},
	} {
		resp, _ = e.browser(t).post("/ui/login", url.Values{"token": {tokenAdmin}}, false, h...)
		wantRedirect(t, resp, "/ui/queues")
	}

	// The right token: a session cookie, HttpOnly, SameSite=Strict, scoped to /ui; never the token.
	resp, _ = b.post("/ui/login", url.Values{"token": {tokenAdmin}, "next": {"https://evil.example/"}}, false)
	wantRedirect(t, resp, "/ui/queues") // an off-site next is ignored
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies after sign-in = %v", cookies)
	}
	ck := cookies[0]
	if ck.Name != "quire_ui_session" || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/ui" || ck.Secure || ck.MaxAge <= 0 {
		t.Fatalf("session cookie = %+v", ck)
	}
	if strings.Contains(ck.Value, tokenAdmin) {
		t.Fatal("the session cookie contains the admin token")
	}
	resp, body = b.get("/ui/queues")
	wantStatus(t, resp, body, http.StatusOK)
	if b.csrf == "" || !strings.Contains(body, "Sign out") {
		t.Fatalf("signed-in page has no sign-out form with a CSRF token:\n%s", body)
	}

	// Over TLS (here: behind a TLS-terminating proxy) the cookie is Secure.
	resp, _ = e.browser(t).post("/ui/login", url.Values{"token": {tokenAdmin}}, false, "X-Forwarded-Proto", "https")
	if c := resp.Cookies(); len(c) != 1 || !c[0].Secure {
		t.Fatalf("cookie over https = %v, want Secure", c)
	}

	// A tampered cookie is no session.
	tampered := e.browser(t)
	u, _ := url.Parse(e.srv.URL + "/ui/")
	tampered.c.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: otherFirstChar(ck.Value), Path: "/ui"}})
	resp, _ = tampered.get("/ui/queues")
	wantRedirect(t, resp, "/ui/login?next=%2Fui%2Fqueues")

	// Signing out needs the CSRF token; then the cookie is cleared and no longer accepted.
	stolen := e.browser(t)
	stolen.c.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: ck.Value, Path: "/ui"}})
	resp, body = b.post("/ui/logout", nil, false)
	wantStatus(t, resp, body, http.StatusForbidden)
	resp, body = b.post("/ui/logout", url.Values{"csrf": {"x" + b.csrf[1:]}}, false)
	wantStatus(t, resp, body, http.StatusForbidden)
	resp, _ = b.post("/ui/logout", nil, true)
	wantRedirect(t, resp, "/ui/login?signed_out=1")
	resp, _ = b.get("/ui/queues")
	wantRedirect(t, resp, "/ui/login?next=%2Fui%2Fqueues")
	resp, _ = stolen.get("/ui/queues") // a copy of the signed-out cookie is revoked too
	wantRedirect(t, resp, "/ui/login?next=%2Fui%2Fqueues")
}

func TestUIBearerTokenForAutomation(t *testing.T) {
	e := newEnv(t, 0)
	b := e.browser(t)
	resp, body := b.get("/ui/queues", "Authorization", "Bearer "+tokenAdmin)
	wantStatus(t, resp, body, http.StatusOK)
	if strings.Contains(body, "Sign out") {
		t.Error("a bearer-authenticated page offers to sign out")
	}
	for _, tok := range []string{tokenAcme, "nope"} {
		resp, body = b.get("/ui/queues", "Authorization", "Bearer "+tok)
		wantStatus(t, resp, body, http.StatusUnauthorized)
	}
	// A POST with the bearer token needs no CSRF token: browsers never send one on their own.
	_, up := e.upload(t, tokenAcme, "7", "a.txt", []byte("hello"), nil)
	taskID := up["task_id"].(string)
	resp, _ = b.post("/ui/tasks/"+taskID+"/cancel", nil, false, "Authorization", "Bearer "+tokenAdmin)
	wantRedirect(t, resp, "/ui/tasks/"+taskID+"?notice=cancelled")
}

var deadHigh = regexp.MustCompile(`(?s)data-queue="high".*?data-field="dead_lettered">([^<]*)<.*?data-field="failure">([^<]*)<`)

var pendingHigh = regexp.MustCompile(`(?s)data-queue="high".*?data-field="pending">(\d+)<.*?data-field="done">([^<]*)<`)

func TestUIQueuesPageLiveWithRates(t *testing.T) {
	e := newEnv(t, 0)
	b := e.browser(t)
	b.signIn()
	for i := range 2 {
		e.upload(t, tokenAcme, "7", "q"+strconv.Itoa(i)+".txt", []byte("queued job"), nil)
	}
	e.deadLetter(t, "acme", "queues-dead")
	resp, body := b.get("/ui/queues")
	wantStatus(t, resp, body, http.StatusOK)
	m := pendingHigh.FindStringSubmatch(body)
	if m == nil || m[1] != "2" || m[2] != "—" {
		t.Fatalf("high queue row = %q, want 2 pending and no rate yet:\n%s", m, body)
	}
	for _, want := range []string{"<caption>Job queues by priority", `id="live-announcer" class="sr-only" role="status" aria-live="polite"`, "Rates cover the last 5 minutes", "2 pending, 0 in flight, 1 dead letters", `data-live`, `src="/ui/static/ui.js"`} {
		if !strings.Contains(body, want) {
			t.Errorf("queues page lacks %q", want)
		}
	}
	// A worker takes one job and finishes it; the next reading shows it in the rate.
	cons, err := e.js.Consumer(t.Context(), "JOBS_HIGH", job.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for msg := range batch.Messages() {
		if err := msg.DoubleAck(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	e.deadLetter(t, "acme", "queues-dead-2") // and another job of the high queue is dead-lettered
	time.Sleep(1100 * time.Millisecond)
	// The script's polling asks for the live region alone.
	resp, body = b.get("/ui/queues", "X-Quire-Fragment", "live")
	wantStatus(t, resp, body, http.StatusOK)
	if strings.Contains(body, "<html") || strings.Contains(body, "<nav") {
		t.Fatalf("live fragment holds the whole page:\n%s", body)
	}
	m = pendingHigh.FindStringSubmatch(body)
	if m == nil || m[1] != "1" {
		t.Fatalf("high queue row after one job = %q:\n%s", m, body)
	}
	if done, err := strconv.ParseFloat(m[2], 64); err != nil || done <= 0 {
		t.Fatalf("done/min after a finished job = %q, want > 0", m[2])
	}
	dead := deadHigh.FindStringSubmatch(body)
	if dead == nil || dead[1] == "0.0" || dead[1] == "—" || dead[2] != "100.0 %" {
		t.Fatalf("high queue dead-lettered/min and failure rate = %q, want > 0 and 100 %%:\n%s", dead, body)
	}
}

func TestUITasksListDetailAndFilters(t *testing.T) {
	e := newEnv(t, 0)
	b := e.browser(t)
	b.signIn()
	_, a := e.upload(t, tokenAcme, "7", "alpha.txt", []byte("alpha"), nil)
	_, o := e.upload(t, tokenOther, "9", "omega.txt", []byte("omega"), map[string]string{"priority": "low"})
	acmeTask, otherTask := a["task_id"].(string), o["task_id"].(string)

	resp, body := b.get("/ui/tasks")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{acmeTask, otherTask, "alpha.txt", "omega.txt", "<caption>Recent tasks", `<progress max="100" value="0"`, `<label for="f-state">`} {
		if !strings.Contains(body, want) {
			t.Errorf("tasks page lacks %q", want)
		}
	}
	if strings.Index(body, otherTask) > strings.Index(body, acmeTask) {
		t.Error("tasks are not listed newest first")
	}
	filters := []struct {
		query      string
		want, not  []string
		wantStatus int
	}{
		{"tenant=other", []string{otherTask}, []string{acmeTask}, 200},
		{"agent=7", []string{acmeTask}, []string{otherTask}, 200},
		{"queue=low", []string{otherTask}, []string{acmeTask}, 200},
		{"state=PENDING", []string{acmeTask, otherTask}, nil, 200},
		{"state=SUCCESS", []string{"No tasks match."}, []string{acmeTask, otherTask}, 200},
		{"state=BOGUS", nil, nil, 400},
		{"queue=urgent", nil, nil, 400},
	}
	for _, f := range filters {
		resp, body := b.get("/ui/tasks?" + f.query)
		wantStatus(t, resp, body, f.wantStatus)
		for _, w := range f.want {
			if !strings.Contains(body, w) {
				t.Errorf("tasks?%s lacks %s", f.query, w)
			}
		}
		for _, n := range f.not {
			if strings.Contains(body, n) {
				t.Errorf("tasks?%s shows %s", f.query, n)
			}
		}
	}

	// The detail page: state, progress, the record, and a cancel form with the CSRF token.
	resp, body = b.get("/ui/tasks/" + otherTask)
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{`id="task-progress"`, `data-field="state" class="state state-pending">PENDING`, "omega.txt", "<caption>Task details", `action="/ui/tasks/` + otherTask + `/cancel"`, `name="csrf" value="` + b.csrf + `"`} {
		if !strings.Contains(body, want) {
			t.Errorf("task page lacks %q", want)
		}
	}
	// Progress written by a worker shows in the live region (and in the PROGRESS filter, though
	// the worker has not marked the row processing yet).
	kv, err := e.js.KeyValue(t.Context(), job.TasksBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := taskstatus.New(kv, e.js, time.Hour).Update(t.Context(), otherTask, func(st *job.Status) error {
		st.State, st.Current, st.Status, st.Attempts = job.StateProgress, 50, "chunking", 1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	resp, body = b.get("/ui/tasks/"+otherTask, "X-Quire-Fragment", "live")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `value="50"`) || !strings.Contains(body, ">PROGRESS<") || !strings.Contains(body, "chunking") || strings.Contains(body, "<html") {
		t.Fatalf("live task fragment:\n%s", body)
	}
	resp, body = b.get("/ui/tasks?state=PROGRESS")
	if !strings.Contains(body, otherTask) || strings.Contains(body, acmeTask) {
		t.Fatalf("tasks?state=PROGRESS does not follow the live state:\n%s", body)
	}
	resp, body = b.get("/ui/tasks/no-such-task")
	wantStatus(t, resp, body, http.StatusNotFound)
}

func TestUICancelTask(t *testing.T) {
	e := newEnv(t, 0)
	b := e.browser(t)
	b.signIn()
	_, up := e.upload(t, tokenOther, "9", "a.txt", []byte("hello"), nil)
	taskID := up["task_id"].(string)
	path := "/ui/tasks/" + taskID + "/cancel"

	resp, body := b.post(path, nil, false)
	wantStatus(t, resp, body, http.StatusForbidden)
	if _, st := e.get(t, tokenOther, "/api/v1/tasks/"+taskID); st["state"] != "PENDING" {
		t.Fatalf("task after a cancel without CSRF token = %v, want PENDING", st)
	}
	resp, body = b.post(path, nil, true, "Sec-Fetch-Site", "cross-site")
	wantStatus(t, resp, body, http.StatusForbidden)

	resp, _ = b.post(path, nil, true)
	wantRedirect(t, resp, "/ui/tasks/"+taskID+"?notice=cancelled")
	if _, st := e.get(t, tokenOther, "/api/v1/tasks/"+taskID); st["state"] != "REVOKED" {
		t.Fatalf("task after the dashboard's cancel = %v, want REVOKED", st)
	}
	resp, body = b.get("/ui/tasks/" + taskID + "?notice=cancelled")
	if !strings.Contains(body, "Task cancelled") || strings.Contains(body, `id="cancel-form"`) {
		t.Fatalf("task page after cancel:\n%s", body)
	}
	resp, body = b.post(path, nil, true)
	wantStatus(t, resp, body, http.StatusConflict)
	// The task page follows the task's event stream, the JSON API's, for the operator.
	resp, body = b.get("/ui/tasks/" + taskID)
	if !strings.Contains(body, `data-events="/ui/tasks/`+taskID+`/events"`) {
		t.Fatalf("task page does not name its event stream:\n%s", body)
	}
	resp, body = b.get("/ui/tasks/" + taskID + "/events")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" ||
		!strings.Contains(body, "event: status") || !strings.Contains(body, `"state":"REVOKED"`) {
		t.Fatalf("task page's stream = %d %q:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = b.post("/ui/tasks/no-such-task/cancel", nil, true)
	wantStatus(t, resp, body, http.StatusNotFound)
}

// deadLetterWithError puts a dead letter whose error is hostile HTML.
func (e *env) deadLetterWithError(t *testing.T, tenant, taskID, errText string) {
	t.Helper()
	j := &job.Job{TaskID: taskID, Kind: job.KindWebpage, TenantID: tenant, AgentID: "x", Priority: job.PriorityLow, URL: "https://example.com/"}
	body, err := j.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: "dlq.low.webpage", Data: body, Header: nats.Header{}}
	m.Header.Set(job.HeaderError, errText)
	m.Header.Set(job.HeaderAttempts, "4")
	m.Header.Set(job.HeaderTaskID, taskID)
	m.Header.Set(job.HeaderTenantID, tenant)
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
}

var deadLetterRow = regexp.MustCompile(`data-dead-letter="(\d+)" data-task="([^"]+)"`)

func deadLetterIDs(body string) map[string]string {
	out := map[string]string{}
	for _, m := range deadLetterRow.FindAllStringSubmatch(body, -1) {
		out[m[2]] = m[1]
	}
	return out
}

func TestUIDeadLetters(t *testing.T) {
	e := newEnv(t, 0)
	b := e.browser(t)
	b.signIn()
	e.deadLetter(t, "acme", "dl-a")
	e.deadLetter(t, "other", "dl-b")
	e.deadLetter(t, "acme", "dl-c")
	e.deadLetter(t, "acme", "dl-d")
	const hostile = `<img src=x onerror=alert(1)>`
	e.deadLetterWithError(t, "other", "dl-e", hostile)

	resp, body := b.get("/ui/dlq")
	wantStatus(t, resp, body, http.StatusOK)
	ids := deadLetterIDs(body)
	if len(ids) != 5 {
		t.Fatalf("dead letters listed = %v, want 5 across tenants:\n%s", ids, body)
	}
	for _, want := range []string{"corrupt PDF", "<caption>Dead letters in JOBS_DLQ", `aria-label="Retry dead letter`, html.EscapeString(hostile)} {
		if !strings.Contains(body, want) {
			t.Errorf("dead-letter page lacks %q", want)
		}
	}
	if strings.Contains(body, hostile) {
		t.Fatal("a dead letter's error is rendered as HTML")
	}
	resp, body = b.get("/ui/dlq?tenant=other")
	if got := deadLetterIDs(body); len(got) != 2 || got["dl-b"] == "" || got["dl-e"] == "" {
		t.Fatalf("dead letters of tenant other = %v", got)
	}
	resp, body = b.get("/ui/dlq?error=onerror")
	if got := deadLetterIDs(body); len(got) != 1 || got["dl-e"] == "" {
		t.Fatalf("dead letters with error containing onerror = %v", got)
	}

	// Retry one: no CSRF token, refused; then re-queued like POST /api/v1/dlq/{id}/retry.
	resp, body = b.post("/ui/dlq/"+ids["dl-b"]+"/retry", nil, false)
	wantStatus(t, resp, body, http.StatusForbidden)
	resp, _ = b.post("/ui/dlq/"+ids["dl-b"]+"/retry", url.Values{"tenant": {"other"}}, true)
	wantRedirect(t, resp, "/ui/dlq?notice=retried&tenant=other")
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_HIGH"); n != 1 {
		t.Fatalf("JOBS_HIGH holds %d jobs after a retry, want 1", n)
	}
	if _, st := e.get(t, tokenOther, "/api/v1/tasks/dl-b"); st["state"] != "PENDING" {
		t.Fatalf("retried task = %v", st)
	}
	resp, body = b.get("/ui/dlq?notice=retried&tenant=other")
	if !strings.Contains(body, "Dead letter re-queued") || deadLetterIDs(body)["dl-b"] != "" {
		t.Fatalf("page after retry:\n%s", body)
	}
	resp, body = b.post("/ui/dlq/"+ids["dl-b"]+"/retry", nil, true)
	wantStatus(t, resp, body, http.StatusNotFound)

	// Purge one.
	resp, _ = b.post("/ui/dlq/"+ids["dl-e"]+"/purge", nil, true)
	wantRedirect(t, resp, "/ui/dlq?notice=purged")

	// Retry all of a filter: acme's three.
	resp, _ = b.post("/ui/dlq/retry-all", url.Values{"tenant": {"acme"}, "agent": {"7"}}, true)
	wantRedirect(t, resp, "/ui/dlq?agent=7&n=3&notice=retried-all&tenant=acme")
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_HIGH"); n != 4 {
		t.Fatalf("JOBS_HIGH holds %d jobs after retry-all, want 4", n)
	}
	resp, body = b.get("/ui/dlq?n=3&notice=retried-all")
	if !strings.Contains(body, "Re-queued 3 dead letter(s).") || len(deadLetterIDs(body)) != 0 {
		t.Fatalf("page after retry-all:\n%s", body)
	}

	// Purge all: needs the confirmation box.
	e.deadLetter(t, "acme", "dl-f")
	e.deadLetter(t, "other", "dl-g")
	resp, body = b.post("/ui/dlq/purge-all", nil, true)
	wantStatus(t, resp, body, http.StatusBadRequest)
	resp, body = b.post("/ui/dlq/purge-all", url.Values{"confirm": {"yes"}}, false)
	wantStatus(t, resp, body, http.StatusForbidden)
	resp, _ = b.post("/ui/dlq/purge-all", url.Values{"confirm": {"yes"}, "tenant": {"other"}}, true)
	wantRedirect(t, resp, "/ui/dlq?n=1&notice=purged-all&tenant=other")
	if n := quiretest.StreamMsgs(t, e.js, job.DLQStream); n != 1 {
		t.Fatalf("JOBS_DLQ holds %d dead letters, want acme's dl-f only", n)
	}
	resp, body = b.get("/ui/dlq?after=x")
	wantStatus(t, resp, body, http.StatusBadRequest)
}

func TestUIDocumentsPerAgent(t *testing.T) {
	e := newEnv(t, 0)
	b := e.browser(t)
	b.signIn()
	storeDoc(t, e.docs, "acme", "7", "handbook.md", "the first chunk", "the second chunk")
	e.upload(t, tokenAcme, "7", "waiting.txt", []byte("queued"), nil)
	storeDoc(t, e.docs, "other", "9", "notes.md", "one chunk")

	resp, body := b.get("/ui/documents")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{"<caption>Agents", `href="/ui/documents?tenant=acme&amp;agent=7"`, `href="/ui/documents?tenant=other&amp;agent=9"`} {
		if !strings.Contains(body, want) {
			t.Errorf("documents page lacks %q:\n%s", want, body)
		}
	}
	resp, body = b.get("/ui/documents?tenant=acme&agent=7")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "handbook.md") || !strings.Contains(body, "waiting.txt") || !strings.Contains(body, `data-field="chunks">2<`) || strings.Contains(body, "notes.md") {
		t.Fatalf("documents of acme/7:\n%s", body)
	}
	resp, body = b.get("/ui/documents?tenant=acme&agent=7&status=completed")
	if !strings.Contains(body, "handbook.md") || strings.Contains(body, "waiting.txt") {
		t.Fatalf("completed documents of acme/7:\n%s", body)
	}
	resp, body = b.get("/ui/documents?tenant=acme&agent=7&status=nope")
	wantStatus(t, resp, body, http.StatusBadRequest)
}

func TestUISearch(t *testing.T) {
	e := newEnv(t, 0)
	b := e.browser(t)
	b.signIn()
	storeDoc(t, e.docs, "acme", "7", "handbook.md", "refunds are paid within fourteen days", "the office opens at nine")
	storeDoc(t, e.docs, "other", "7", "secret.md", "refunds of the other tenant")

	resp, body := b.get("/ui/search")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `<label for="s-q">`) || !strings.Contains(body, `<option value="acme">`) {
		t.Fatalf("search form:\n%s", body)
	}
	resp, body = b.get("/ui/search?" + url.Values{"tenant": {"acme"}, "agent": {"7"}, "q": {"refunds"}}.Encode())
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "fourteen days") || strings.Contains(body, "other tenant") || !strings.Contains(body, "hybrid ranking") {
		t.Fatalf("search results:\n%s", body)
	}
	resp, body = b.get("/ui/search?" + url.Values{"agent": {"7"}, "q": {"refunds"}}.Encode())
	wantStatus(t, resp, body, http.StatusBadRequest)
	resp, body = b.get("/ui/search?" + url.Values{"tenant": {"acme"}, "agent": {"a b"}, "q": {"x"}}.Encode())
	wantStatus(t, resp, body, http.StatusBadRequest)
}

func TestUIStaticFiles(t *testing.T) {
	e := newEnv(t, 0)
	b := e.browser(t)
	for path, want := range map[string]string{"/ui/static/ui.js": "X-Quire-Fragment", "/ui/static/ui.css": "progress"} {
		resp, body := b.get(path)
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, want) {
			t.Errorf("%s lacks %q", path, want)
		}
	}
	resp, body := b.get("/ui/static/nope.js")
	wantStatus(t, resp, body, http.StatusNotFound)
}

// otherFirstChar changes the first character of a session cookie (its session id).
func otherFirstChar(v string) string {
	if v[0] == 'a' {
		return "b" + v[1:]
	}
	return "a" + v[1:]
}

func TestUISchedulesListsNextAndLastRun(t *testing.T) {
	e := newEnv(t, 0)
	b := e.browser(t)
	b.signIn()
	resp, out := e.callJSON(t, http.MethodPost, tokenAcme, "/api/v1/schedules",
		`{"name":"nightly-docs","cron":"30 2 * * *","timezone":"Europe/Berlin","task":{"kind":"crawl","agent_id":"7","url":"https://docs.example.com/"}}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %v", resp.StatusCode, out)
	}
	next, _ := time.Parse(time.RFC3339, out["next_run_at"].(string))
	berlin, _ := time.LoadLocation("Europe/Berlin")
	resp, body := b.get("/ui/schedules")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{"nightly-docs", "cron 0 30 2 * * *", "Europe/Berlin", "https://docs.example.com/",
		`<td data-field="next">` + next.In(berlin).Format("2006-01-02 15:04:05 MST") + `</td>`, `<td data-field="last">—</td>`, `aria-current="page">Schedules`} {
		if !strings.Contains(body, want) {
			t.Errorf("schedules page lacks %q:\n%s", want, body)
		}
	}
	resp, body = b.get("/ui/schedules?tenant=other")
	wantStatus(t, resp, body, http.StatusOK)
	if strings.Contains(body, "nightly-docs") || !strings.Contains(body, "No schedules.") {
		t.Fatalf("another tenant's filter shows acme's schedule:\n%s", body)
	}
}
