package extract

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"strings"
	"time"

	"golang.org/x/image/webp"

	"github.com/quirehq/quire/shared/doctype"
)

// maxImageBytes bounds an image read into memory for OCR.
const maxImageBytes = 256 << 20

// imageDocument recognises the text of a PNG, JPEG, TIFF or WebP image: one section per page
// (a multi-page TIFF has several), progress per page. The image's dimensions are read from
// its header first, and an image of more than Options.OCRMaxPixels pixels on any page (a
// decompression bomb) is refused before anything decodes it. Without OCR it fails with
// ErrNeedsOCR.
func (e *Extractor) imageDocument(ctx context.Context, r io.ReaderAt, size int64, t doctype.Type, lim *limiter, progress Progress) (*Document, error) {
	data, err := readAll(r, size, maxImageBytes)
	if err != nil {
		return nil, err
	}
	pages, err := imagePages(data, t, e.opts.OCRMaxPixels, e.opts.MaxPages)
	if err != nil {
		return nil, err
	}
	if e.ocr == nil {
		return nil, fmt.Errorf("%w: %s image; %s", ErrNeedsOCR, t, ocrHint)
	}
	doc := &Document{Type: t, Pages: pages}
	progress(0, pages)
	budget := time.Duration(pages) * e.opts.OCRPageTimeout
	lim.extend(budget)
	octx, cancel := context.WithTimeoutCause(ctx, budget, errPageTimeout)
	defer cancel()
	err = e.ocr.recognise(octx, data, 0, pages, func(n int, text string) error {
		if n > pages {
			return fmt.Errorf("%w: tesseract returned more pages than the image has (%d)", ErrCorrupt, pages)
		}
		text = cleanPDFText(text)
		if err := lim.add(len(text)); err != nil {
			return err
		}
		if strings.TrimSpace(text) != "" {
			doc.Sections = append(doc.Sections, Section{Text: text, Page: n})
		}
		progress(n, pages)
		return nil
	})
	if err != nil {
		if ctx.Err() == nil && errors.Is(context.Cause(octx), errPageTimeout) {
			return nil, fmt.Errorf("%w: ocr of the %d-page image took longer than %s a page", ErrTooLarge, pages, e.opts.OCRPageTimeout)
		}
		return nil, err
	}
	progress(pages, pages)
	return doc, nil
}

// imagePages checks an image's header against its sniffed type and the pixel cap, and returns
// its page count (1 except for multi-page TIFFs). Nothing is decoded beyond the header.
func imagePages(data []byte, t doctype.Type, maxPixels, maxPages int) (int, error) {
	var (
		cfg image.Config
		err error
	)
	switch t {
	case doctype.PNG:
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	case doctype.JPEG:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	case doctype.WebP:
		cfg, err = webp.DecodeConfig(bytes.NewReader(data))
	case doctype.TIFF:
		return tiffPages(data, maxPixels, maxPages)
	default:
		return 0, fmt.Errorf("%w: type %q is not an image", ErrUnsupported, t)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %s header: %v", ErrCorrupt, t, err)
	}
	if err := checkPixels(cfg.Width, cfg.Height, maxPixels, t, 1); err != nil {
		return 0, err
	}
	return 1, nil
}

func checkPixels(w, h, maxPixels int, t doctype.Type, page int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: %s page %d: dimensions %dx%d", ErrCorrupt, t, page, w, h)
	}
	if int64(w)*int64(h) > int64(maxPixels) {
		return fmt.Errorf("%w: %s page %d is %dx%d pixels, limit %d pixels", ErrTooLarge, t, page, w, h, maxPixels)
	}
	return nil
}

// tiffPages walks the chain of image file directories of a (classic, not Big) TIFF: each is a
// page, whose ImageWidth and ImageLength tags are checked against maxPixels. A chain that
// loops, leaves the file or exceeds maxPages is refused.
func tiffPages(data []byte, maxPixels, maxPages int) (int, error) {
	if len(data) < 8 {
		return 0, fmt.Errorf("%w: tiff: truncated header", ErrCorrupt)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if data[0] == 'M' {
		bo = binary.BigEndian
	}
	off := int64(bo.Uint32(data[4:8]))
	seen := map[int64]bool{}
	pages := 0
	for off != 0 {
		if seen[off] {
			return 0, fmt.Errorf("%w: tiff: directory chain loops", ErrCorrupt)
		}
		seen[off] = true
		if off < 8 || off+2 > int64(len(data)) {
			return 0, fmt.Errorf("%w: tiff: directory %d at offset %d outside the file", ErrCorrupt, pages+1, off)
		}
		n := int64(bo.Uint16(data[off:]))
		end := off + 2 + 12*n
		if end+4 > int64(len(data)) {
			return 0, fmt.Errorf("%w: tiff: directory %d truncated", ErrCorrupt, pages+1)
		}
		w, h := 0, 0
		for i := range n {
			ent := data[off+2+12*i:]
			var v int
			switch bo.Uint16(ent[2:]) { // field type
			case 3: // SHORT
				v = int(bo.Uint16(ent[8:]))
			case 4: // LONG
				v = int(bo.Uint32(ent[8:]))
			}
			switch bo.Uint16(ent) { // tag
			case 256:
				w = v
			case 257:
				h = v
			}
		}
		pages++
		if pages > maxPages {
			return 0, fmt.Errorf("%w: tiff: more than %d pages", ErrTooLarge, maxPages)
		}
		if err := checkPixels(w, h, maxPixels, doctype.TIFF, pages); err != nil {
			return 0, err
		}
		off = int64(bo.Uint32(data[end:]))
	}
	if pages == 0 {
		return 0, fmt.Errorf("%w: tiff: no pages", ErrCorrupt)
	}
	return pages, nil
}
