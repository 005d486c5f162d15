package ingest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

// site is a 10-page site: robots.txt disallows /private, the sitemap lists some pages, the
// pages link to each other, to the disallowed page and off the site. /c answers its second
// request with 410 Gone (the crawl's fetch succeeds, its page job's fetch fails).
func site(t *testing.T, h *hits) *httptest.Server {
	t.Helper()
	links := map[string][]string{
		"/":        {"/a", "/d", "/e", "/private", "/a#top", "https://elsewhere.invalid/x", "mailto:sea@example.com"},
		"/a":       {"/", "/b"},
		"/b":       {"/a"},
		"/c":       {"/"},
		"/d":       {"/f", "/g"},
		"/e":       {"/h"},
		"/f":       {"/"},
		"/g":       {"/"},
		"/h":       {"/"},
		"/private": {"/"},
	}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := h.add(r.URL.Path)
		switch r.URL.Path {
		case "/robots.txt":
			fmt.Fprintf(w, "User-agent: *\nDisallow: /private\nSitemap: %s/sitemap.xml\n", srv.URL)
			return
		case "/sitemap.xml":
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>%[1]s/a</loc></url><url><loc>%[1]s/b</loc></url><url><loc>%[1]s/private</loc></url><url><loc>%[1]s/c</loc></url>
</urlset>`, srv.URL)
			return
		}
		out, ok := links[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == "/c" && n == 2 {
			http.Error(w, "gone", http.StatusGone)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		var b strings.Builder
		fmt.Fprintf(&b, "<html><head><title>Page %s</title></head><body><main><h1>Page %s</h1>", r.URL.Path, r.URL.Path)
		fmt.Fprintf(&b, "<p>This is the page at %s of the sailing club site, with enough words to be worth storing.</p>", r.URL.Path)
		for _, l := range out {
			fmt.Fprintf(&b, `<p><a href="%s">link to %s</a></p>`, l, l)
		}
		b.WriteString("</main></body></html>")
		fmt.Fprint(w, b.String())
	}))
	t.Cleanup(srv.Close)
	return srv
}

// pages returns the agent's webpage documents by URL, failing on a URL stored twice.
func pages(t *testing.T, e *env, agent string) map[string]*docstore.Document {
	t.Helper()
	list, err := e.docs.ListDocuments(t.Context(), docstore.ListFilter{TenantID: "acme", AgentID: agent, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*docstore.Document{}
	for _, d := range list {
		if d.Kind != job.KindWebpage {
			continue
		}
		if _, dup := out[d.URL]; dup {
			t.Fatalf("page %s stored twice", d.URL)
		}
		out[d.URL] = d
	}
	return out
}

func sortedKeys(m map[string]*docstore.Document) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestCrawlFansOutOnePageJobPerPageOnce(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	var h hits
	srv := site(t, &h)
	// Breadth-first from /: the sitemap's pages (depth 1), then /'s links, then theirs; 8
	// pages are visited before /h, and /private is never fetched.
	var want []string
	for _, p := range []string{"/", "/a", "/b", "/c", "/d", "/e", "/f", "/g"} {
		want = append(want, srv.URL+p)
	}
	slices.Sort(want)

	crawl := e.submit(t, &job.Job{Kind: job.KindCrawl, Priority: job.PriorityLow, URL: srv.URL + "/", MaxPages: 8, MaxDepth: 2})
	st := e.waitState(t, crawl.TaskID, job.StateSuccess)
	if st.Crawl == nil || st.Crawl.Discovered != 8 || st.Crawl.Queued != 8 {
		t.Fatalf("crawl status after fan-out = %+v (counters %+v), want 8 discovered and queued", st, st.Crawl)
	}
	if d := e.doc(t, crawl.DocumentID); d.Status != job.DocCompleted || d.Kind != job.KindCrawl {
		t.Fatalf("crawl document = %+v", d)
	}
	// The counters keep moving as the pages finish: 7 stored, /c dead-lettered.
	st = e.wait(t, crawl.TaskID, 30*time.Second, "every page done or failed", func(st *job.Status) bool {
		return st.Crawl != nil && st.Crawl.Done+st.Crawl.Failed == 8
	})
	if *st.Crawl != (job.CrawlCounts{Discovered: 8, Queued: 8, Done: 7, Failed: 1}) || st.State != job.StateSuccess {
		t.Fatalf("crawl counters = %+v (%s), want 8 discovered, 8 queued, 7 done, 1 failed", *st.Crawl, st.State)
	}

	got := pages(t, e, "7")
	if keys := sortedKeys(got); !slices.Equal(keys, want) {
		t.Fatalf("pages stored:\n%v\nwant:\n%v", keys, want)
	}
	for u, d := range got {
		wantStatus := job.DocCompleted
		if u == srv.URL+"/c" {
			wantStatus = job.DocFailed
		}
		if d.Status != wantStatus || d.Priority != "low" {
			t.Errorf("page %s: status %s priority %s, want %s on low", u, d.Status, d.Priority, wantStatus)
		}
		pst, _, err := e.statuses.Get(t.Context(), d.TaskID)
		if err != nil || pst.Queue != job.PriorityLow || pst.Kind != job.KindWebpage || pst.URL != u {
			t.Errorf("page %s task status = %+v, %v", u, pst, err)
		}
	}
	if d := got[srv.URL+"/a"]; !strings.Contains(chunkText(e.chunks(t, d.ID)), "page at /a of the sailing club") || d.Title != "Page /a" {
		t.Errorf("page /a stored as %+v with chunks %q", d, chunkText(e.chunks(t, d.ID)))
	}
	// Exactly one job per page went through JOBS_LOW (plus the crawl's own), each page was
	// fetched once by the crawl and once by its job, and robots.txt kept /private out.
	if seq := streamInfo(t, e.js, "JOBS_LOW").State.LastSeq; seq != 1+8 {
		t.Fatalf("JOBS_LOW stored %d messages, want 9 (the crawl and 8 pages)", seq)
	}
	for _, p := range []string{"/", "/a", "/b", "/c", "/d", "/e", "/f", "/g"} {
		if n := h.get(p); n != 2 {
			t.Errorf("%s fetched %d times, want 2 (crawl, page job)", p, n)
		}
	}
	if h.get("/private") != 0 || h.get("/h") != 0 {
		t.Fatalf("fetched /private %d times and /h %d times, want neither", h.get("/private"), h.get("/h"))
	}
	dls := deadLetters(t, e.js)
	if len(dls) != 1 || dls[0].Subject != "dlq.low.webpage" {
		t.Fatalf("dead letters = %d, want /c's on dlq.low.webpage", len(dls))
	}
	dj, err := job.Decode(dls[0].Data)
	if err != nil || dj.URL != srv.URL+"/c" || dj.ParentTaskID != crawl.TaskID || dj.Depth != 1 || dj.Priority != job.PriorityLow {
		t.Fatalf("dead-lettered page job = %+v, %v", dj, err)
	}

	// A second crawl of the site within the duplicate window enqueues no page again: the
	// pages keep their rows and tasks, and only the crawl's own message is added.
	again := e.submit(t, &job.Job{Kind: job.KindCrawl, Priority: job.PriorityLow, URL: srv.URL + "/", MaxPages: 8, MaxDepth: 2})
	st = e.waitState(t, again.TaskID, job.StateSuccess)
	if *st.Crawl != (job.CrawlCounts{Discovered: 8, Queued: 0}) {
		t.Fatalf("re-crawl counters = %+v, want 8 discovered, none queued", *st.Crawl)
	}
	if seq := streamInfo(t, e.js, "JOBS_LOW").State.LastSeq; seq != 1+8+1 {
		t.Fatalf("JOBS_LOW stored %d messages after the re-crawl, want 10", seq)
	}
	after := pages(t, e, "7")
	if keys := sortedKeys(after); !slices.Equal(keys, want) {
		t.Fatalf("pages after the re-crawl:\n%v\nwant:\n%v", keys, want)
	}
	for u, d := range after {
		if before := got[u]; d.ID != before.ID || d.TaskID != before.TaskID || d.Status != before.Status || d.PublishedAt == nil {
			t.Errorf("page %s changed by the re-crawl: %+v -> %+v", u, before, d)
		}
	}
	// The first crawl's counters did not move.
	if st, _, _ := e.statuses.Get(t.Context(), crawl.TaskID); *st.Crawl != (job.CrawlCounts{Discovered: 8, Queued: 8, Done: 7, Failed: 1}) {
		t.Fatalf("first crawl's counters after the re-crawl = %+v", *st.Crawl)
	}
}

func TestCrawlOfABlockedOrMissingStartFailsPermanently(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	var h hits
	srv := site(t, &h)
	tests := []struct{ name, url, wantErr string }{
		{"missing start page", srv.URL + "/nowhere", "404"},
		{"start disallowed by robots.txt", srv.URL + "/private", "disallowed by robots.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crawl := e.submit(t, &job.Job{Kind: job.KindCrawl, Priority: job.PriorityLow, URL: tt.url, MaxPages: 5, MaxDepth: 1})
			st := e.waitState(t, crawl.TaskID, job.StateFailure)
			if st.Attempts != 1 || !strings.Contains(st.Error, tt.wantErr) {
				t.Fatalf("crawl status = %+v, want a permanent failure containing %q", st, tt.wantErr)
			}
			if d := e.doc(t, crawl.DocumentID); d.Status != job.DocFailed {
				t.Fatalf("crawl document = %+v", d)
			}
		})
	}
	if n := len(pages(t, e, "7")); n != 0 {
		t.Fatalf("%d pages queued by failed crawls", n)
	}
	if h.get("/private") != 0 {
		t.Fatal("a start page disallowed by robots.txt was fetched")
	}
}

func TestRedeliveredCrawlQueuesNoPageTwice(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	var h hits
	srv := site(t, &h)
	crawl := e.submit(t, &job.Job{Kind: job.KindCrawl, Priority: job.PriorityLow, URL: srv.URL + "/", MaxPages: 8, MaxDepth: 2})
	e.waitState(t, crawl.TaskID, job.StateSuccess)
	e.wait(t, crawl.TaskID, 30*time.Second, "every page done or failed", func(st *job.Status) bool {
		return st.Crawl != nil && st.Crawl.Done+st.Crawl.Failed == 8
	})
	before := pages(t, e, "7")
	seq := streamInfo(t, e.js, "JOBS_LOW").State.LastSeq

	// The same crawl job delivered again long after the duplicate window would have let its
	// pages' messages through (here: run again by hand): each page is recognised by its task
	// id and not published again.
	if err := e.crawls.Handle(t.Context(), crawl); err != nil {
		t.Fatalf("crawl run again: %v", err)
	}
	if got := streamInfo(t, e.js, "JOBS_LOW").State.LastSeq; got != seq {
		t.Fatalf("JOBS_LOW grew from %d to %d messages when the crawl ran again", seq, got)
	}
	st, _, err := e.statuses.Get(t.Context(), crawl.TaskID)
	if err != nil || *st.Crawl != (job.CrawlCounts{Discovered: 8, Queued: 8, Done: 7, Failed: 1}) {
		t.Fatalf("crawl counters after running again = %+v, %v", st.Crawl, err)
	}
	after := pages(t, e, "7")
	if len(after) != len(before) {
		t.Fatalf("%d pages after running the crawl again, %d before", len(after), len(before))
	}
	for u, d := range after {
		if b := before[u]; b == nil || d.ID != b.ID || d.TaskID != b.TaskID {
			t.Errorf("page %s: %+v, before %+v", u, d, b)
		}
	}
}
