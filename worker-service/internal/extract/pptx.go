package extract

import (
	"context"
	"encoding/xml"
	"io"
	"strings"

	"github.com/quirehq/quire/shared/doctype"
)

const relsNamespace = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"

// pptx reads a PowerPoint package slide by slide in presentation order: the slide's title
// (its title placeholder) as the heading and first paragraph, the text of its other shapes
// and tables in document order, then its speaker notes. Each slide's sections carry its
// 1-based number as their location. Slides marked hidden are read too (their text is part of
// the deck). The package is read under the limits of every zip package (see [zipPackage]).
func (e *Extractor) pptx(ctx context.Context, r io.ReaderAt, size int64, lim *limiter) (*Document, error) {
	pk, err := e.openZip(r, size, "pptx")
	if err != nil {
		return nil, err
	}
	const pres = "ppt/presentation.xml"
	if pk.files[pres] == nil {
		return nil, errf(ErrCorrupt, "pptx", "the package has no %s", pres)
	}
	targets, _, err := pk.rels(pres)
	if err != nil {
		return nil, err
	}
	var slides []string
	err = pk.scan(pres, 16<<20, func(_ *xml.Decoder, t xml.Token) error {
		se, ok := t.(xml.StartElement)
		if !ok || se.Name.Local != "sldId" {
			return nil
		}
		for _, a := range se.Attr {
			if a.Name.Local == "id" && a.Name.Space == relsNamespace {
				if tgt := targets[a.Value]; tgt != "" && pk.files[tgt] != nil {
					slides = append(slides, tgt)
				}
			}
		}
		if len(slides) > maxSheets {
			return errf(ErrTooLarge, "pptx", "more than %d slides", maxSheets)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	doc := &Document{Title: pk.title(), Pages: len(slides)}
	w := &paraWriter{lim: lim}
	for i, slide := range slides {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		body, err := pk.shapes(ctx, slide, false)
		if err != nil {
			return nil, err
		}
		title := strings.Join(strings.Fields(body.title), " ")
		w.locate(doctype.Location{Slide: i + 1})
		w.heading(1, title)
		if title == "" {
			w.heading(0, "")
		}
		if err := w.para(body.title); err != nil {
			return nil, err
		}
		for _, p := range body.paras {
			if err := w.para(p); err != nil {
				return nil, err
			}
		}
		if err := pk.pptxNotes(ctx, slide, w); err != nil {
			return nil, err
		}
	}
	doc.Sections = w.finish()
	return doc, nil
}

// pptxNotes adds the speaker notes of slide, if it has a notes page.
func (pk *zipPackage) pptxNotes(ctx context.Context, slide string, w *paraWriter) error {
	targets, types, err := pk.rels(slide)
	if err != nil {
		return err
	}
	for id, typ := range types {
		if !strings.HasSuffix(typ, "/notesSlide") || pk.files[targets[id]] == nil {
			continue
		}
		notes, err := pk.shapes(ctx, targets[id], true)
		if err != nil {
			return err
		}
		for i, p := range notes.paras {
			if i == 0 {
				p = "Speaker notes: " + p
			}
			if err := w.para(p); err != nil {
				return err
			}
		}
		return nil
	}
	return nil
}

type slideText struct {
	title string
	paras []string
}

// shapes reads the text of the shapes of a slide (or notes page) in document order: the
// title placeholder's text into title, every other paragraph and table row into paras. On a
// notes page only the notes themselves count (not the slide image, number, date, header or
// footer placeholders).
func (pk *zipPackage) shapes(ctx context.Context, part string, notes bool) (*slideText, error) {
	var (
		out     slideText
		tick    ticker
		shape   []string // placeholder type of each open shape
		para    strings.Builder
		inText  bool
		inTable int
		cell    []string
		row     []string
		shapeTx []string // paragraphs of the innermost shape
		skipPh  = map[string]bool{"sldImg": true, "sldNum": true, "dt": true, "ftr": true, "hdr": true}
	)
	err := pk.scan(part, pk.opts.MaxZipPartBytes, func(_ *xml.Decoder, t xml.Token) error {
		if err := tick.check(ctx); err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "sp":
				shape = append(shape, "")
				shapeTx = nil
			case "ph":
				if n := len(shape); n > 0 {
					shape[n-1] = attr(t, "type")
					if shape[n-1] == "" {
						shape[n-1] = "body"
					}
				}
			case "t":
				inText = true
			case "br":
				para.WriteByte('\n')
			case "tbl":
				inTable++
			case "tc":
				cell = nil
			}
		case xml.CharData:
			if inText {
				para.Write(t)
				if para.Len() > pk.opts.MaxTextBytes {
					return errf(ErrTooLarge, pk.kind, "paragraph too long")
				}
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "t":
				inText = false
			case "p":
				text := strings.TrimSpace(para.String())
				para.Reset()
				switch {
				case text == "":
				case inTable > 0:
					cell = append(cell, text)
				case len(shape) > 0:
					shapeTx = append(shapeTx, text)
				default:
					out.paras = append(out.paras, text)
				}
			case "tc":
				row = append(row, strings.Join(cell, " "))
				cell = nil
			case "tr":
				if line := strings.Join(row, " | "); strings.Trim(line, " |") != "" {
					out.paras = append(out.paras, line)
				}
				row = nil
			case "tbl":
				inTable--
			case "sp":
				n := len(shape)
				if n == 0 {
					return nil
				}
				kind := shape[n-1]
				shape = shape[:n-1]
				switch {
				case !notes && (kind == "title" || kind == "ctrTitle") && out.title == "":
					out.title = strings.Join(shapeTx, "\n")
				case notes && (skipPh[kind] || kind == ""):
					// On a notes page, text outside the notes placeholder is page furniture.
				case skipPh[kind]:
					// Slide numbers, dates and footers repeat on every slide.
				default:
					out.paras = append(out.paras, shapeTx...)
				}
				shapeTx = nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}
