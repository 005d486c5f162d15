package webfetch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/temoto/robotstxt"
)

// MaxRobotsBytes is how much of a robots.txt is read; the rest is ignored (RFC 9309 asks
// crawlers to read at least 500 KiB).
const MaxRobotsBytes = 512 << 10

// Robots is a site's robots.txt as it applies to one User-Agent.
type Robots struct {
	group *robotstxt.Group // nil: everything allowed
	// Sitemaps are the Sitemap: lines, as written (absolute URLs, possibly on other hosts).
	Sitemaps []string
	// CrawlDelay is the Crawl-delay of the group that applies, 0 when none.
	CrawlDelay time.Duration
}

// ParseRobots reads a robots.txt body for userAgent (matched case-insensitively against the
// User-agent lines by its product token prefix, e.g. "QuireBot", falling back to "*").
// Lines it does not understand, and rules before any User-agent line, are ignored, so it
// never fails; an empty body allows everything.
func ParseRobots(body []byte, userAgent string) *Robots {
	data, err := robotstxt.FromBytes(cleanRobots(body))
	if err != nil || data == nil {
		// cleanRobots leaves nothing the parser rejects; if it ever does, the lines are
		// unreadable and, like an unreadable file, allow everything.
		return &Robots{}
	}
	g := data.FindGroup(userAgent)
	return &Robots{group: g, Sitemaps: data.Sitemaps, CrawlDelay: g.CrawlDelay}
}

// Allowed reports whether the URL's path and query may be fetched.
func (r *Robots) Allowed(u *url.URL) bool {
	if r == nil || r.group == nil {
		return true
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return r.group.Test(p)
}

// Robots fetches and parses the robots.txt of the site (scheme, host and port) of siteURL,
// through the same guarded client as [Fetcher.Fetch], following up to Config.MaxRedirects
// redirects. Per RFC 9309 an unavailable robots.txt (a 4xx answer such as 404, 401 or 403,
// an unfollowed 3xx, too many redirects) allows everything; a 429 or 5xx answer, like a
// network error, is returned as an error (transient: retry the crawl later) because the
// site's wishes are unknown. A blocked or invalid URL fails as [Fetcher.Fetch] does. Only
// the first [MaxRobotsBytes] are read.
func (f *Fetcher) Robots(ctx context.Context, siteURL string) (*Robots, error) {
	u, err := url.Parse(siteURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	robotsURL := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/robots.txt"}).String()
	resp, err := f.get(ctx, f.client, robotsURL, "text/plain,*/*;q=0.1")
	if errors.Is(err, ErrTooManyRedirects) {
		return &Robots{}, nil // RFC 9309 2.3.1.2: may be taken as unavailable
	}
	if err != nil {
		return nil, fmt.Errorf("webfetch: robots.txt: %w", err)
	}
	defer resp.close()
	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
	case code >= 300 && code <= 499 && code != 429:
		// Unavailable (a redirect without Location, 404, 401, 403, ...): no restrictions.
		return &Robots{}, nil
	default:
		return nil, fmt.Errorf("webfetch: robots.txt: %w", newHTTPError(resp.Request.URL.String(), resp.Response, time.Now()))
	}
	body, err := resp.read(MaxRobotsBytes)
	if err != nil {
		return nil, fmt.Errorf("webfetch: robots.txt: read: %w", err)
	}
	return ParseRobots(body, f.cfg.UserAgent), nil
}

// cleanRobots keeps the lines the robotstxt parser accepts without error: known directives
// with a value, group rules only after a User-agent line, and numeric crawl delays.
func cleanRobots(body []byte) []byte {
	var out bytes.Buffer
	inGroup := false
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 4096), MaxRobotsBytes)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		switch key {
		case "user-agent", "useragent":
			inGroup = true
		case "allow", "disallow":
			if !inGroup {
				continue
			}
		case "crawl-delay", "crawldelay":
			if d, err := strconv.ParseFloat(val, 64); !inGroup || err != nil || d < 0 || d > 86400 {
				continue
			}
		case "sitemap":
		default:
			continue
		}
		out.WriteString(key + ": " + val + "\n")
	}
	// A line longer than the buffer ends the scan: the lines before it are kept.
	_ = sc.Err()
	return out.Bytes()
}
