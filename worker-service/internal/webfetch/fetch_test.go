package webfetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
)

const article = `<!doctype html><html><head><title>Quire article</title></head>
<body><nav><a href="/">Home</a></nav><article><h1>Quire article</h1><p>Main text.</p></article>
<footer>© footer</footer></body></html>`

func TestFetchArticle(t *testing.T) {
	t.Parallel()
	var gotUA, gotAccept string
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotUA, gotAccept = r.Header.Get("User-Agent"), r.Header.Get("Accept-Encoding")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprint(w, article)
	})
	f := newLocalFetcher(t, Config{})
	page, err := f.Fetch(t.Context(), srv.URL+"/post#section")
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if page.URL != srv.URL+"/post" || page.StatusCode != 200 || page.MediaType != "text/html" ||
		page.ContentType != "text/html; charset=utf-8" || string(page.Body) != article {
		t.Errorf("page = %+v", page)
	}
	if gotUA != DefaultUserAgent {
		t.Errorf("User-Agent = %q, want %q", gotUA, DefaultUserAgent)
	}
	if gotAccept != "gzip, br" {
		t.Errorf("Accept-Encoding = %q", gotAccept)
	}
}

func TestFetchNonUTF8(t *testing.T) {
	t.Parallel()
	// "café crème" in ISO-8859-1: é is 0xE9, è is 0xE8.
	body := []byte("<html><head><meta charset=\"iso-8859-1\"></head><body><p>caf\xe9 cr\xe8me</p></body></html>")
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=ISO-8859-1")
		_, _ = w.Write(body)
	})
	page, err := newLocalFetcher(t, Config{}).Fetch(t.Context(), srv.URL)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if !bytes.Equal(page.Body, body) {
		t.Errorf("body = %q, want bytes unchanged %q", page.Body, body)
	}
	if page.ContentType != "text/html; charset=ISO-8859-1" || page.MediaType != "text/html" {
		t.Errorf("ContentType = %q, MediaType = %q", page.ContentType, page.MediaType)
	}
}

func TestFetchCompressed(t *testing.T) {
	t.Parallel()
	plain := strings.Repeat("<p>compressible text</p>\n", 2000)
	var gz, br bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(plain))
	_ = zw.Close()
	bw := brotli.NewWriter(&br)
	_, _ = bw.Write([]byte(plain))
	_ = bw.Close()
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(gz.Bytes())
		case "/br":
			w.Header().Set("Content-Encoding", "br")
			_, _ = w.Write(br.Bytes())
		case "/zstd":
			w.Header().Set("Content-Encoding", "zstd")
			_, _ = w.Write([]byte("whatever"))
		}
	})
	f := newLocalFetcher(t, Config{})
	for _, path := range []string{"/gzip", "/br"} {
		page, err := f.Fetch(t.Context(), srv.URL+path)
		if err != nil {
			t.Fatalf("Fetch(%s): %v", path, err)
		}
		if string(page.Body) != plain {
			t.Errorf("Fetch(%s) body: %d bytes, want %d decompressed", path, len(page.Body), len(plain))
		}
	}
	if _, err := f.Fetch(t.Context(), srv.URL+"/zstd"); !errors.Is(err, ErrUnsupportedContent) {
		t.Errorf("unknown encoding: error = %v, want ErrUnsupportedContent", err)
	}
}

func TestFetchRedirects(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		var n int
		if _, err := fmt.Sscanf(r.URL.Path, "/hop/%d", &n); err == nil {
			if n == 0 {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = fmt.Fprint(w, "arrived")
				return
			}
			http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
			return
		}
		switch r.URL.Path {
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusMovedPermanently)
		case "/to-ftp":
			http.Redirect(w, r, "ftp://example.com/file", http.StatusFound)
		case "/to-creds":
			http.Redirect(w, r, "http://user:pw@"+r.Host+"/hop/0", http.StatusFound)
		}
	})
	f := newLocalFetcher(t, Config{MaxRedirects: 3})
	page, err := f.Fetch(t.Context(), srv.URL+"/hop/3")
	if err != nil {
		t.Fatalf("3 redirects with MaxRedirects 3: %v", err)
	}
	if page.URL != srv.URL+"/hop/0" || string(page.Body) != "arrived" {
		t.Errorf("page URL %q body %q", page.URL, page.Body)
	}

	none := newLocalFetcher(t, Config{MaxRedirects: -1})
	if _, err := none.Fetch(t.Context(), srv.URL+"/hop/1"); !errors.Is(err, ErrTooManyRedirects) {
		t.Errorf("MaxRedirects -1: error = %v, want ErrTooManyRedirects", err)
	}

	tests := []struct {
		path    string
		wantErr error
	}{
		{"/hop/4", ErrTooManyRedirects},
		{"/loop", ErrTooManyRedirects},
		{"/to-ftp", ErrInvalidURL},
		{"/to-creds", ErrInvalidURL},
	}
	for _, tt := range tests {
		_, err := f.Fetch(t.Context(), srv.URL+tt.path)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Fetch(%s) error = %v, want %v", tt.path, err, tt.wantErr)
		}
		if !Permanent(err) {
			t.Errorf("Fetch(%s): Permanent = false", tt.path)
		}
	}
}

