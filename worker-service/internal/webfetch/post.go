package webfetch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxPostReply caps how much of the reply to a Post is read (and thrown away).
const maxPostReply = 64 << 10

// Post sends body to rawURL with header, through the same guard as Fetch (URL rules and the
// address rule on every connection), following no redirect, bounded by Config.Timeout. It
// returns nil for a 2xx reply; any other status is an *HTTPError (with the reply's
// Retry-After), and a refused address wraps ErrBlockedAddress.
func (f *Fetcher) Post(ctx context.Context, rawURL string, header http.Header, body []byte) error {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if _, err := f.checkURL(u); err != nil {
		return fmt.Errorf("webfetch: %s: %w", redact(u), err)
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", f.cfg.UserAgent)
	resp, err := f.noRedirect.Do(req)
	if err != nil {
		return fmt.Errorf("webfetch: post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxPostReply))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newHTTPError(redact(u), resp, time.Now())
	}
	return nil
}
