package extract

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/quirehq/quire/shared/doctype"
)

// maxPDFBytes bounds the PDF read into memory (both engines need the whole file).
const maxPDFBytes = 512 << 20

// pdfDocument extracts a PDF page by page with the configured engine: one section per page,
// progress per page, ErrNeedsOCR when the text layer is (nearly) empty, ErrEncrypted when the
// empty user password does not open it.
func (e *Extractor) pdfDocument(ctx context.Context, r io.ReaderAt, size int64, lim *limiter, progress Progress) (*Document, error) {
	data, err := readAll(r, size, maxPDFBytes)
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(data[:min(len(data), 1024)], []byte("%PDF-")) {
		return nil, fmt.Errorf("%w: pdf: no %%PDF- header in the first KiB", ErrCorrupt)
	}
	eng, err := e.pdfEngine()
	if err != nil {
		return nil, err
	}
	doc := &Document{Type: doctype.PDF}
	chars := 0
	err = eng.extract(ctx, data,
		func(n int, title string) error {
			if n <= 0 {
				return fmt.Errorf("%w: pdf: no pages", ErrEmpty)
			}
			if n > e.opts.MaxPages {
				return fmt.Errorf("%w: pdf: %d pages, limit %d", ErrTooLarge, n, e.opts.MaxPages)
			}
			doc.Pages = n
			doc.Title = strings.TrimSpace(title)
			progress(0, n)
			return nil
		},
		func(n int, text string) error {
			text = cleanPDFText(text)
			if err := lim.add(len(text)); err != nil {
				return err
			}
			for _, r := range text {
				if !unicode.IsSpace(r) {
					chars++
				}
			}
			if strings.TrimSpace(text) != "" {
				doc.Sections = append(doc.Sections, Section{Text: text, Page: n})
			}
			progress(n, doc.Pages)
			return nil
		})
	if err != nil {
		return nil, err
	}
	if chars < e.opts.MinCharsPerPage*doc.Pages {
		return nil, fmt.Errorf("%w: %d characters of text on %d pages", ErrNeedsOCR, chars, doc.Pages)
	}
	return doc, nil
}

// cleanPDFText normalises line ends and drops the control characters PDF engines emit
// (NUL, PDFium's U+0002 and U+FFFE hyphenation marks, form feeds).
func cleanPDFText(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\x00', '\f':
			return -1
		case '\x02', '\uFFFE':
			return '-'
		}
		if r < ' ' && r != '\n' && r != '\t' {
			return -1
		}
		return r
	}, s)
}