func TestFetchHTTPErrors(t *testing.T) {
	t.Parallel()
	httpDate := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		var code int
		_, _ = fmt.Sscanf(r.URL.Path, "/%d", &code)
		switch r.URL.Query().Get("ra") {
		case "secs":
			w.Header().Set("Retry-After", "120")
		case "date":
			w.Header().Set("Retry-After", httpDate)
		case "junk":
			w.Header().Set("Retry-After", "soon")
		}
		w.WriteHeader(code)
	})
	f := newLocalFetcher(t, Config{})
	tests := []struct {
		path         string
		status       int
		permanent    bool
		minRA, maxRA time.Duration
	}{
		{"/404", 404, true, 0, 0},
		{"/410", 410, true, 0, 0},
		{"/403", 403, true, 0, 0},
		{"/400", 400, true, 0, 0},
		{"/408", 408, false, 0, 0},
		{"/429?ra=secs", 429, false, 120 * time.Second, 120 * time.Second},
		{"/429?ra=date", 429, false, 80 * time.Second, 91 * time.Second},
		{"/429?ra=junk", 429, false, 0, 0},
		{"/503?ra=secs", 503, false, 120 * time.Second, 120 * time.Second},
		{"/500", 500, false, 0, 0},
		{"/502", 502, false, 0, 0},
		{"/304", 304, true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			_, err := f.Fetch(t.Context(), srv.URL+tt.path)
			httpErr, ok := errors.AsType[*HTTPError](err)
			if !ok {
				t.Fatalf("error = %v, want *HTTPError", err)
			}
			if httpErr.StatusCode != tt.status {
				t.Errorf("StatusCode = %d, want %d", httpErr.StatusCode, tt.status)
			}
			if httpErr.Permanent() != tt.permanent || Permanent(err) != tt.permanent {
				t.Errorf("Permanent = %v / %v, want %v", httpErr.Permanent(), Permanent(err), tt.permanent)
			}
			if httpErr.RetryAfter < tt.minRA || httpErr.RetryAfter > tt.maxRA {
				t.Errorf("RetryAfter = %v, want within [%v, %v]", httpErr.RetryAfter, tt.minRA, tt.maxRA)
			}
		})
	}
}

func TestFetch503ThenOK(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprint(w, "back")
	})
	f := newLocalFetcher(t, Config{})
	_, err := f.Fetch(t.Context(), srv.URL)
	if err == nil || Permanent(err) {
		t.Fatalf("first Fetch error = %v, want a retryable error", err)
	}
	page, err := f.Fetch(t.Context(), srv.URL)
	if err != nil || string(page.Body) != "back" {
		t.Fatalf("retry: page %v, error %v", page, err)
	}
}

func TestFetchTooLarge(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	big := bytes.Repeat([]byte("a"), limit+1)
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(bytes.Repeat([]byte("<p>"), 1<<20)) // 3 MiB compresses to ~3 KiB
	_ = zw.Close()
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		switch r.URL.Path {
		case "/length":
			_, _ = w.Write(big) // Content-Length set by the server
		case "/chunked":
			for i := 0; i < len(big); i += 1024 {
				_, _ = w.Write(big[i:min(i+1024, len(big))])
				w.(http.Flusher).Flush()
			}
		case "/bomb":
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(bomb.Bytes())
		case "/exact":
			_, _ = w.Write(big[:limit])
		}
	})
	f := newLocalFetcher(t, Config{MaxBytes: limit})
	for _, path := range []string{"/length", "/chunked", "/bomb"} {
		_, err := f.Fetch(t.Context(), srv.URL+path)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("Fetch(%s) error = %v, want ErrTooLarge", path, err)
		}
		if !Permanent(err) {
			t.Errorf("Fetch(%s): Permanent = false", path)
		}
	}
	page, err := f.Fetch(t.Context(), srv.URL+"/exact")
	if err != nil || len(page.Body) != limit {
		t.Errorf("body of exactly MaxBytes: %v", err)
	}
}

