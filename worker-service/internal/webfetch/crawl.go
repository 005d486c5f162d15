package webfetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// CrawlConfig configures a [Crawler]. Zero values take the documented defaults.
type CrawlConfig struct {
	// Limiter spaces and bounds requests per host. Share one between the crawls of a process
	// so concurrent crawls of one site share its budget. Defaults to a new
	// NewHostLimiter(DefaultPerHost, DefaultDelay) per Crawler.
	Limiter *HostLimiter
	// MaxCrawlDelay caps the robots.txt Crawl-delay honoured between two requests of a crawl.
	// Defaults to 5s.
	MaxCrawlDelay time.Duration
	// MaxSitemaps is how many sitemap documents (including those listed by a sitemap index)
	// one crawl reads. Defaults to 10.
	MaxSitemaps int
	// MaxSitemapURLs is how many page URLs one crawl takes from sitemaps. Defaults to 10000.
	MaxSitemapURLs int
	// MaxQueue bounds the URLs waiting to be fetched; further links are dropped. Defaults to
	// 10000.
	MaxQueue int
	// MaxFailures is how many page fetches may be wasted (failed, or redirected off the site
	// or to a page already seen) after the first page before the crawl stops early, which
	// bounds the requests of a crawl to maxPages+MaxFailures pages plus robots.txt and
	// sitemaps. Defaults to 50.
	MaxFailures int
}

// WithDefaults returns c with zero fields set to their defaults.
func (c CrawlConfig) WithDefaults() CrawlConfig {
	if c.Limiter == nil {
		c.Limiter = NewHostLimiter(DefaultPerHost, DefaultDelay)
	}
	if c.MaxCrawlDelay <= 0 {
		c.MaxCrawlDelay = 5 * time.Second
	}
	if c.MaxSitemaps <= 0 {
		c.MaxSitemaps = 10
	}
	if c.MaxSitemapURLs <= 0 {
		c.MaxSitemapURLs = 10000
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 10000
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = 50
	}
	return c
}

// Crawler discovers the pages of one site: it reads robots.txt and the sitemaps, fetches
// pages breadth-first, follows their same-site links and de-duplicates normalised URLs. It
// is safe for concurrent use; each [Crawler.Discover] call is one sequential crawl.
type Crawler struct {
	f   *Fetcher
	cfg CrawlConfig
}

// NewCrawler returns a Crawler fetching through f.
func NewCrawler(f *Fetcher, cfg CrawlConfig) *Crawler {
	return &Crawler{f: f, cfg: cfg.WithDefaults()}
}

// Visit is one page a crawl found.
type Visit struct {
	// URL is the page's normalised final URL (after redirects).
	URL string
	// Depth is the number of links followed from the start page (0); pages listed in a
	// sitemap have depth 1.
	Depth int
	// Page is the fetched page.
	Page *Page
}

// CrawlStats counts what one crawl did.
type CrawlStats struct {
	// Queued is the number of distinct same-site URLs found (start page, sitemaps, links).
	Queued int
	// Visited is the number of pages handed to visit.
	Visited int
	// Failed is the number of page fetches that failed (and robots.txt of other origins of
	// the site that could not be read).
	Failed int
	// Disallowed is the number of URLs robots.txt refused.
	Disallowed int
	// Skipped is the number of fetched pages not visited because they redirected to another
	// site or to a page already seen.
	Skipped int
	// Gone lists the normalised URLs of the site that answered 404 Not Found or 410 Gone.
	Gone []string
	// Exhausted: the crawl ended with nothing left to fetch (neither maxPages nor
	// MaxFailures stopped it), so a page of the site it did not visit is no longer linked.
	Exhausted bool
}

type queued struct {
	url   *url.URL
	depth int
}

type robotsResult struct {
	robots *Robots
	err    error
}

