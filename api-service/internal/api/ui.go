package api

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// The operator dashboard (DESIGN §6, issue 9): server-rendered html/template pages under /ui/,
// embedded in the binary with their stylesheet and one small script, no CDN and no build step.
// Every page reads and acts through the same Server methods as the JSON API (cancelTaskOf,
// scanDeadLetters, requeueDeadLetter, purgeDeadLetter, searchChunks, the queue collector), but
// across tenants: the dashboard is the admin token's.
//
// Authentication. The sign-in form takes the admin token (API_ADMIN_TOKEN) and answers with a
// session cookie; `Authorization: Bearer <admin token>` is accepted as well, for automation.
// The cookie is stateless, so that it works behind several API replicas and across restarts:
//
//	quire_ui_session = <session id: 16 random bytes, hex> "." <expiry, unix seconds> "." <MAC>
//
// where MAC is HMAC-SHA256 under a key derived with HKDF from the admin token: rotating the
// token signs everyone out, and the token itself is never stored in the browser. The cookie is
// HttpOnly, SameSite=Strict, Path=/ui, Secure when the request came over TLS (or through a proxy
// saying X-Forwarded-Proto: https), and expires after uiSessionTTL. Signing out clears it and
// revokes its id on this replica until it expires.
//
// CSRF. Every state-changing action is a POST. With a session cookie, a POST must carry the
// session's CSRF token (form field "csrf" or header X-CSRF-Token), an HMAC of the session id
// under the same key, compared in constant time; a cross-site Origin or Sec-Fetch-Site is
// refused too, and SameSite=Strict keeps the cookie off cross-site requests in the first place.
// A POST authenticated by a bearer token needs no CSRF token: browsers never attach one on
// their own.
//
// With no admin token configured, every /ui/ path answers 404 with a page saying the
// dashboard is disabled.

//go:embed ui/templates/*.html ui/static/*
var uiFiles embed.FS

const (
	uiCookie     = "quire_ui_session"
	uiSessionTTL = 12 * time.Hour
	// uiFragmentHeader asks a page for its live region only (the script's polling).
	uiFragmentHeader = "X-Quire-Fragment"
	uiCSRFHeader     = "X-CSRF-Token"
	uiCSRFField      = "csrf"
)

// ui is the dashboard: its templates, session key and in-memory state. It hangs off one
// Server; nothing is global.
type ui struct {
	s        *Server
	enabled  bool
	key      []byte   // session and CSRF MAC key, derived from the admin token
	adminSum [32]byte // SHA-256 of the admin token, compared in constant time
	pages    map[string]*template.Template
	static   http.Handler
	rates    *queueRates

	mu      sync.Mutex
	revoked map[string]time.Time // signed-out session ids → their expiry
}

// uiSession is a verified session cookie.
type uiSession struct {
	id      string
	expires time.Time
}

// uiAuth is how a request was authenticated.
type uiAuth struct {
	session *uiSession // nil for a bearer token
	csrf    string     // the session's CSRF token; empty for a bearer token
}

