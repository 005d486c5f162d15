package extract

import (
	"context"
	"encoding/xml"
	"io"
	"strconv"
	"strings"

	"github.com/quirehq/quire/shared/doctype"
)

// odf reads an OpenDocument package (content.xml, the title from meta.xml):
//   - ODT: paragraphs in order, text:h as headings by outline level, list items marked "- ",
//     tables row by row (cells joined with " | "); tracked deletions, note citations and
//     generated indexes (tables of contents) are left out.
//   - ODS: sheet by sheet, each row one section located by sheet and row (see [sheetWriter]);
//     repeated rows and cells (table:number-*-repeated, which LibreOffice writes for the empty
//     rest of a sheet) are not expanded: a repeated row with text is written once.
//   - ODP: page by page as slides, the title frame as heading, speaker notes after the slide.
func (e *Extractor) odf(ctx context.Context, r io.ReaderAt, size int64, t doctype.Type, lim *limiter) (*Document, error) {
	kind := string(t)
	pk, err := e.openZip(r, size, kind)
	if err != nil {
		return nil, err
	}
	if pk.files["content.xml"] == nil {
		return nil, errf(ErrCorrupt, kind, "the package has no content.xml")
	}
	doc := &Document{Title: pk.titleOf("meta.xml")}
	rd := &odfReader{t: t, pw: &paraWriter{lim: lim}, sw: newSheetWriter(lim)}
	// content.xml streams (it is never held whole): a large spreadsheet's may pass the per-part
	// cap; the whole-package cap and the compression ratio still bound it.
	if err := pk.scan("content.xml", pk.opts.MaxZipTotalBytes, func(_ *xml.Decoder, tok xml.Token) error {
		if err := rd.tick.check(ctx); err != nil {
			return err
		}
		return rd.token(tok)
	}); err != nil {
		return nil, err
	}
	switch t {
	case doctype.ODS:
		doc.Sections = rd.sw.secs
		doc.Pages = rd.sheets
	default:
		doc.Sections = rd.pw.finish()
		doc.Pages = rd.slide
	}
	return doc, nil
}

type odfReader struct {
	t    doctype.Type
	pw   *paraWriter
	sw   *sheetWriter
	tick ticker

	skip    int // depth inside content that is not text
	paras   []*odfPara
	cellTxt []string // paragraphs of the current table cell
	row     []string // cells of the current row (ODT tables, ODS rows)
	numeric []bool
	tables  int // table nesting

	// ODS
	sheets     int
	rowNum     int
	rowRepeat  int
	cellRepeat int
	cellNum    bool
	// ODP
	slide     int
	frame     []string // presentation:class of open frames
	inNotes   bool
	titleDone bool
	notesSeen bool

	pendingList bool // the next paragraph starts a list item
}

type odfPara struct {
	b       strings.Builder
	heading int
}

func (rd *odfReader) token(tok xml.Token) error {
	switch t := tok.(type) {
	case xml.StartElement:
		if rd.skip > 0 {
			rd.skip++
			return nil
		}
		return rd.start(t)
	case xml.EndElement:
		if rd.skip > 0 {
			rd.skip--
			return nil
		}
		return rd.end(t)
	case xml.CharData:
		if rd.skip == 0 && len(rd.paras) > 0 {
			p := rd.paras[len(rd.paras)-1]
			p.b.Write(t)
			if p.b.Len() > rd.pw.lim.max {
				return errf(ErrTooLarge, string(rd.t), "paragraph of more than %d bytes", rd.pw.lim.max)
			}
		}
	}
	return nil
}

var odfSkipped = map[string]bool{
	"tracked-changes": true, "note-citation": true, "table-of-content": true,
	"alphabetical-index": true, "illustration-index": true, "object-index": true,
	"user-index": true, "bibliography": true, "sequence-decls": true, "forms": true,
	"annotation-end": true, "script": true, "event-listeners": true, "font-face-decls": true,
	"automatic-styles": true, "table-of-content-source": true,
}

