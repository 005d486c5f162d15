package webfetch

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// testSite serves a 30-page site: /p/0 … /p/29, each linking to the next two pages, back to
// the start, to a robots-disallowed /private/ page, to another site and to non-http links.
// robots.txt disallows /private/ and names the sitemap, which lists a few deep pages.
type testSite struct {
	*countingServer
	mu       sync.Mutex
	requests map[string]int
	robots   string // robots.txt body; "" = 404
	sitemap  bool
}

func newTestSite(t *testing.T, robots string, sitemap bool) *testSite {
	t.Helper()
	s := &testSite{requests: map[string]int{}, robots: robots, sitemap: sitemap}
	s.countingServer = newCountingServer(t, s.serve)
	return s
}

func (s *testSite) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests[r.URL.RequestURI()]++
	s.mu.Unlock()
	var n int
	switch {
	case r.URL.Path == "/robots.txt":
		if s.robots == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprint(w, strings.ReplaceAll(s.robots, "$SITE", "http://"+r.Host))
	case r.URL.Path == "/sitemap.xml":
		if !s.sitemap {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		_, _ = fmt.Fprintf(w, `<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
			<url><loc>http://%[1]s/p/28</loc></url><url><loc>http://%[1]s/p/3#frag</loc></url>
			<url><loc>http://elsewhere.example/x</loc></url></urlset>`, r.Host)
	case r.URL.Path == "/alias":
		http.Redirect(w, r, "/p/1", http.StatusMovedPermanently)
	case r.URL.Path == "/offsite":
		http.Redirect(w, r, "http://elsewhere.example/", http.StatusFound)
	case r.URL.Path == "/doc.pdf":
		w.Header().Set("Content-Type", "application/pdf")
		_, _ = fmt.Fprint(w, "%PDF-1.7 <a href=\"/p/29\">")
	case strings.HasPrefix(r.URL.Path, "/private/"):
		w.Header().Set("Content-Type", "text/html")
		_, _ = fmt.Fprint(w, "<p>private</p>")
	case func() bool { _, err := fmt.Sscanf(r.URL.Path, "/p/%d", &n); return err == nil && n >= 0 && n < 30 }():
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, `<html><head><title>Page %d</title></head><body>
			<nav><a href="/p/0">Home</a> <a href="/P/0">Case differs</a> <a href="#main">Skip</a></nav>
			<article><p>Page %d.</p>
			<a href="/p/%d">next</a> <a href="../p/%d?">next but one</a>
			<a href="/private/%d">private</a> <a href="http://elsewhere.example/p/%d">other site</a>
			<a href="mailto:x@example.com">mail</a> <a href="javascript:void(0)">js</a>
			<a href="/alias">alias of 1</a> <a href="/offsite">off site</a> <a href="/missing">404</a>
			<a href="/doc.pdf">pdf</a>
			</article></body></html>`, n, n, n+1, n+2, n, n)
	default:
		http.NotFound(w, r)
	}
}

func (s *testSite) count(uri string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[uri]
}

func (s *testSite) privateRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for uri, c := range s.requests {
		if strings.HasPrefix(uri, "/private/") {
			n += c
		}
	}
	return n
}

func newTestCrawler(t *testing.T) *Crawler {
	t.Helper()
	return NewCrawler(newLocalFetcher(t, Config{}), CrawlConfig{Limiter: NewHostLimiter(1, 0)})
}

func collect(visits *[]Visit) func(context.Context, Visit) error {
	return func(_ context.Context, v Visit) error {
		*visits = append(*visits, v)
		return nil
	}
}

func TestDiscoverMaxPages(t *testing.T) {
	t.Parallel()
	site := newTestSite(t, "User-agent: *\nDisallow: /private/\nSitemap: $SITE/sitemap.xml\n", true)
	var visits []Visit
	stats, err := newTestCrawler(t).Discover(t.Context(), site.URL+"/p/0", 20, 50, collect(&visits))
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if len(visits) != 20 || stats.Visited != 20 {
		t.Fatalf("visited %d pages (stats %d), want exactly 20", len(visits), stats.Visited)
	}
	seen := map[string]bool{}
	for i, v := range visits {
		if seen[v.URL] {
			t.Errorf("page %s visited twice", v.URL)
		}
		seen[v.URL] = true
		if strings.Contains(v.URL, "/private/") || !strings.HasPrefix(v.URL, site.URL+"/") {
			t.Errorf("visited %s", v.URL)
		}
		if v.Page == nil || v.Page.URL == "" {
			t.Errorf("visit %d has no page", i)
		}
	}
	if visits[0].URL != site.URL+"/p/0" || visits[0].Depth != 0 {
		t.Errorf("first visit = %s depth %d, want the start page at depth 0", visits[0].URL, visits[0].Depth)
	}
	// Sitemap pages come right after the start page, at depth 1.
	if visits[1].URL != site.URL+"/p/28" || visits[1].Depth != 1 || visits[2].URL != site.URL+"/p/3" {
		t.Errorf("visits 1, 2 = %s (depth %d), %s; want the sitemap's pages", visits[1].URL, visits[1].Depth, visits[2].URL)
	}
	if n := site.privateRequests(); n != 0 {
		t.Errorf("robots.txt Disallow ignored: %d requests under /private/", n)
	}
	for uri, c := range site.requests {
		// /alias redirects to /p/1: both requests are needed to learn it is a duplicate.
		if c > 1 && uri != "/alias" && uri != "/p/1" {
			t.Errorf("%s requested %d times", uri, c)
		}
	}
	if stats.Disallowed == 0 || stats.Failed == 0 || stats.Skipped == 0 {
		t.Errorf("stats = %+v, want disallowed, failed (/missing) and skipped (/alias, /offsite) counted", stats)
	}
	if site.count("/robots.txt") != 1 {
		t.Errorf("robots.txt fetched %d times, want 1", site.count("/robots.txt"))
	}
}

