package webfetch

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Normalize returns the canonical form of an absolute http or https URL, used to de-duplicate
// the pages of a crawl. It is deliberately conservative, changing nothing a server could
// tell apart:
//
//   - scheme and host are lower-cased, a trailing dot on the host is dropped;
//   - the default port (80 for http, 443 for https) is dropped;
//   - an empty path becomes "/", and dot segments are resolved ("/a/./b/../c" is "/a/c");
//   - the fragment and an empty query ("?") are dropped;
//   - the query is otherwise kept as it is (parameters are not sorted or removed), and the
//     path keeps its case, trailing slash and percent-escapes.
//
// It fails with [ErrInvalidURL] for a relative URL, another scheme, credentials or no host.
func Normalize(rawURL string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	n, err := normalizeURL(u)
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

// Resolve resolves ref, a link as written in a page (absolute, relative, or
// scheme-relative), against base, the page's URL, and normalises the result like
// [Normalize]. Links that are not http or https (mailto:, javascript:, tel:, data:, ...) fail
// with [ErrInvalidURL].
func Resolve(base *url.URL, ref string) (string, error) {
	r, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	n, err := normalizeURL(base.ResolveReference(r))
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

func normalizeURL(u *url.URL) (*url.URL, error) {
	if !u.IsAbs() {
		return nil, fmt.Errorf("%w: %q is not absolute", ErrInvalidURL, u.Redacted())
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("%w: scheme %q (only http and https)", ErrInvalidURL, u.Scheme)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: credentials in url", ErrInvalidURL)
	}
	if u.Opaque != "" {
		return nil, fmt.Errorf("%w: %q has no host", ErrInvalidURL, u.Redacted())
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return nil, fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	n := &url.URL{Scheme: scheme, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if port != "" {
		n.Host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		n.Host = "[" + host + "]" // IPv6 literal
	} else {
		n.Host = host
	}
	if n.Path == "" {
		n.Path, n.RawPath = "/", ""
	}
	// Resolving the empty reference removes dot segments and keeps the query.
	n = n.ResolveReference(&url.URL{})
	n.Fragment, n.RawFragment, n.ForceQuery = "", "", false
	return n, nil
}

// SameSite reports whether a and b are on the same site: the same host, ignoring case, a
// leading "www." and the scheme, and the same port (the default ports of http and https
// count as the same). Subdomains other than www are other sites.
func SameSite(a, b *url.URL) bool {
	return siteKey(a) == siteKey(b)
}

func siteKey(u *url.URL) string {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	host = strings.TrimPrefix(host, "www.")
	port := u.Port()
	scheme := strings.ToLower(u.Scheme)
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	return host + " " + port
}