func (rd *odfReader) start(t xml.StartElement) error {
	name := t.Name.Local
	if odfSkipped[name] {
		rd.skip = 1
		return nil
	}
	switch name {
	case "p", "h":
		p := &odfPara{}
		if name == "h" {
			p.heading = 1
			if n, err := strconv.Atoi(attr(t, "outline-level")); err == nil && n >= 1 && n <= 9 {
				p.heading = n
			}
		}
		rd.paras = append(rd.paras, p)
	case "list-item":
		rd.pendingList = true // its first paragraph is written as a list item
	case "s":
		if p := rd.para(); p != nil {
			n, _ := strconv.Atoi(attr(t, "c"))
			p.b.WriteString(strings.Repeat(" ", min(max(n, 1), 64)))
		}
	case "tab":
		if p := rd.para(); p != nil {
			p.b.WriteByte('\t')
		}
	case "line-break":
		if p := rd.para(); p != nil {
			p.b.WriteByte('\n')
		}
	case "table":
		rd.tables++
		if rd.t == doctype.ODS && rd.tables == 1 {
			rd.sheets++
			if rd.sheets > maxSheets {
				return errf(ErrTooLarge, "ods", "more than %d sheets", maxSheets)
			}
			rd.sw.start(attr(t, "name"))
			rd.rowNum = 0
		}
	case "table-row":
		rd.row, rd.numeric = rd.row[:0], rd.numeric[:0]
		rd.rowRepeat = 1
		if n, err := strconv.Atoi(attr(t, "number-rows-repeated")); err == nil && n > 1 {
			rd.rowRepeat = n
		}
	case "table-cell", "covered-table-cell":
		rd.cellTxt = rd.cellTxt[:0]
		rd.cellRepeat = 1
		if n, err := strconv.Atoi(attr(t, "number-columns-repeated")); err == nil && n > 1 {
			rd.cellRepeat = n
		}
		switch attr(t, "value-type") {
		case "float", "percentage", "currency":
			rd.cellNum = true
		default:
			rd.cellNum = false
		}
	case "page":
		if rd.t == doctype.ODP {
			rd.slide++
			if rd.slide > maxSheets {
				return errf(ErrTooLarge, "odp", "more than %d slides", maxSheets)
			}
			rd.pw.locate(doctype.Location{Slide: rd.slide})
			rd.pw.heading(0, "")
			rd.titleDone, rd.notesSeen = false, false
		}
	case "frame":
		rd.frame = append(rd.frame, attr(t, "class"))
		switch attr(t, "class") {
		case "page-number", "date-time", "footer", "header", "page":
			rd.skip = 1
			rd.frame = rd.frame[:len(rd.frame)-1]
		}
	case "notes":
		rd.inNotes = true
	}
	return nil
}

func (rd *odfReader) para() *odfPara {
	if n := len(rd.paras); n > 0 {
		return rd.paras[n-1]
	}
	return nil
}

func (rd *odfReader) end(t xml.EndElement) error {
	switch t.Name.Local {
	case "p", "h":
		n := len(rd.paras)
		if n == 0 {
			return nil
		}
		p := rd.paras[n-1]
		rd.paras = rd.paras[:n-1]
		text := strings.TrimSpace(p.b.String())
		if n > 1 {
			// A paragraph inside another (a text box in a paragraph, a note body) joins it.
			parent := rd.paras[n-2]
			if text != "" {
				parent.b.WriteString(" " + text)
			}
			return nil
		}
		if text == "" {
			return nil
		}
		if rd.tables > 0 {
			rd.cellTxt = append(rd.cellTxt, text)
			return nil
		}
		return rd.emit(text, p.heading)
	case "table-cell", "covered-table-cell":
		text := strings.Join(rd.cellTxt, "\n")
		rd.cellTxt = rd.cellTxt[:0]
		reps := rd.cellRepeat
		if text == "" {
			reps = 1 // an empty run of cells only moves the column on
		}
		for range reps {
			if len(rd.row) >= maxRowCells {
				if text == "" {
					break
				}
				return errf(ErrTooLarge, string(rd.t), "a row of more than %d cells", maxRowCells)
			}
			rd.row, rd.numeric = append(rd.row, text), append(rd.numeric, rd.cellNum)
		}
	case "table-row":
		if rd.t == doctype.ODS && rd.tables == 1 {
			rd.rowNum++
			err := rd.sw.row(rd.rowNum, rd.row, rd.numeric)
			rd.rowNum += rd.rowRepeat - 1
			return err
		}
		if line := strings.Join(rd.row, " | "); strings.Trim(line, " |") != "" {
			if rd.tables > 1 {
				rd.cellTxt = append(rd.cellTxt, line)
			} else if err := rd.emit(line, 0); err != nil {
				return err
			}
		}
		rd.row = rd.row[:0]
	case "table":
		rd.tables--
	case "frame":
		if n := len(rd.frame); n > 0 {
			rd.frame = rd.frame[:n-1]
		}
	case "notes":
		rd.inNotes = false
	}
	return nil
}

// emit writes a finished top-level paragraph.
func (rd *odfReader) emit(text string, heading int) error {
	list := rd.pendingList
	rd.pendingList = false
	switch rd.t {
	case doctype.ODS:
		return nil // text outside a sheet's cells (shapes, notes) is not part of the table
	case doctype.ODP:
		cls := ""
		if n := len(rd.frame); n > 0 {
			cls = rd.frame[n-1]
		}
		switch {
		case rd.inNotes:
			if !rd.notesSeen {
				rd.notesSeen = true
				text = "Speaker notes: " + text
			}
		case cls == "title" && !rd.titleDone:
			rd.titleDone = true
			rd.pw.heading(1, oneLine(text))
		}
		return rd.pw.para(text)
	}
	if heading > 0 {
		rd.pw.heading(heading, oneLine(text))
	}
	if list {
		text = "- " + text
	}
	return rd.pw.para(text)
}