func TestDiscoverWholeSite(t *testing.T) {
	t.Parallel()
	site := newTestSite(t, "User-agent: QuireBot\nDisallow: /private/\n", false)
	var visits []Visit
	stats, err := newTestCrawler(t).Discover(t.Context(), site.URL+"/p/0", 1000, 1000, collect(&visits))
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	// 30 pages, /P/0 (a different path on a case-sensitive server: 404), the PDF, no duplicates.
	want := map[string]bool{site.URL + "/doc.pdf": true}
	for i := range 30 {
		want[fmt.Sprintf("%s/p/%d", site.URL, i)] = true
	}
	got := map[string]bool{}
	for _, v := range visits {
		got[v.URL] = true
		if !want[v.URL] {
			t.Errorf("unexpected visit %s", v.URL)
		}
		if v.URL == site.URL+"/doc.pdf" && v.Page.MediaType != "application/pdf" {
			t.Errorf("PDF media type %q", v.Page.MediaType)
		}
	}
	if len(visits) != len(want) || len(got) != len(want) {
		t.Errorf("visited %d (%d distinct), want %d; stats %+v", len(visits), len(got), len(want), stats)
	}
	if n := site.privateRequests(); n != 0 {
		t.Errorf("QuireBot group Disallow ignored: %d requests under /private/", n)
	}
	if site.count("/sitemap.xml") != 1 {
		t.Errorf("/sitemap.xml not tried once without a Sitemap: line")
	}
}

func TestDiscoverMaxDepth(t *testing.T) {
	t.Parallel()
	site := newTestSite(t, "", false)
	tests := []struct {
		depth    int
		maxPages int
		want     []string
	}{
		{0, 10, []string{"/p/0"}},
		{1, 100, []string{"/p/0", "/p/1", "/p/2", "/private/0", "/doc.pdf"}}, // robots.txt is a 404
	}
	for _, tt := range tests {
		var visits []Visit
		_, err := newTestCrawler(t).Discover(t.Context(), site.URL+"/p/0", tt.maxPages, tt.depth, collect(&visits))
		if err != nil {
			t.Fatalf("depth %d: %v", tt.depth, err)
		}
		var got []string
		for _, v := range visits {
			got = append(got, strings.TrimPrefix(v.URL, site.URL))
			if v.Depth > tt.depth {
				t.Errorf("depth %d: %s at depth %d", tt.depth, v.URL, v.Depth)
			}
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("maxDepth %d: visited %q, want %q", tt.depth, got, tt.want)
		}
	}
	if site.count("/sitemap.xml") != 1 {
		t.Errorf("sitemap requested %d times, want once (not at depth 0)", site.count("/sitemap.xml"))
	}
}

func TestDiscoverStartErrors(t *testing.T) {
	t.Parallel()
	site := newTestSite(t, "User-agent: *\nDisallow: /private/\n", false)
	down := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	c := newTestCrawler(t)
	noop := func(context.Context, Visit) error { return nil }
	tests := []struct {
		name      string
		start     string
		wantErr   error
		permanent bool
	}{
		{"disallowed start", site.URL + "/private/x", ErrDisallowed, true},
		{"start 404", site.URL + "/nope", nil, true},
		{"robots 503", down.URL + "/", nil, false},
		{"invalid", "ftp://example.com/", ErrInvalidURL, true},
	}
	for _, tt := range tests {
		_, err := c.Discover(t.Context(), tt.start, 10, 2, noop)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: error = %v, want %v", tt.name, err, tt.wantErr)
		}
		if Permanent(err) != tt.permanent {
			t.Errorf("%s: Permanent(%v) = %v, want %v", tt.name, err, Permanent(err), tt.permanent)
		}
	}
	// Blocked starts are refused by the production guard (no AllowPrivate), before connecting.
	guarded := NewCrawler(New(Config{}), CrawlConfig{})
	for _, start := range []string{site.URL + "/p/0", "http://169.254.169.254/latest/", "http://10.0.0.1/"} {
		_, err := guarded.Discover(t.Context(), start, 5, 1, noop)
		if !errors.Is(err, ErrBlockedAddress) || !Permanent(err) {
			t.Errorf("start %s without AllowPrivate: error = %v, want ErrBlockedAddress", start, err)
		}
	}
	if n := site.count("/robots.txt"); n != 2 {
		t.Errorf("robots.txt requested %d times, want 2 (never by the guarded crawler)", n)
	}
}

