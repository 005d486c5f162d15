package extract

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/net/html"

	"github.com/quirehq/quire/shared/doctype"
)

// epub reads an EPUB book: the package document named by META-INF/container.xml, then the
// chapters in spine order, each XHTML chapter through the HTML reader (headings as section
// paths, tables row by row) as a whole (no main-content detection: a chapter has no
// navigation to strip). Each chapter's sections carry its 1-based place in the spine as their
// location. The title is the package's dc:title. DRM-protected books (META-INF/encryption.xml
// naming encrypted chapters) fail with ErrEncrypted.
func (e *Extractor) epub(ctx context.Context, r io.ReaderAt, size int64, lim *limiter) (*Document, error) {
	pk, err := e.openZip(r, size, "epub")
	if err != nil {
		return nil, err
	}
	opf, err := pk.epubRootfile()
	if err != nil {
		return nil, err
	}
	items, spine, title, err := pk.epubSpine(opf)
	if err != nil {
		return nil, err
	}
	if len(spine) > maxSheets {
		return nil, errf(ErrTooLarge, "epub", "%d spine items, limit %d", len(spine), maxSheets)
	}
	if encrypted, err := pk.epubEncrypted(); err != nil {
		return nil, err
	} else if len(encrypted) > 0 {
		for _, id := range spine {
			if encrypted[items[id].href] {
				return nil, fmt.Errorf("%w: epub: chapter %s is encrypted (DRM)", ErrEncrypted, items[id].href)
			}
		}
	}
	doc := &Document{Title: title}
	for i, id := range spine {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		it, ok := items[id]
		if !ok || pk.files[it.href] == nil {
			continue // a spine entry naming nothing: skipped as reading systems do
		}
		if !strings.Contains(it.mediaType, "html") && !strings.Contains(it.mediaType, "xml") {
			continue
		}
		data, err := pk.readPart(it.href, int64(e.opts.MaxHTMLBytes))
		if err != nil {
			return nil, err
		}
		page, err := html.Parse(bytes.NewReader(xhtmlSelfClosing(data)))
		if err != nil {
			return nil, errf(ErrCorrupt, "epub", "%s: %v", it.href, err)
		}
		secs := htmlSections(page)
		for _, s := range secs {
			if err := lim.add(len(s.Text)); err != nil {
				return nil, err
			}
			s.Location = doctype.Location{Chapter: i + 1}
			doc.Sections = append(doc.Sections, s)
		}
	}
	doc.Pages = len(spine)
	return doc, nil
}

// epubRootfile finds the package document (OPF) from META-INF/container.xml.
func (pk *zipPackage) epubRootfile() (string, error) {
	const container = "META-INF/container.xml"
	if pk.files[container] == nil {
		return "", errf(ErrCorrupt, "epub", "the book has no %s", container)
	}
	var opf string
	err := pk.scan(container, 1<<20, func(_ *xml.Decoder, t xml.Token) error {
		if se, ok := t.(xml.StartElement); ok && se.Name.Local == "rootfile" && opf == "" {
			opf = cleanPath(attr(se, "full-path"))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if opf == "" || pk.files[opf] == nil {
		return "", errf(ErrCorrupt, "epub", "the package document %q named by %s is missing", opf, container)
	}
	return opf, nil
}

type epubItem struct{ href, mediaType string }

// epubSpine reads the manifest (id → part), the spine (ids in reading order) and dc:title.
func (pk *zipPackage) epubSpine(opf string) (map[string]epubItem, []string, string, error) {
	items := map[string]epubItem{}
	var (
		spine   []string
		title   strings.Builder
		inTitle bool
	)
	err := pk.scan(opf, 16<<20, func(_ *xml.Decoder, t xml.Token) error {
		switch t := t.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "item":
				href, err := url.PathUnescape(attr(t, "href"))
				if err != nil {
					href = attr(t, "href")
				}
				items[attr(t, "id")] = epubItem{href: relsTarget(opf, href), mediaType: attr(t, "media-type")}
				if len(items) > pk.opts.MaxZipEntries {
					return errf(ErrTooLarge, "epub", "more than %d manifest items", pk.opts.MaxZipEntries)
				}
			case "itemref":
				spine = append(spine, attr(t, "idref"))
				if len(spine) > maxSheets {
					return errf(ErrTooLarge, "epub", "more than %d spine items", maxSheets)
				}
			case "title":
				inTitle = title.Len() == 0
			}
		case xml.EndElement:
			inTitle = false
		case xml.CharData:
			if inTitle && title.Len() < 1024 {
				title.Write(t)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, "", err
	}
	return items, spine, strings.TrimSpace(title.String()), nil
}

// epubEncrypted lists the parts META-INF/encryption.xml says are encrypted (fonts obfuscated
// this way are harmless: only chapters matter to the caller).
func (pk *zipPackage) epubEncrypted() (map[string]bool, error) {
	const enc = "META-INF/encryption.xml"
	if pk.files[enc] == nil {
		return nil, nil
	}
	out := map[string]bool{}
	err := pk.scan(enc, 4<<20, func(_ *xml.Decoder, t xml.Token) error {
		if se, ok := t.(xml.StartElement); ok && se.Name.Local == "CipherReference" {
			out[cleanPath(attr(se, "URI"))] = true
		}
		return nil
	})
	return out, err
}

var selfClosing = regexp.MustCompile(`<([A-Za-z][A-Za-z0-9]*)(\s[^<>]*)?/>`)

var voidElements = map[string]bool{
	"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true, "img": true,
	"input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true,
}

// xhtmlSelfClosing rewrites XHTML's self-closed elements (<title/>, <a id="x"/>) as an open
// and a close tag: an HTML parser reads <title/> as an open title that swallows the chapter.
func xhtmlSelfClosing(b []byte) []byte {
	return selfClosing.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := selfClosing.FindSubmatch(m)
		name := string(sub[1])
		if voidElements[strings.ToLower(name)] {
			return m
		}
		return []byte("<" + name + string(sub[2]) + "></" + name + ">")
	})
}