// Discover crawls the site of start and calls visit, in order, for each page it fetches
// successfully, until maxPages pages were visited (values below 1 mean 1), nothing is left
// to fetch, or MaxFailures fetches were wasted. The start page comes first (depth 0); when
// maxDepth ≥ 1 the page URLs of the site's sitemaps (those listed in robots.txt, or
// /sitemap.xml) follow at depth 1, then the links of the pages, breadth-first; links are
// followed only from HTML pages less than maxDepth (below 0 means 0) links from start.
// Every request goes through the Fetcher's guard and the host limiter, spaced by the
// robots.txt Crawl-delay (capped at MaxCrawlDelay).
//
// A page is on the site when [SameSite] says so for start (or, when start redirects to
// another site, for where it landed: the crawl follows it there); its URL is normalised with
// [Normalize] and fetched at most once; robots.txt (for the page's scheme, host and port)
// must allow it for the Fetcher's User-Agent. A page that redirects off the site is not
// followed. Problems with sitemaps, with other pages, or with the robots.txt of the site's
// other origins (http versus https, www) only shrink the crawl.
//
// Discover fails, with the stats so far, when start is invalid ([ErrInvalidURL]) or blocked,
// when start's robots.txt cannot be read (a transient error) or refuses start
// ([ErrDisallowed]), when fetching start fails (classify with [Permanent]), when ctx ends,
// or with visit's error (wrapped), which stops the crawl.
func (c *Crawler) Discover(ctx context.Context, start string, maxPages, maxDepth int,
	visit func(ctx context.Context, v Visit) error,
) (CrawlStats, error) {
	var stats CrawlStats
	maxPages, maxDepth = max(maxPages, 1), max(maxDepth, 0)
	norm, err := Normalize(start)
	if err != nil {
		return stats, fmt.Errorf("webfetch: crawl: %w", err)
	}
	site, _ := url.Parse(norm)
	if _, err := c.f.checkURL(site); err != nil {
		return stats, fmt.Errorf("webfetch: crawl %s: %w", norm, err)
	}

	cr := &crawl{c: c, robots: map[string]robotsResult{}}
	startRobots, err := cr.robotsFor(ctx, site)
	if err != nil {
		return stats, err
	}
	if !startRobots.Allowed(site) {
		return stats, fmt.Errorf("webfetch: crawl %s: %w", norm, ErrDisallowed)
	}

	// The start page, following redirects wherever they lead.
	stats.Queued = 1
	page, err := cr.fetch(ctx, c.f.client, site, startRobots)
	if err != nil {
		return stats, fmt.Errorf("webfetch: crawl: %w", err)
	}
	seen := map[string]bool{norm: true}
	if final, err := Normalize(page.URL); err == nil {
		seen[final] = true
		norm = final
		site, _ = url.Parse(final)
	}
	stats.Visited++
	if err := visit(ctx, Visit{URL: norm, Depth: 0, Page: page}); err != nil {
		return stats, fmt.Errorf("webfetch: crawl: visit %s: %w", norm, err)
	}
	if maxDepth == 0 || stats.Visited >= maxPages {
		return stats, nil
	}

	var queue []queued
	enqueue := func(link string, depth int) {
		if seen[link] || len(queue) >= c.cfg.MaxQueue {
			return
		}
		u, err := url.Parse(link)
		if err != nil || !SameSite(site, u) {
			return
		}
		seen[link] = true
		queue = append(queue, queued{url: u, depth: depth})
		stats.Queued++
	}
	siteRobots, err := cr.robotsFor(ctx, site)
	if err != nil {
		if ctx.Err() != nil {
			return stats, fmt.Errorf("webfetch: crawl: %w", context.Cause(ctx))
		}
		siteRobots = startRobots
	}
	for _, link := range cr.sitemapURLs(ctx, site, siteRobots) {
		enqueue(link, 1)
	}
	if ctx.Err() != nil {
		return stats, fmt.Errorf("webfetch: crawl: %w", context.Cause(ctx))
	}
	for _, link := range pageLinks(page) {
		enqueue(link, 1)
	}

	for len(queue) > 0 && stats.Visited < maxPages && stats.Failed+stats.Skipped < c.cfg.MaxFailures {
		q := queue[0]
		queue = queue[1:]
		robots, err := cr.robotsFor(ctx, q.url)
		if err != nil {
			if ctx.Err() != nil {
				return stats, fmt.Errorf("webfetch: crawl: %w", context.Cause(ctx))
			}
			stats.Failed++
			continue
		}
		if !robots.Allowed(q.url) {
			stats.Disallowed++
			continue
		}
		page, err := cr.fetch(ctx, c.f.siteClient, q.url, robots)
		switch {
		case ctx.Err() != nil:
			return stats, fmt.Errorf("webfetch: crawl: %w", context.Cause(ctx))
		case errors.Is(err, errOffSite):
			stats.Skipped++
			continue
		case err != nil:
			if he, ok := errors.AsType[*HTTPError](err); ok && (he.StatusCode == http.StatusNotFound || he.StatusCode == http.StatusGone) {
				stats.Gone = append(stats.Gone, q.url.String())
			}
			stats.Failed++
			continue
		}
		final, err := Normalize(page.URL)
		if err != nil {
			stats.Skipped++
			continue
		}
		if final != q.url.String() {
			if seen[final] {
				stats.Skipped++
				continue
			}
			seen[final] = true
		}
		stats.Visited++
		if err := visit(ctx, Visit{URL: final, Depth: q.depth, Page: page}); err != nil {
			return stats, fmt.Errorf("webfetch: crawl: visit %s: %w", final, err)
		}
		if q.depth < maxDepth {
			for _, link := range pageLinks(page) {
				enqueue(link, q.depth+1)
			}
		}
	}
	stats.Exhausted = len(queue) == 0
	return stats, nil
}

