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
// progress per page, ErrEncrypted when the empty user password does not open it. With OCR on,
// every page with fewer than Options.MinCharsPerPage characters of text (a scanned page) is
// rendered and recognised, so a PDF mixing text and scanned pages yields both; with OCR off,
// a PDF whose text layer is (nearly) empty fails with ErrNeedsOCR.
//
// Progress counts the pages whose text is in hand: text pages as they are read, scanned pages
// as each is recognised.
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
	chars, done := 0, 0
	var texts []string // by page, 0-based
	var scanned []int  // 1-based numbers of the pages to recognise
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
			texts = make([]string, n)
			progress(0, n)
			return nil
		},
		func(n int, text string) error {
			text = cleanPDFText(text)
			if err := lim.add(len(text)); err != nil {
				return err
			}
			pageChars := 0
			for _, r := range text {
				if !unicode.IsSpace(r) {
					pageChars++
				}
			}
			chars += pageChars
			if n < 1 || n > len(texts) {
				return fmt.Errorf("%w: pdf: page %d of %d", ErrCorrupt, n, len(texts))
			}
			texts[n-1] = text
			if e.ocr != nil && pageChars < e.opts.MinCharsPerPage {
				scanned = append(scanned, n)
				return nil
			}
			done++
			progress(done, doc.Pages)
			return nil
		})
	if err != nil {
		return nil, err
	}
	if e.ocr == nil && chars < e.opts.MinCharsPerPage*doc.Pages {
		return nil, fmt.Errorf("%w: %d characters of text on %d pages; %s", ErrNeedsOCR, chars, doc.Pages, ocrHint)
	}
	var sizes map[int][2]float64
	if len(scanned) > 0 {
		// Without the sizes (pdfinfo cannot read this file) pages render at OCRDPI, still
		// under the pixel cap.
		sizes, err = e.ocr.pageSizes(ctx, data, scanned[0], scanned[len(scanned)-1])
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	for _, n := range scanned {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		lim.extend(e.opts.OCRPageTimeout)
		text, err := e.ocr.ocrPage(ctx, data, n, sizes[n])
		if err != nil {
			return nil, err
		}
		if text = cleanPDFText(text); strings.TrimSpace(text) != "" {
			// The recognised page replaces the scrap of text layer it had (a page number).
			if err := lim.add(len(text)); err != nil {
				return nil, err
			}
			texts[n-1] = text
		}
		done++
		progress(done, doc.Pages)
	}
	for i, text := range texts {
		if strings.TrimSpace(text) != "" {
			doc.Sections = append(doc.Sections, Section{Text: text, Page: i + 1})
		}
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
