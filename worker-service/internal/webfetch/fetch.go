package webfetch

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/andybalholm/brotli"
)

// Page is a fetched document.
type Page struct {
	// URL is the final URL, after redirects.
	URL string
	// StatusCode is the final response's status (2xx).
	StatusCode int
	// MediaType is the lower-case media type without parameters: text/html,
	// application/xhtml+xml, text/plain, text/markdown or application/pdf. When the server
	// sent no Content-Type, or application/octet-stream, it is sniffed from the body.
	MediaType string
	// ContentType is the Content-Type header as sent (with its charset, if any), so the
	// extractor can decode a non-UTF-8 page; empty when the server sent none.
	ContentType string
	// Body is the response body, decompressed, as sent (no charset conversion).
	Body []byte
	// Header is the final response's header.
	Header http.Header
}

// HTTPError is a non-2xx final response.
type HTTPError struct {
	// URL is the URL that answered (after redirects).
	URL        string
	StatusCode int
	// RetryAfter is the server's Retry-After (delay-seconds or HTTP-date), 0 when absent,
	// unparsable or in the past.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("webfetch: %s: http status %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// Permanent reports whether retrying cannot help: true for every status except 408 Request
// Timeout, 425 Too Early, 429 Too Many Requests and 5xx.
func (e *HTTPError) Permanent() bool {
	switch {
	case e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusTooEarly,
		e.StatusCode == http.StatusTooManyRequests, e.StatusCode >= 500:
		return false
	}
	return true
}

// acceptedMediaTypes are the media types [Fetcher.Fetch] returns.
var acceptedMediaTypes = map[string]bool{
	"text/html":             true,
	"application/xhtml+xml": true,
	"text/plain":            true,
	"text/markdown":         true,
	"text/x-markdown":       true,
	"application/pdf":       true,
	"application/x-pdf":     true,
}

// Fetch GETs rawURL and returns the page. It follows up to Config.MaxRedirects redirects,
// checking every hop, and gives up after Config.Timeout (or the ctx deadline, if sooner).
//
// Failures: [ErrInvalidURL], [ErrBlockedAddress], [ErrTooManyRedirects], [*HTTPError] for a
// non-2xx answer, [ErrUnsupportedContent] (checked from the header before the body is read,
// or by sniffing when the header is missing), [ErrTooLarge], and transport errors (timeouts,
// refused connections, DNS). Use [Permanent] to tell which are worth retrying.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (*Page, error) {
	return f.fetch(ctx, f.client, rawURL)
}

func (f *Fetcher) fetch(ctx context.Context, client *http.Client, rawURL string) (*Page, error) {
	resp, err := f.get(ctx, client, rawURL, "text/html,application/xhtml+xml,text/plain;q=0.9,text/markdown;q=0.9,application/pdf;q=0.8,*/*;q=0.1")
	if err != nil {
		return nil, err
	}
	defer resp.close()
	final := resp.Request.URL.String()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newHTTPError(final, resp.Response, time.Now())
	}
	ct := resp.Header.Get("Content-Type")
	media := mediaType(ct)
	if media != "" && media != "application/octet-stream" && !acceptedMediaTypes[media] {
		return nil, fmt.Errorf("%w: %s from %s", ErrUnsupportedContent, media, final)
	}
	body, err := resp.read(f.cfg.MaxBytes)
	if err != nil {
		return nil, fmt.Errorf("webfetch: read %s: %w", final, err)
	}
	if media == "" || media == "application/octet-stream" {
		media = mediaType(http.DetectContentType(body))
		if !acceptedMediaTypes[media] {
			return nil, fmt.Errorf("%w: %s (sniffed) from %s", ErrUnsupportedContent, media, final)
		}
	}
	if media == "application/x-pdf" {
		media = "application/pdf"
	}
	if media == "text/x-markdown" {
		media = "text/markdown"
	}
	return &Page{
		URL:         final,
		StatusCode:  resp.StatusCode,
		MediaType:   media,
		ContentType: ct,
		Body:        body,
		Header:      resp.Header,
	}, nil
}

// response is an open response whose context must be released with close.
type response struct {
	*http.Response
	cancel context.CancelFunc
}

func (r *response) close() {
	// Drain a little so the connection can be reused, but never a whole unwanted body.
	_, _ = io.CopyN(io.Discard, r.Body, 4<<10)
	_ = r.Body.Close()
	r.cancel()
}

// read returns the decompressed body, failing with ErrTooLarge past limit bytes.
func (r *response) read(limit int64) ([]byte, error) {
	var body io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		if r.ContentLength > limit {
			return nil, fmt.Errorf("%w: content-length %d exceeds %d bytes", ErrTooLarge, r.ContentLength, limit)
		}
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer func() { _ = zr.Close() }()
		body = zr
	case "br":
		body = brotli.NewReader(r.Body)
	default:
		return nil, fmt.Errorf("%w: content-encoding %q", ErrUnsupportedContent, enc)
	}
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return b, nil
}

// get sends a guarded GET for rawURL. The caller must close the response. Its context lives
// until close, bounded by Config.Timeout.
func (f *Fetcher) get(ctx context.Context, client *http.Client, rawURL, accept string) (*response, error) {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if _, err := f.checkURL(u); err != nil {
		return nil, fmt.Errorf("webfetch: %s: %w", redact(u), err)
	}
	u.Fragment, u.RawFragment = "", ""
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	req.Header.Set("User-Agent", f.cfg.UserAgent)
	req.Header.Set("Accept", accept)
	req.Header.Set("Accept-Encoding", "gzip, br")
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		// Do wraps in *url.Error, which keeps the chain for errors.Is/As.
		return nil, fmt.Errorf("webfetch: get: %w", err)
	}
	return &response{Response: resp, cancel: cancel}, nil
}

// redact returns u without credentials, for messages.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

func mediaType(contentType string) string {
	if contentType == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		// A malformed parameter list still names its type before the ';'.
		mt, _, _ = strings.Cut(contentType, ";")
	}
	return strings.ToLower(strings.TrimSpace(mt))
}

func newHTTPError(u string, resp *http.Response, now time.Time) *HTTPError {
	return &HTTPError{
		URL:        u,
		StatusCode: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now),
	}
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date. It returns 0 for
// an absent, unparsable or past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		const maxSecs = int64((1<<63 - 1) / int64(time.Second))
		return time.Duration(min(secs, maxSecs)) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	if d := t.Sub(now); d > 0 {
		return d
	}
	return 0
}