func TestFetchContentTypes(t *testing.T) {
	t.Parallel()
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		ct := r.URL.Query().Get("ct")
		body := []byte(r.URL.Query().Get("body"))
		if r.URL.Query().Get("png") != "" {
			body = png
		}
		if ct == "" {
			w.Header()["Content-Type"] = nil // no header, no sniffing by the server
		} else {
			w.Header().Set("Content-Type", ct)
		}
		_, _ = w.Write(body)
	})
	f := newLocalFetcher(t, Config{})
	tests := []struct {
		query     string
		wantMedia string
		wantErr   error
	}{
		{"ct=text/html&body=x", "text/html", nil},
		{"ct=application/xhtml%2Bxml&body=x", "application/xhtml+xml", nil},
		{"ct=text/plain%3B+charset=utf-8&body=x", "text/plain", nil},
		{"ct=text/markdown&body=%23+x", "text/markdown", nil},
		{"ct=text/x-markdown&body=%23+x", "text/markdown", nil},
		{"ct=application/pdf&body=%25PDF-1.7", "application/pdf", nil},
		{"ct=TEXT/HTML%3B+charset=windows-1252&body=x", "text/html", nil},
		{"ct=image/png&png=1", "", ErrUnsupportedContent},
		{"ct=application/json&body={}", "", ErrUnsupportedContent},
		{"ct=application/zip&body=PK", "", ErrUnsupportedContent},
		{"ct=application/octet-stream&png=1", "", ErrUnsupportedContent},
		{"ct=application/octet-stream&body=%25PDF-1.4+x", "application/pdf", nil},
		{"body=%3C!doctype+html%3E%3Cp%3Ehi", "text/html", nil},
		{"png=1", "", ErrUnsupportedContent},
	}
	for _, tt := range tests {
		page, err := f.Fetch(t.Context(), srv.URL+"/?"+tt.query)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Fetch(?%s) error = %v, want %v", tt.query, err, tt.wantErr)
			continue
		}
		if tt.wantErr != nil {
			if !Permanent(err) {
				t.Errorf("Fetch(?%s): Permanent = false", tt.query)
			}
			continue
		}
		if page.MediaType != tt.wantMedia {
			t.Errorf("Fetch(?%s) MediaType = %q, want %q", tt.query, page.MediaType, tt.wantMedia)
		}
	}
}

func TestFetchInvalidURLs(t *testing.T) {
	t.Parallel()
	f := New(Config{})
	for _, u := range []string{
		"ftp://example.com/file",
		"file:///etc/passwd",
		"gopher://example.com/",
		"javascript:alert(1)",
		"http://user:pass@example.com/",
		"https://user@example.com/",
		"http:///path",
		"http://",
		"/relative/path",
		"example.com/page",
		"http://example.com:99999/",
		"http://exa mple.com/",
		"",
	} {
		_, err := f.Fetch(t.Context(), u)
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("Fetch(%q) error = %v, want ErrInvalidURL", u, err)
		}
		if !Permanent(err) {
			t.Errorf("Fetch(%q): Permanent = false", u)
		}
	}
}

func TestFetchTimeoutIsTransient(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	})
	f := newLocalFetcher(t, Config{Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := f.Fetch(t.Context(), srv.URL)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want a deadline error", err)
	}
	if Permanent(err) {
		t.Errorf("timeout classified permanent: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Fetch took %v with a 100ms timeout", d)
	}
}

func TestFetchConnectionRefusedIsTransient(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	_, err = newLocalFetcher(t, Config{}).Fetch(t.Context(), "http://"+addr+"/")
	if err == nil || Permanent(err) {
		t.Fatalf("error = %v, want a transient error", err)
	}
}

func TestFetchCancelled(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := newLocalFetcher(t, Config{}).Fetch(ctx, srv.URL)
	if !errors.Is(err, context.Canceled) || Permanent(err) {
		t.Fatalf("error = %v, want context.Canceled, not permanent", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"30", 30 * time.Second},
		{" 7 ", 7 * time.Second},
		{"Sat, 28 Nov 2026 12:02:00 GMT", 2 * time.Minute},
		{"Saturday, 28-Nov-26 12:00:30 GMT", 30 * time.Second},
		{"Sat Nov 28 12:00:10 2026", 10 * time.Second},
		{"Sat, 28 Nov 2026 11:00:00 GMT", 0}, // past
		{"tomorrow", 0},
		{"99999999999999999999", 0}, // overflows int64: unparsable
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("connection reset"), false},
		{fmt.Errorf("wrapped: %w", ErrBlockedAddress), true},
		{fmt.Errorf("wrapped: %w", ErrInvalidURL), true},
		{ErrTooManyRedirects, true},
		{ErrUnsupportedContent, true},
		{ErrTooLarge, true},
		{ErrDisallowed, true},
		{ErrNotSitemap, true},
		{fmt.Errorf("x: %w", &HTTPError{StatusCode: 404}), true},
		{&HTTPError{StatusCode: 410}, true},
		{&HTTPError{StatusCode: 429}, false},
		{&HTTPError{StatusCode: 503}, false},
		{context.DeadlineExceeded, false},
		{context.Canceled, false},
		{&net.DNSError{Err: "no such host", Name: "nx.example", IsNotFound: true}, true},
		{&net.DNSError{Err: "server misbehaving", Name: "x.example", IsTemporary: true}, false},
	}
	for _, tt := range tests {
		if got := Permanent(tt.err); got != tt.want {
			t.Errorf("Permanent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestConfigWithDefaults(t *testing.T) {
	t.Parallel()
	c := Config{}.WithDefaults()
	if c.UserAgent != DefaultUserAgent || c.ConnectTimeout != DefaultConnectTimeout || c.Timeout != DefaultTimeout ||
		c.MaxBytes != DefaultMaxBytes || c.MaxRedirects != DefaultMaxRedirects || c.AllowPrivate {
		t.Errorf("defaults = %+v", c)
	}
	if c := (Config{MaxRedirects: -1}).WithDefaults().WithDefaults(); c.MaxRedirects != -1 {
		t.Errorf("MaxRedirects -1 → %d, want -1 kept (no redirects)", c.MaxRedirects)
	}
}