func TestDiscoverVisitErrorStops(t *testing.T) {
	t.Parallel()
	site := newTestSite(t, "", false)
	stop := errors.New("queue full")
	n := 0
	stats, err := newTestCrawler(t).Discover(t.Context(), site.URL+"/p/0", 20, 5, func(context.Context, Visit) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 || stats.Visited != 3 {
		t.Errorf("error = %v after %d visits (stats %+v), want the visit error after 3", err, n, stats)
	}
}

func TestDiscoverCancelled(t *testing.T) {
	t.Parallel()
	site := newTestSite(t, "", false)
	ctx, cancel := context.WithCancel(t.Context())
	n := 0
	_, err := newTestCrawler(t).Discover(ctx, site.URL+"/p/0", 20, 5, func(context.Context, Visit) error {
		n++
		if n == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 2 {
		t.Errorf("error = %v after %d visits, want context.Canceled after 2", err, n)
	}
}

func TestDiscoverCrawlDelay(t *testing.T) {
	t.Parallel()
	site := newTestSite(t, "User-agent: *\nCrawl-delay: 0.1\n", false)
	start := time.Now()
	var visits []Visit
	_, err := newTestCrawler(t).Discover(t.Context(), site.URL+"/p/0", 3, 5, collect(&visits))
	if err != nil {
		t.Fatal(err)
	}
	// robots.txt, then /sitemap.xml and 3 pages each at least 100ms after the previous request.
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("3 pages with Crawl-delay 0.1 took %v, want ≥ 400ms", d)
	}
	if len(visits) != 3 {
		t.Errorf("visited %d", len(visits))
	}
}

func TestDiscoverStartRedirectsToAnotherSite(t *testing.T) {
	t.Parallel()
	target := newTestSite(t, "", false)
	old := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			http.NotFound(w, r)
			return
		}
		http.Redirect(w, r, target.URL+"/p/0", http.StatusMovedPermanently)
	})
	var visits []Visit
	_, err := newTestCrawler(t).Discover(t.Context(), old.URL+"/", 3, 3, collect(&visits))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range visits {
		got = append(got, strings.TrimPrefix(v.URL, target.URL))
	}
	if want := []string{"/p/0", "/p/1", "/p/2"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("visited %q, want %q on the site start redirected to", got, want)
	}
}

func TestDiscoverSitemapIndex(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/robots.txt", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "Sitemap: http://%[1]s/index.xml\nSitemap: http://elsewhere.example/sitemap.xml\n", r.Host)
	})
	mux.HandleFunc("/index.xml", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, `<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
			<sitemap><loc>http://%[1]s/a.xml.gz</loc></sitemap>
			<sitemap><loc>http://elsewhere.example/b.xml</loc></sitemap>
			<sitemap><loc>http://%[1]s/index.xml</loc></sitemap></sitemapindex>`, r.Host)
	})
	mux.HandleFunc("/a.xml.gz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/gzip")
		zw := gzip.NewWriter(w)
		_, _ = fmt.Fprintf(zw, `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
			<url><loc>http://%[1]s/deep/1</loc></url><url><loc>http://%[1]s/deep/2</loc></url>
			<url><loc>http://elsewhere.example/x</loc></url></urlset>`, r.Host)
		_ = zw.Close()
	})
	var mu sync.Mutex
	requested := map[string]int{}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requested[r.URL.Path]++
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		_, _ = fmt.Fprint(w, "<p>no links</p>")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	var visits []Visit
	_, err := newTestCrawler(t).Discover(t.Context(), srv.URL+"/", 10, 1, collect(&visits))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range visits {
		got = append(got, strings.TrimPrefix(v.URL, srv.URL))
	}
	if want := []string{"/", "/deep/1", "/deep/2"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("visited %q, want %q", got, want)
	}
}

func TestDiscoverStopsAfterMaxFailures(t *testing.T) {
	t.Parallel()
	site := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		for i := range 100 {
			_, _ = fmt.Fprintf(w, `<a href="/missing/%d">x</a>`, i)
		}
	})
	c := NewCrawler(newLocalFetcher(t, Config{}), CrawlConfig{Limiter: NewHostLimiter(1, 0), MaxFailures: 5})
	stats, err := c.Discover(t.Context(), site.URL+"/", 20, 2, func(context.Context, Visit) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	// robots.txt, /sitemap.xml, the start page and 5 failed pages.
	if stats.Failed != 5 || stats.Visited != 1 || site.hits.Load() != 8 {
		t.Errorf("stats %+v after %d requests, want 5 failures and 8 requests", stats, site.hits.Load())
	}
}