// pageLinks returns the links of an HTML page, none for other media types.
func pageLinks(p *Page) []string {
	if p.MediaType != "text/html" && p.MediaType != "application/xhtml+xml" {
		return nil
	}
	links, err := ExtractLinks(p.URL, p.Body)
	if err != nil {
		return nil
	}
	return links
}

// crawl is the state of one Discover call.
type crawl struct {
	c         *Crawler
	robots    map[string]robotsResult // by scheme://host:port
	lastStart time.Time
}

// robotsFor returns the robots.txt of u's origin, fetched once per crawl.
func (cr *crawl) robotsFor(ctx context.Context, u *url.URL) (*Robots, error) {
	origin := u.Scheme + "://" + u.Host
	if r, ok := cr.robots[origin]; ok {
		return r.robots, r.err
	}
	var robots *Robots
	err := cr.polite(ctx, u.Host, 0, func() error {
		var err error
		robots, err = cr.c.f.Robots(ctx, origin)
		return err
	})
	if err != nil && ctx.Err() == nil {
		cr.robots[origin] = robotsResult{err: err}
	} else if err == nil {
		cr.robots[origin] = robotsResult{robots: robots}
	}
	return robots, err
}

// fetch fetches a page politely through client.
func (cr *crawl) fetch(ctx context.Context, client *http.Client, u *url.URL, robots *Robots) (*Page, error) {
	var page *Page
	err := cr.polite(ctx, u.Host, robots.CrawlDelay, func() error {
		var err error
		page, err = cr.c.f.fetch(ctx, client, u.String())
		return err
	})
	return page, err
}

// polite runs fn as one request to host: after crawlDelay (capped) since the crawl's previous
// request, holding a slot of the host limiter.
func (cr *crawl) polite(ctx context.Context, host string, crawlDelay time.Duration, fn func() error) error {
	if d := min(crawlDelay, cr.c.cfg.MaxCrawlDelay); d > 0 && !cr.lastStart.IsZero() {
		if wait := time.Until(cr.lastStart.Add(d)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("webfetch: crawl delay: %w", context.Cause(ctx))
			}
		}
	}
	release, err := cr.c.cfg.Limiter.Acquire(ctx, host)
	if err != nil {
		return err
	}
	defer release()
	cr.lastStart = time.Now()
	return fn()
}

// sitemapURLs reads the site's sitemaps (those robots.txt lists on the same site, or
// /sitemap.xml) and returns their page URLs, normalised, within the configured bounds.
// Errors only shorten the list.
func (cr *crawl) sitemapURLs(ctx context.Context, site *url.URL, robots *Robots) []string {
	var todo []string
	for _, s := range robots.Sitemaps {
		if u, err := url.Parse(s); err == nil && SameSite(site, u) {
			todo = append(todo, s)
		}
	}
	if len(todo) == 0 {
		todo = append(todo, (&url.URL{Scheme: site.Scheme, Host: site.Host, Path: "/sitemap.xml"}).String())
	}
	var (
		urls    []string
		fetched = map[string]bool{}
	)
	for len(todo) > 0 && len(fetched) < cr.c.cfg.MaxSitemaps && len(urls) < cr.c.cfg.MaxSitemapURLs {
		next := todo[0]
		todo = todo[1:]
		norm, err := Normalize(next)
		if err != nil || fetched[norm] {
			continue
		}
		fetched[norm] = true
		nu, _ := url.Parse(norm)
		var sm *Sitemap
		err = cr.polite(ctx, nu.Host, robots.CrawlDelay, func() error {
			var err error
			sm, err = cr.c.f.Sitemap(ctx, norm, cr.c.cfg.MaxSitemapURLs-len(urls))
			return err
		})
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				return urls
			}
			continue
		}
		for _, loc := range sm.URLs {
			if n, err := Normalize(loc); err == nil {
				urls = append(urls, n)
			}
		}
		for _, child := range sm.Sitemaps {
			if u, err := url.Parse(child); err == nil && SameSite(site, u) {
				todo = append(todo, child)
			}
		}
	}
	return urls
}
