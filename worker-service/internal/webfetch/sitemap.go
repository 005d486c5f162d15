package webfetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// MaxSitemapBytes caps a sitemap's size after decompression (the sitemap protocol allows
// 50 MB; larger sites split theirs behind a sitemap index).
const MaxSitemapBytes = 16 << 20

// ErrNotSitemap: the document is not a <urlset> or <sitemapindex>.
var ErrNotSitemap = errors.New("webfetch: not a sitemap")

// Sitemap is a parsed sitemap.xml: a <urlset> lists pages in URLs, a <sitemapindex> lists
// other sitemaps in Sitemaps. The <loc> values are kept as written (trimmed); they are
// not checked, resolved or filtered by site.
type Sitemap struct {
	URLs     []string
	Sitemaps []string
	// Truncated is set when the document had more than the maxEntries asked for.
	Truncated bool
}

// ParseSitemap reads a sitemap document (sitemaps.org protocol, any namespace prefix),
// keeping at most maxEntries <loc> values (at least 1). A gzip-compressed document
// (sitemap.xml.gz) is decompressed, up to [MaxSitemapBytes]. Failures: [ErrNotSitemap]
// for another root element, [ErrTooLarge], or the XML error.
func ParseSitemap(r io.Reader, maxEntries int) (*Sitemap, error) {
	return parseSitemap(r, maxEntries, MaxSitemapBytes)
}

func parseSitemap(r io.Reader, maxEntries int, maxBytes int64) (*Sitemap, error) {
	maxEntries = max(maxEntries, 1)
	br := bufioPeek(r)
	if bytes.HasPrefix(br.head, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("webfetch: sitemap: gzip: %w", err)
		}
		defer func() { _ = zr.Close() }()
		r = &capReader{r: zr, n: maxBytes}
	} else {
		r = &capReader{r: br, n: maxBytes}
	}
	d := xml.NewDecoder(r)
	d.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "utf-8", "utf8", "us-ascii", "ascii":
			return input, nil
		}
		return nil, fmt.Errorf("charset %q (sitemaps are UTF-8)", charset)
	}
	sm := &Sitemap{}
	var (
		root  string
		stack []string
		loc   strings.Builder
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return nil, fmt.Errorf("webfetch: sitemap: %w: more than %d bytes", ErrTooLarge, maxBytes)
			}
			return nil, fmt.Errorf("webfetch: sitemap: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if root == "" {
				root = name
				if root != "urlset" && root != "sitemapindex" {
					return nil, fmt.Errorf("%w: root element <%s>", ErrNotSitemap, root)
				}
			}
			stack = append(stack, name)
			if name == "loc" {
				loc.Reset()
			}
		case xml.CharData:
			if len(stack) == 3 && stack[2] == "loc" {
				loc.Write(t)
			}
		case xml.EndElement:
			if len(stack) == 3 && stack[2] == "loc" {
				v := strings.TrimSpace(loc.String())
				switch {
				case v == "":
				case len(sm.URLs)+len(sm.Sitemaps) >= maxEntries:
					sm.Truncated = true
					return sm, nil
				case root == "urlset" && stack[1] == "url":
					sm.URLs = append(sm.URLs, v)
				case root == "sitemapindex" && stack[1] == "sitemap":
					sm.Sitemaps = append(sm.Sitemaps, v)
				}
			}
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	if root == "" {
		return nil, fmt.Errorf("%w: empty document", ErrNotSitemap)
	}
	return sm, nil
}

// Sitemap fetches and parses the sitemap at sitemapURL (see [ParseSitemap]) through the
// guarded client. A non-2xx answer is an [*HTTPError].
func (f *Fetcher) Sitemap(ctx context.Context, sitemapURL string, maxEntries int) (*Sitemap, error) {
	resp, err := f.get(ctx, f.client, sitemapURL, "application/xml,text/xml,*/*;q=0.1")
	if err != nil {
		return nil, fmt.Errorf("webfetch: sitemap: %w", err)
	}
	defer resp.close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("webfetch: sitemap: %w", newHTTPError(resp.Request.URL.String(), resp.Response, time.Now()))
	}
	body, err := resp.read(MaxSitemapBytes)
	if err != nil {
		return nil, fmt.Errorf("webfetch: sitemap %s: %w", resp.Request.URL, err)
	}
	return ParseSitemap(bytes.NewReader(body), maxEntries)
}

// peekReader lets ParseSitemap look at the first bytes before deciding how to read.
type peekReader struct {
	head []byte
	r    io.Reader
}

func bufioPeek(r io.Reader) *peekReader {
	head := make([]byte, 2)
	n, _ := io.ReadFull(r, head)
	return &peekReader{head: head[:n], r: io.MultiReader(bytes.NewReader(head[:n]), r)}
}

func (p *peekReader) Read(b []byte) (int, error) { return p.r.Read(b) }

// capReader fails with ErrTooLarge once more than n bytes have been read.
type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(b []byte) (int, error) {
	if c.n < 0 {
		return 0, ErrTooLarge
	}
	if int64(len(b)) > c.n+1 {
		b = b[:c.n+1]
	}
	n, err := c.r.Read(b)
	c.n -= int64(n)
	if c.n < 0 {
		return n, ErrTooLarge
	}
	return n, err
}
