package webfetch

import (
	"bytes"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// ExtractLinks returns the links a crawler may follow from an HTML page fetched from
// pageURL (the final URL, after redirects): the href of every <a> and <area>, resolved
// against the page's <base href> (if any) or pageURL and normalised with [Resolve], in
// document order, without duplicates. It leaves out links that are not http or https
// (mailto:, javascript:, tel:, ...), links with rel="nofollow", and every link when a
// <meta name="robots"> (or name="quirebot") says nofollow or none. Links are not filtered by
// site: see [SameSite].
//
// The body is read as UTF-8 (ASCII-compatible charsets work too); a malformed page yields
// the links found before the parser gave up. It fails only when pageURL is not a valid
// absolute http(s) URL ([ErrInvalidURL]).
func ExtractLinks(pageURL string, body []byte) ([]string, error) {
	base, err := url.Parse(pageURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if _, err := normalizeURL(base); err != nil {
		return nil, err
	}
	var (
		links   []string
		seen    = map[string]bool{}
		baseSet bool
	)
	z := html.NewTokenizer(bytes.NewReader(body))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break // io.EOF or a malformed document: keep what we have
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		name, hasAttr := z.TagName()
		if !hasAttr {
			continue
		}
		attrs := tagAttrs(z)
		switch atom.Lookup(name) {
		case atom.Base:
			if href, ok := attrs["href"]; ok && !baseSet {
				baseSet = true
				if r, err := url.Parse(strings.TrimSpace(href)); err == nil {
					if b := base.ResolveReference(r); b.Scheme == "http" || b.Scheme == "https" {
						base = b
					}
				}
			}
		case atom.Meta:
			switch strings.ToLower(attrs["name"]) {
			case "robots", "quirebot":
				if metaNoFollow(attrs["content"]) {
					return nil, nil
				}
			}
		case atom.A, atom.Area:
			href, ok := attrs["href"]
			if !ok || slices.Contains(strings.Fields(strings.ToLower(attrs["rel"])), "nofollow") {
				continue
			}
			link, err := Resolve(base, href)
			if err != nil || seen[link] {
				continue
			}
			seen[link] = true
			links = append(links, link)
		}
	}
	return links, nil
}

// tagAttrs returns the current tag's attributes (keys lower-case, first occurrence wins).
func tagAttrs(z *html.Tokenizer) map[string]string {
	attrs := map[string]string{}
	for {
		key, val, more := z.TagAttr()
		if _, dup := attrs[string(key)]; !dup {
			attrs[string(key)] = string(val)
		}
		if !more {
			return attrs
		}
	}
}

func metaNoFollow(content string) bool {
	for d := range strings.SplitSeq(strings.ToLower(content), ",") {
		switch strings.TrimSpace(d) {
		case "nofollow", "none":
			return true
		}
	}
	return false
}