// mountUI registers the dashboard's routes on e under /ui/.
func (s *Server) mountUI(e *gin.Engine) {
	u, err := newUI(s)
	if err != nil {
		// The templates are embedded and checked by the tests: this is a build defect.
		s.log.Error("ui: dashboard disabled", "err", err)
		u = &ui{s: s}
	}
	g := e.Group("/ui", u.headers(), u.requireEnabled())
	g.GET("", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/ui/") })
	g.GET("/", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/ui/queues") })
	g.GET("/static/*file", u.serveStatic)
	g.GET("/login", u.loginPage)
	g.POST("/login", u.login)

	a := g.Group("", u.requireAuth())
	a.POST("/logout", u.logout)
	a.GET("/queues", u.queuesPage)
	a.GET("/tasks", u.tasksPage)
	a.GET("/tasks/:task_id", u.taskPage)
	a.GET("/tasks/:task_id/events", u.taskEvents)
	a.POST("/tasks/:task_id/cancel", u.cancelTask)
	a.GET("/dlq", u.deadLettersPage)
	a.POST("/dlq/:id/retry", u.retryDeadLetter)
	a.POST("/dlq/:id/purge", u.purgeDeadLetter)
	a.POST("/dlq/retry-all", u.retryAllDeadLetters)
	a.POST("/dlq/purge-all", u.purgeAllDeadLetters)
	a.GET("/documents", u.documentsPage)
	a.GET("/schedules", u.schedulesPage)
	a.GET("/search", u.searchPage)
	a.GET("/usage", u.usagePage)
}

func newUI(s *Server) (*ui, error) {
	u := &ui{s: s, enabled: s.cfg.AdminToken != "", revoked: map[string]time.Time{}, rates: newQueueRates()}
	u.adminSum = sha256.Sum256([]byte(s.cfg.AdminToken))
	key, err := hkdf.Key(sha256.New, []byte(s.cfg.AdminToken), nil, "quire ui session v1", 32)
	if err != nil {
		return nil, fmt.Errorf("ui: derive session key: %w", err)
	}
	u.key = key
	static, err := fs.Sub(uiFiles, "ui/static")
	if err != nil {
		return nil, fmt.Errorf("ui: static files: %w", err)
	}
	u.static = http.StripPrefix("/ui/static/", http.FileServerFS(static))
	u.pages = map[string]*template.Template{}
	names, err := fs.Glob(uiFiles, "ui/templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui: templates: %w", err)
	}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "ui/templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(uiFuncs).ParseFS(uiFiles, "ui/templates/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", base, err)
		}
		u.pages[base] = t
	}
	return u, nil
}

// headers sets the security headers of every dashboard response: a strict content security
// policy (the page's own script and stylesheet only), no framing, no caching.
func (u *ui) headers() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		c.Next()
	}
}

func (u *ui) requireEnabled() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !u.enabled || u.pages == nil {
			c.Abort()
			u.render(c, http.StatusNotFound, "disabled", uiAuth{}, nil)
			return
		}
		c.Next()
	}
}

func (u *ui) serveStatic(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	u.static.ServeHTTP(c.Writer, c.Request)
}

// --- sessions and CSRF ---

func (u *ui) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, u.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

func (u *ui) newSession() (*uiSession, string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", fmt.Errorf("ui: session id: %w", err)
	}
	sess := &uiSession{id: hex.EncodeToString(b[:]), expires: u.s.now().Add(uiSessionTTL).Truncate(time.Second)}
	payload := sess.id + "." + strconv.FormatInt(sess.expires.Unix(), 10)
	return sess, payload + "." + base64.RawURLEncoding.EncodeToString(u.mac("session", payload)), nil
}

// verifySession checks a cookie value: its MAC, expiry and revocation.
func (u *ui) verifySession(value string) (*uiSession, bool) {
	i := strings.LastIndexByte(value, '.')
	if i < 0 {
		return nil, false
	}
	payload, sig := value[:i], value[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, u.mac("session", payload)) {
		return nil, false
	}
	id, exp, ok := strings.Cut(payload, ".")
	if !ok {
		return nil, false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return nil, false
	}
	sess := &uiSession{id: id, expires: time.Unix(unix, 0)}
	if !u.s.now().Before(sess.expires) {
		return nil, false
	}
	u.mu.Lock()
	_, revoked := u.revoked[id]
	u.mu.Unlock()
	return sess, !revoked
}

func (u *ui) csrfToken(sess *uiSession) string {
	return base64.RawURLEncoding.EncodeToString(u.mac("csrf", sess.id))
}

func (u *ui) revoke(sess *uiSession) {
	now := u.s.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	for id, exp := range u.revoked {
		if !now.Before(exp) {
			delete(u.revoked, id)
		}
	}
	u.revoked[sess.id] = sess.expires
}

// isAdminToken compares tok with the admin token in constant time.
func (u *ui) isAdminToken(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	return tok != "" && subtle.ConstantTimeCompare(sum[:], u.adminSum[:]) == 1
}

