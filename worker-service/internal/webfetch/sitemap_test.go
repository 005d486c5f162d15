package webfetch

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

const urlset = `<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>https://example.com/</loc><lastmod>2026-01-01</lastmod></url>
  <url>
    <loc>
      https://example.com/a?x=1&amp;y=2
    </loc>
    <image:image><image:loc>https://example.com/img.png</image:loc></image:image>
  </url>
  <url><loc></loc></url>
  <url><loc>https://example.com/b</loc></url>
</urlset>`

const sitemapIndex = `<?xml version="1.0" encoding="UTF-8"?>
<sm:sitemapindex xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sm:sitemap><sm:loc>https://example.com/sitemap-1.xml</sm:loc></sm:sitemap>
  <sm:sitemap><sm:loc>https://example.com/sitemap-2.xml.gz</sm:loc></sm:sitemap>
</sm:sitemapindex>`

func TestParseSitemap(t *testing.T) {
	t.Parallel()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(urlset))
	_ = zw.Close()
	tests := []struct {
		name          string
		doc           []byte
		max           int
		wantURLs      []string
		wantSitemaps  []string
		wantTruncated bool
		wantErr       error
	}{
		{
			name:     "urlset",
			doc:      []byte(urlset),
			max:      100,
			wantURLs: []string{"https://example.com/", "https://example.com/a?x=1&y=2", "https://example.com/b"},
		},
		{
			name:     "gzip urlset",
			doc:      gz.Bytes(),
			max:      100,
			wantURLs: []string{"https://example.com/", "https://example.com/a?x=1&y=2", "https://example.com/b"},
		},
		{
			name:          "truncated",
			doc:           []byte(urlset),
			max:           2,
			wantURLs:      []string{"https://example.com/", "https://example.com/a?x=1&y=2"},
			wantTruncated: true,
		},
		{
			name:         "index",
			doc:          []byte(sitemapIndex),
			max:          100,
			wantSitemaps: []string{"https://example.com/sitemap-1.xml", "https://example.com/sitemap-2.xml.gz"},
		},
		{name: "html", doc: []byte("<html><body>404</body></html>"), max: 10, wantErr: ErrNotSitemap},
		{name: "empty", doc: nil, max: 10, wantErr: ErrNotSitemap},
		{name: "rss", doc: []byte(`<?xml version="1.0"?><rss><channel/></rss>`), max: 10, wantErr: ErrNotSitemap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sm, err := ParseSitemap(bytes.NewReader(tt.doc), tt.max)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !slices.Equal(sm.URLs, tt.wantURLs) || !slices.Equal(sm.Sitemaps, tt.wantSitemaps) ||
				sm.Truncated != tt.wantTruncated {
				t.Errorf("sitemap = %+v, want URLs %q Sitemaps %q Truncated %v", sm, tt.wantURLs, tt.wantSitemaps, tt.wantTruncated)
			}
		})
	}
}

func TestParseSitemapErrors(t *testing.T) {
	t.Parallel()
	if _, err := ParseSitemap(strings.NewReader(`<urlset><url><loc>x</url>`), 10); err == nil {
		t.Error("malformed XML: no error")
	}
	if _, err := ParseSitemap(strings.NewReader(`<?xml version="1.0" encoding="EBCDIC"?><urlset/>`), 10); err == nil {
		t.Error("non-UTF-8 charset: no error")
	}
	// A gzip bomb stops at the size cap (MaxSitemapBytes in production).
	const limit = 64 << 10
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write([]byte("<urlset>"))
	_, _ = zw.Write(bytes.Repeat([]byte("<!-- padding -->"), limit/16+1))
	_ = zw.Close()
	if _, err := parseSitemap(&bomb, 10, limit); !errors.Is(err, ErrTooLarge) {
		t.Errorf("gzip bomb: error = %v, want ErrTooLarge", err)
	}
	// Just under the cap is fine.
	doc := "<urlset><url><loc>https://example.com/</loc></url>" + strings.Repeat(" ", limit-100) + "</urlset>"
	if sm, err := parseSitemap(strings.NewReader(doc), 10, limit); err != nil || len(sm.URLs) != 1 {
		t.Errorf("sitemap under the cap: %v, %v", sm, err)
	}
}

func TestFetcherSitemap(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sitemap.xml":
			w.Header().Set("Content-Type", "application/xml")
			_, _ = fmt.Fprint(w, urlset)
		default:
			http.NotFound(w, r)
		}
	})
	f := newLocalFetcher(t, Config{})
	sm, err := f.Sitemap(t.Context(), srv.URL+"/sitemap.xml", 100)
	if err != nil {
		t.Fatalf("Sitemap: %v", err)
	}
	if len(sm.URLs) != 3 {
		t.Errorf("URLs = %q", sm.URLs)
	}
	_, err = f.Sitemap(t.Context(), srv.URL+"/missing.xml", 100)
	if httpErr, ok := errors.AsType[*HTTPError](err); !ok || httpErr.StatusCode != 404 {
		t.Errorf("missing sitemap: error = %v, want *HTTPError 404", err)
	}
}
