// Package webfetch fetches web pages for ingestion safely, and discovers the pages of a site
// for a crawl.
//
// [Fetcher] is an HTTP client hardened against server-side request forgery: only http and https
// URLs without credentials are fetched, no proxy is ever used, and every connection, on every
// redirect hop, is refused when the address it is about to connect to is loopback, private,
// link-local (including the 169.254.169.254 metadata service), multicast, unspecified, CGNAT or
// otherwise not publicly routable (see [Config.AllowPrivate]). The address is checked after DNS
// resolution, just before connect, so a name that resolves (or rebinds) to a private address is
// refused too. Bodies are decompressed (gzip, br) and capped while reading; only HTML, XHTML,
// plain text, Markdown and PDF are accepted.
//
// Errors are classified with [errors.Is] and [errors.As]: the sentinels below and [*HTTPError].
// [Permanent] tells whether retrying can help.
//
// The crawl building blocks are [Normalize], [Resolve], [SameSite], [ExtractLinks],
// [Fetcher.Robots], [Fetcher.Sitemap], [ParseSitemap], [HostLimiter] and [Crawler], which puts
// them together.
package webfetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// Errors wrapped by what this package returns. All of them are permanent: retrying the same URL
// cannot help.
var (
	// ErrBlockedAddress: the URL's host is, or resolves to, an address that is not publicly
	// routable (loopback, private, link-local, ...), and Config.AllowPrivate is false.
	ErrBlockedAddress = errors.New("webfetch: address not allowed")
	// ErrInvalidURL: not an absolute http or https URL, has credentials, has no host, or has a
	// non-canonical numeric host such as http://2130706433/.
	ErrInvalidURL = errors.New("webfetch: invalid url")
	// ErrTooManyRedirects: more than Config.MaxRedirects redirects.
	ErrTooManyRedirects = errors.New("webfetch: too many redirects")
	// ErrUnsupportedContent: the response is not HTML, XHTML, plain text, Markdown or PDF.
	ErrUnsupportedContent = errors.New("webfetch: unsupported content type")
	// ErrTooLarge: the decompressed body exceeds the size cap.
	ErrTooLarge = errors.New("webfetch: body too large")
	// ErrDisallowed: robots.txt does not allow our User-Agent to fetch the URL.
	ErrDisallowed = errors.New("webfetch: disallowed by robots.txt")

	// errOffSite: a crawl's page redirected to another site.
	errOffSite = errors.New("webfetch: redirect leaves the site")
)

// Defaults applied by [Config.WithDefaults].
const (
	DefaultUserAgent      = "QuireBot/1.0 (+https://github.com/quirehq/quire)"
	DefaultConnectTimeout = 10 * time.Second
	DefaultTimeout        = 30 * time.Second
	DefaultMaxBytes       = 10 << 20
	DefaultMaxRedirects   = 5
)

// Config configures a [Fetcher]. The zero value, after [Config.WithDefaults], is the safe
// production setting.
type Config struct {
	// AllowPrivate lifts the address rule only (WEBPAGE_ALLOW_PRIVATE, for tests and on-prem
	// wikis): loopback, private and link-local addresses may be fetched. The scheme,
	// credential, redirect and size rules still apply.
	AllowPrivate bool
	// UserAgent is sent with every request and matched against robots.txt groups. Defaults
	// to [DefaultUserAgent].
	UserAgent string
	// ConnectTimeout bounds each TCP connect (and, separately, each TLS handshake). Defaults
	// to 10s.
	ConnectTimeout time.Duration
	// Timeout bounds one whole Fetch: every redirect hop and reading the body. Defaults to 30s;
	// a shorter deadline on the caller's context wins.
	Timeout time.Duration
	// MaxBytes caps a page's body after decompression; a larger body fails with ErrTooLarge.
	// Defaults to 10 MiB.
	MaxBytes int64
	// MaxRedirects is how many redirects one Fetch follows; one more fails with
	// ErrTooManyRedirects. Defaults to 5; a negative value means none are followed.
	MaxRedirects int

	// exempt, when set (tests only), names connect addresses that the address rule treats as
	// public. Everything else about the guard runs as in production.
	exempt func(netip.AddrPort) bool
	// resolver, when set (tests only), replaces the system DNS resolver.
	resolver *net.Resolver
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxRedirects == 0 {
		c.MaxRedirects = DefaultMaxRedirects
	}
	return c
}

// Fetcher fetches web pages through one guarded [http.Client]. It is safe for concurrent use
// and meant to live as long as the process.
type Fetcher struct {
	cfg    Config
	guard  guard
	client *http.Client
	// siteClient shares client's transport but follows only redirects that stay on the
	// site of the first request (for crawls).
	siteClient *http.Client
	// noRedirect shares client's transport and follows no redirect (for Post).
	noRedirect *http.Client
}

// New returns a Fetcher for cfg (defaults applied).
func New(cfg Config) *Fetcher {
	cfg = cfg.WithDefaults()
	f := &Fetcher{cfg: cfg, guard: guard{allowPrivate: cfg.AllowPrivate, exempt: cfg.exempt}}
	dialer := &net.Dialer{
		Timeout:   cfg.ConnectTimeout,
		KeepAlive: 30 * time.Second,
		Resolver:  cfg.resolver,
		// Control runs for every connection attempt, after DNS resolution and before the
		// connect system call: the one place that sees the address actually used.
		Control: f.guard.control,
	}
	transport := &http.Transport{
		Proxy:                 nil, // never a proxy from the environment
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       60 * time.Second,
		// We ask for gzip and br ourselves and decode them with the size cap in place.
		DisableCompression: true,
	}
	f.client = &http.Client{
		Transport:     transport,
		CheckRedirect: f.checkRedirect,
	}
	f.noRedirect = &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	f.siteClient = &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if err := f.checkRedirect(req, via); err != nil {
				return err
			}
			if !SameSite(via[0].URL, req.URL) {
				return fmt.Errorf("%w: redirect to %s", errOffSite, redact(req.URL))
			}
			return nil
		},
	}
	return f
}

// CloseIdleConnections closes the Fetcher's idle keep-alive connections.
func (f *Fetcher) CloseIdleConnections() {
	f.client.CloseIdleConnections()
}

// UserAgent is the User-Agent the Fetcher sends and matches robots.txt groups with.
func (f *Fetcher) UserAgent() string {
	return f.cfg.UserAgent
}

func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if n := max(f.cfg.MaxRedirects, 0); len(via) > n {
		return fmt.Errorf("%w: more than %d", ErrTooManyRedirects, n)
	}
	if _, err := f.checkURL(req.URL); err != nil {
		return fmt.Errorf("redirect: %w", err)
	}
	return nil
}

// Permanent reports whether retrying the request that failed with err cannot help: a blocked
// address, an invalid URL, too many redirects, unsupported content, a body too large, a
// robots.txt refusal, a document that is not a sitemap, an [*HTTPError] that is
// [HTTPError.Permanent], an unknown host name (NXDOMAIN) or a TLS certificate that does not
// verify. Timeouts, connection errors, 408, 429, 5xx and context cancellation are not
// permanent.
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	for _, sentinel := range []error{ErrBlockedAddress, ErrInvalidURL, ErrTooManyRedirects,
		ErrUnsupportedContent, ErrTooLarge, ErrDisallowed, ErrNotSitemap} {
		if errors.Is(err, sentinel) {
			return true
		}
	}
	if httpErr, ok := errors.AsType[*HTTPError](err); ok {
		return httpErr.Permanent()
	}
	if dnsErr, ok := errors.AsType[*net.DNSError](err); ok {
		return dnsErr.IsNotFound
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	return false
}