// authenticate resolves a bearer admin token or a session cookie.
func (u *ui) authenticate(c *gin.Context) (uiAuth, bool) {
	if h := c.GetHeader("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") && u.isAdminToken(strings.TrimSpace(tok)) {
			return uiAuth{}, true
		}
		return uiAuth{}, false
	}
	v, err := c.Cookie(uiCookie)
	if err != nil {
		return uiAuth{}, false
	}
	sess, ok := u.verifySession(v)
	if !ok {
		return uiAuth{}, false
	}
	return uiAuth{session: sess, csrf: u.csrfToken(sess)}, true
}

const ctxUIAuth = "quire.ui_auth"

func authOf(c *gin.Context) uiAuth {
	a, _ := c.Get(ctxUIAuth)
	v, _ := a.(uiAuth)
	return v
}

// requireAuth lets through requests with a bearer admin token or a valid session. Others are
// sent to the sign-in page (GET) or refused with 401 (POST, and the script's polling). A POST
// with a session must also pass the CSRF check, else 403.
func (u *ui) requireAuth() gin.HandlerFunc {
	return func(c *gin.Context) {
		auth, ok := u.authenticate(c)
		if !ok {
			c.Abort()
			if c.Request.Method == http.MethodGet && c.GetHeader(uiFragmentHeader) == "" && c.GetHeader("Authorization") == "" {
				c.Redirect(http.StatusSeeOther, "/ui/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
				return
			}
			u.renderError(c, http.StatusUnauthorized, "Sign-in needed", "Sign in with the admin token (API_ADMIN_TOKEN), or send it as Authorization: Bearer.")
			return
		}
		if c.Request.Method == http.MethodPost && auth.session != nil {
			if !sameOrigin(c.Request) {
				c.Abort()
				u.renderError(c, http.StatusForbidden, "Cross-site request refused", "This action must come from a page of this dashboard.")
				return
			}
			got := c.PostForm(uiCSRFField)
			if got == "" {
				got = c.GetHeader(uiCSRFHeader)
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(auth.csrf)) != 1 {
				c.Abort()
				u.renderError(c, http.StatusForbidden, "Missing or invalid CSRF token", "Reload the page and try again.")
				return
			}
		}
		c.Set(ctxUIAuth, auth)
		c.Next()
	}
}

// sameOrigin refuses requests a browser marks as cross-site. Browsers that send
// Sec-Fetch-Site are trusted on it (same-origin, or none for a typed address), which also
// holds behind a proxy that rewrites Host; for older ones, an Origin must name the request's
// host (or the X-Forwarded-Host a proxy set). The CSRF token is checked as well.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	if o := r.Header.Get("Origin"); o != "" {
		ou, err := url.Parse(o)
		if err != nil || (ou.Host != r.Host && ou.Host != r.Header.Get("X-Forwarded-Host")) {
			return false
		}
	}
	return true
}

func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// safeNext keeps a post-sign-in redirect on the dashboard.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "/ui//") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/queues"
	}
	return next
}

type loginView struct {
	Next      string
	Error     string
	SignedOut bool
}

func (u *ui) loginPage(c *gin.Context) {
	if _, ok := u.authenticate(c); ok {
		c.Redirect(http.StatusSeeOther, safeNext(c.Query("next")))
		return
	}
	u.render(c, http.StatusOK, "login", uiAuth{}, loginView{Next: safeNext(c.Query("next")), SignedOut: c.Query("signed_out") != ""})
}

func (u *ui) login(c *gin.Context) {
	next := safeNext(c.PostForm("next"))
	if !sameOrigin(c.Request) {
		u.renderError(c, http.StatusForbidden, "Cross-site request refused", "Sign in from this dashboard's own page.")
		return
	}
	if !u.isAdminToken(strings.TrimSpace(c.PostForm("token"))) {
		u.s.log.Warn("ui: sign-in with a wrong token", "remote", c.ClientIP())
		u.render(c, http.StatusUnauthorized, "login", uiAuth{}, loginView{Next: next, Error: "That is not the admin token."})
		return
	}
	sess, value, err := u.newSession()
	if err != nil {
		u.s.log.Error("ui: sign-in", "err", err)
		u.renderError(c, http.StatusInternalServerError, "Sign-in failed", "Try again.")
		return
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name: uiCookie, Value: value, Path: "/ui", Expires: sess.expires, MaxAge: int(uiSessionTTL / time.Second),
		HttpOnly: true, Secure: secureRequest(c.Request), SameSite: http.SameSiteStrictMode,
	})
	u.s.log.Info("ui: signed in", "remote", c.ClientIP())
	c.Redirect(http.StatusSeeOther, next)
}

