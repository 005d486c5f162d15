package webfetch

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

const robotsTxt = `# comment line
User-agent: *
Disallow: /private/
Disallow: /*.pdf$
Allow: /private/open
Crawl-delay: 1

User-agent: QuireBot
Disallow: /no-quire/
Disallow: /search?
Crawl-delay: 2.5

User-agent: OtherBot
Disallow: /

Sitemap: https://example.com/sitemap_index.xml
Sitemap: https://example.com/news.xml
`

func TestParseRobots(t *testing.T) {
	t.Parallel()
	quire := ParseRobots([]byte(robotsTxt), DefaultUserAgent)
	other := ParseRobots([]byte(robotsTxt), "SomeCrawler/2.0")
	tests := []struct {
		robots *Robots
		path   string
		want   bool
	}{
		// QuireBot's own group applies, not "*".
		{quire, "/", true},
		{quire, "/no-quire/page", false},
		{quire, "/private/x", true},
		{quire, "/search?q=x", false},
		{quire, "/search", true},
		// Unknown agents get the "*" group.
		{other, "/private/x", false},
		{other, "/private/open/doc", true},
		{other, "/files/report.pdf", false},
		{other, "/files/report.pdf?x=1", true},
		{other, "/no-quire/page", true},
	}
	for _, tt := range tests {
		u, _ := url.Parse("https://example.com" + tt.path)
		if got := tt.robots.Allowed(u); got != tt.want {
			t.Errorf("Allowed(%s) = %v, want %v", tt.path, got, tt.want)
		}
	}
	if quire.CrawlDelay != 2500*time.Millisecond || other.CrawlDelay != time.Second {
		t.Errorf("CrawlDelay = %v / %v", quire.CrawlDelay, other.CrawlDelay)
	}
	if want := []string{"https://example.com/sitemap_index.xml", "https://example.com/news.xml"}; !slices.Equal(quire.Sitemaps, want) {
		t.Errorf("Sitemaps = %q, want %q", quire.Sitemaps, want)
	}
}

func TestParseRobotsLenient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, path string
		want             bool
	}{
		{"empty", "", "/x", true},
		{"html soft 404", "<html><body>Not found</body></html>", "/x", true},
		{"rule before user-agent", "Disallow: /early\nUser-agent: *\nDisallow: /late\n", "/late/x", false},
		{"rule before user-agent ignored", "Disallow: /early\nUser-agent: *\nDisallow: /late\n", "/early", true},
		{"bad crawl-delay", "User-agent: *\nCrawl-delay: soon\nDisallow: /x\n", "/x/1", false},
		{"disallow all", "User-agent: *\nDisallow: /\n", "/anything", false},
		{"empty disallow allows", "User-agent: *\nDisallow:\n", "/anything", true},
		{"case-insensitive agent", "User-agent: quirebot\nDisallow: /q\n", "/q", false},
		{"crlf", "User-agent: *\r\nDisallow: /w\r\n", "/w", false},
	}
	for _, tt := range tests {
		r := ParseRobots([]byte(tt.body), DefaultUserAgent)
		u, _ := url.Parse("http://example.com" + tt.path)
		if got := r.Allowed(u); got != tt.want {
			t.Errorf("%s: Allowed(%s) = %v, want %v", tt.name, tt.path, got, tt.want)
		}
	}
}

func TestFetcherRobots(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/robots.txt" {
			t.Errorf("unexpected request %s", r.URL)
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprint(w, "User-agent: *\nDisallow: /secret\n")
	})
	f := newLocalFetcher(t, Config{})
	r, err := f.Robots(t.Context(), srv.URL+"/some/page?x=1")
	if err != nil {
		t.Fatalf("Robots: %v", err)
	}
	secret, _ := url.Parse(srv.URL + "/secret/x")
	open, _ := url.Parse(srv.URL + "/open")
	if r.Allowed(secret) || !r.Allowed(open) {
		t.Errorf("Allowed(secret) = %v, Allowed(open) = %v", r.Allowed(secret), r.Allowed(open))
	}
}

func TestFetcherRobotsStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code      int
		wantAllow bool // when no error
		transient bool // a retryable error
	}{
		{404, true, false},
		{410, true, false},
		{401, true, false},
		{403, true, false},
		{304, true, false},
		{429, false, true},
		{500, false, true},
		{503, false, true},
	}
	for _, tt := range tests {
		srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tt.code)
		})
		r, err := newLocalFetcher(t, Config{}).Robots(t.Context(), srv.URL)
		if tt.transient {
			if err == nil || Permanent(err) {
				t.Errorf("robots.txt %d: error = %v, want a transient error", tt.code, err)
			}
			if _, ok := errors.AsType[*HTTPError](err); !ok {
				t.Errorf("robots.txt %d: error %v is not an *HTTPError", tt.code, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("robots.txt %d: %v", tt.code, err)
			continue
		}
		u, _ := url.Parse(srv.URL + "/anything")
		if r.Allowed(u) != tt.wantAllow {
			t.Errorf("robots.txt %d: Allowed = %v, want %v", tt.code, r.Allowed(u), tt.wantAllow)
		}
	}
}

func TestFetcherRobotsBlocked(t *testing.T) {
	t.Parallel()
	_, err := New(Config{}).Robots(t.Context(), "http://169.254.169.254/")
	if !errors.Is(err, ErrBlockedAddress) {
		t.Fatalf("error = %v, want ErrBlockedAddress", err)
	}
}

func TestFetcherRobotsRedirectLoop(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/robots.txt", http.StatusFound)
	})
	r, err := newLocalFetcher(t, Config{}).Robots(t.Context(), srv.URL)
	if err != nil {
		t.Fatalf("redirect loop: %v, want robots.txt taken as unavailable", err)
	}
	u, _ := url.Parse(srv.URL + "/x")
	if !r.Allowed(u) {
		t.Error("unavailable robots.txt disallows")
	}
}
