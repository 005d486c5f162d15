package ingest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/job"
)

// changingSite is a small site whose links and missing pages change between crawls.
type changingSite struct {
	mu    sync.Mutex
	links map[string][]string
	gone  map[string]bool
}

func (s *changingSite) serve(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		out, ok := s.links[r.URL.Path]
		gone := s.gone[r.URL.Path]
		s.mu.Unlock()
		switch {
		case r.URL.Path == "/robots.txt":
			fmt.Fprint(w, "User-agent: *\nDisallow:\n")
			return
		case gone:
			http.Error(w, "gone", http.StatusGone)
			return
		case !ok:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		var b strings.Builder
		fmt.Fprintf(&b, "<html><head><title>Page %s</title></head><body><main><h1>Page %s</h1>", r.URL.Path, r.URL.Path)
		fmt.Fprintf(&b, "<p>This is the page at %s of the rowing club site, with enough words to be worth storing.</p>", r.URL.Path)
		for _, l := range out {
			fmt.Fprintf(&b, `<p><a href="%s">link to %s</a></p>`, l, l)
		}
		b.WriteString("</main></body></html>")
		fmt.Fprint(w, b.String())
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A crawl that syncs (a scheduled re-crawl) keeps the pages still there, unchanged pages with
// their rows, and removes the pages that answer 410 and the pages no longer linked; a crawl
// that does not sync removes nothing.
func TestSyncingCrawlRemovesGonePages(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	s := &changingSite{links: map[string][]string{
		"/": {"/a", "/b", "/e"}, "/a": {"/"}, "/b": {"/"}, "/e": {"/h"}, "/h": {"/"},
	}, gone: map[string]bool{}}
	srv := s.serve(t)
	crawl := func(sync bool) *job.Status {
		t.Helper()
		c := e.submit(t, &job.Job{Kind: job.KindCrawl, Priority: job.PriorityLow, URL: srv.URL + "/", MaxPages: 50, MaxDepth: 3, Sync: sync})
		e.waitState(t, c.TaskID, job.StateSuccess)
		return e.wait(t, c.TaskID, 30*time.Second, "every page done", func(st *job.Status) bool {
			return st.Crawl != nil && st.Crawl.Done+st.Crawl.Failed == st.Crawl.Queued
		})
	}
	crawl(false)
	first := pages(t, e, "7")
	if len(first) != 5 {
		t.Fatalf("first crawl stored %v", sortedKeys(first))
	}

	// /b is gone, / no longer links /e (and so /h).
	s.mu.Lock()
	s.gone["/b"] = true
	s.links["/"] = []string{"/a", "/b"}
	s.mu.Unlock()
	crawl(false)
	if got := pages(t, e, "7"); len(got) != 5 {
		t.Fatalf("a crawl that does not sync removed pages: %v", sortedKeys(got))
	}
	st := crawl(true)
	got := pages(t, e, "7")
	want := []string{srv.URL + "/", srv.URL + "/a"}
	if keys := sortedKeys(got); !slices.Equal(keys, want) {
		t.Fatalf("pages after the syncing crawl:\n%v\nwant:\n%v", keys, want)
	}
	for u, d := range got {
		if d.ID != first[u].ID || d.Status != job.DocCompleted {
			t.Errorf("page %s: %+v, was %+v", u, d, first[u])
		}
	}
	if !strings.Contains(st.Status, "3 gone pages removed") {
		t.Errorf("crawl status = %q", st.Status)
	}
	for _, u := range []string{"/b", "/e", "/h"} {
		if d := first[srv.URL+u]; len(e.chunks(t, d.ID)) != 0 {
			t.Errorf("the chunks of removed page %s remain", u)
		}
	}
}