func (u *ui) logout(c *gin.Context) {
	if sess := authOf(c).session; sess != nil {
		u.revoke(sess)
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name: uiCookie, Value: "", Path: "/ui", MaxAge: -1,
		HttpOnly: true, Secure: secureRequest(c.Request), SameSite: http.SameSiteStrictMode,
	})
	c.Redirect(http.StatusSeeOther, "/ui/login?signed_out=1")
}

// --- rendering ---

// uiPage is what every page template receives.
type uiPage struct {
	Nav     string // the active navigation entry
	CSRF    string
	Session bool // signed in with a cookie (shows "Sign out")
	Notice  string
	Data    any
}

// render executes page with data, or only its "live" region when the script asks for it.
func (u *ui) render(c *gin.Context, status int, page string, auth uiAuth, data any) {
	t := u.pages[page]
	if t == nil {
		c.Data(status, "text/plain; charset=utf-8", []byte("the operator dashboard is disabled: set API_ADMIN_TOKEN to enable it\n"))
		return
	}
	view := uiPage{Nav: page, CSRF: auth.csrf, Session: auth.session != nil, Notice: noticeText(c), Data: data}
	name := "layout"
	if c.GetHeader(uiFragmentHeader) == "live" && t.Lookup("live") != nil {
		name = "live"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, view); err != nil {
		u.s.log.Error("ui: render", "page", page, "err", err)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error\n"))
		return
	}
	c.Header("Vary", uiFragmentHeader)
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

type errorView struct {
	Status  int
	Title   string
	Message string
}

func (u *ui) renderError(c *gin.Context, status int, title, msg string) {
	u.render(c, status, "error", authOf(c), errorView{Status: status, Title: title, Message: msg})
}

// fail renders err, an *httpError of the shared methods or another error, as an error page.
func (u *ui) fail(c *gin.Context, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		u.s.log.Error("ui: request failed", "route", c.FullPath(), "err", err)
		he = errInternal
	}
	u.renderError(c, he.status, http.StatusText(he.status), he.msg)
}

// noticeText turns ?notice=<code>&n=<count> after an action into a fixed message; nothing
// from the query string is shown as is.
func noticeText(c *gin.Context) string {
	n, _ := strconv.Atoi(c.Query("n"))
	switch c.Query("notice") {
	case "cancelled":
		return "Task cancelled; a running job stops within a second."
	case "retried":
		return "Dead letter re-queued with its attempts reset."
	case "purged":
		return "Dead letter purged."
	case "retried-all":
		return fmt.Sprintf("Re-queued %d dead letter(s).", n)
	case "purged-all":
		return fmt.Sprintf("Purged %d dead letter(s).", n)
	}
	return ""
}

var uiFuncs = template.FuncMap{
	"usageTitle": usageTitle,
	"since": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return humanDuration(time.Since(t)) + " ago"
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"location": locationText,
	"seconds": func(s float64) string {
		if s <= 0 {
			return "—"
		}
		return humanDuration(time.Duration(s * float64(time.Second)))
	},
	"rate": func(r *float64) string {
		if r == nil {
			return "—"
		}
		return strconv.FormatFloat(*r, 'f', 1, 64)
	},
	"percent": func(cur, total int) int {
		if total <= 0 {
			return 0
		}
		return min(max(cur*100/total, 0), 100)
	},
	"truncate": func(n int, s string) string {
		r := []rune(s)
		if len(r) <= n {
			return s
		}
		return string(r[:n]) + "…"
	},
	"lower": strings.ToLower,
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}
