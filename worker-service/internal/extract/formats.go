package extract

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/quirehq/quire/shared/doctype"
)

// Limits of the office, e-book, mail and table readers beyond those of [Options].
const (
	// maxSharedStrings caps the entries of an XLSX shared-strings table, which is held in
	// memory while the sheets stream (its bytes are capped as a part, by MaxZipPartBytes).
	maxSharedStrings = 1 << 20
	// maxRowCells caps the cells of one spreadsheet row (XLSX has 16,384 columns; an ODS row
	// may declare a cell repeated a million times).
	maxRowCells = 16384
	// maxSheets caps the sheets of a workbook and the slides of a presentation.
	maxSheets = 10_000
)

type formatFunc func(ctx context.Context, r io.ReaderAt, size int64, lim *limiter) (*Document, error)

// formatReader returns the reader of the office, e-book, mail and table formats, nil for the
// others. The text it returns is valid UTF-8 without NUL bytes.
func (e *Extractor) formatReader(t doctype.Type) formatFunc {
	fn := e.formatFunc(t)
	if fn == nil {
		return nil
	}
	return func(ctx context.Context, r io.ReaderAt, size int64, lim *limiter) (*Document, error) {
		doc, err := fn(ctx, r, size, lim)
		if err != nil {
			return nil, err
		}
		doc.Title = cleanText(doc.Title)
		for i := range doc.Sections {
			s := &doc.Sections[i]
			s.Text, s.Heading, s.Location.Sheet = cleanText(s.Text), cleanText(s.Heading), cleanText(s.Location.Sheet)
		}
		return doc, nil
	}
}

// cleanText makes s valid UTF-8 without NUL bytes (PostgreSQL text holds neither).
func cleanText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return s
}

func (e *Extractor) formatFunc(t doctype.Type) formatFunc {
	switch t {
	case doctype.PPTX:
		return e.pptx
	case doctype.XLSX:
		return e.xlsx
	case doctype.CSV:
		return func(ctx context.Context, r io.ReaderAt, size int64, lim *limiter) (*Document, error) {
			return e.delimited(ctx, r, size, ',', lim)
		}
	case doctype.TSV:
		return func(ctx context.Context, r io.ReaderAt, size int64, lim *limiter) (*Document, error) {
			return e.delimited(ctx, r, size, '\t', lim)
		}
	case doctype.ODT, doctype.ODS, doctype.ODP:
		return func(ctx context.Context, r io.ReaderAt, size int64, lim *limiter) (*Document, error) {
			return e.odf(ctx, r, size, t, lim)
		}
	case doctype.EPUB:
		return e.epub
	case doctype.RTF:
		return e.rtf
	case doctype.EML:
		return e.eml
	}
	return nil
}

// sheetWriter renders the rows of a spreadsheet or delimited table, one section per row.
//
// A row becomes one paragraph of "header: value" pairs ("Region: North; Units: 120") when the
// table's first row is a header (every cell in it is non-numeric text), and the cells joined
// with " | " otherwise. Header pairs retrieve better than table text: a chunk cut from the
// middle of a long sheet still names what each value means, so a query such as "units sold
// in the North region" matches the words of the header as well as the value, and the
// embedding of a chunk does not depend on a header row that lies chunks away. Empty cells are
// left out.
type sheetWriter struct {
	lim    *limiter
	sheet  string
	header []string
	first  bool // the next non-empty row is the first of the sheet
	secs   []Section
}

func newSheetWriter(lim *limiter) *sheetWriter { return &sheetWriter{lim: lim} }

// start begins a sheet.
func (w *sheetWriter) start(name string) {
	w.sheet, w.header, w.first = name, nil, true
}

// row adds row number n (1-based) with its cells (column index → text; numeric tells
// whether a cell held a number).
func (w *sheetWriter) row(n int, cells []string, numeric []bool) error {
	last := -1
	for i, c := range cells {
		if strings.TrimSpace(c) != "" {
			last = i
		}
	}
	if last < 0 {
		return nil
	}
	cells = cells[:last+1]
	if w.first {
		w.first = false
		if isHeader(cells, numeric) {
			w.header = make([]string, len(cells))
			for i, c := range cells {
				w.header[i] = oneLine(c)
			}
			return nil
		}
	}
	var b strings.Builder
	for i, c := range cells {
		c = oneLine(c)
		if c == "" {
			continue
		}
		if w.header != nil {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			h := ""
			if i < len(w.header) {
				h = w.header[i]
			}
			if h == "" {
				h = columnName(i)
			}
			b.WriteString(h)
			b.WriteString(": ")
		} else if b.Len() > 0 {
			b.WriteString(" | ")
		}
		b.WriteString(c)
	}
	if err := w.lim.add(b.Len() + 2); err != nil {
		return err
	}
	w.secs = append(w.secs, Section{
		Text:     b.String(),
		Heading:  w.sheet,
		Location: doctype.Location{Sheet: w.sheet, RowStart: n, RowEnd: n},
	})
	return nil
}

// isHeader: a first row is a header when it has text in it and no number.
func isHeader(cells []string, numeric []bool) bool {
	text := 0
	for i, c := range cells {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if (i < len(numeric) && numeric[i]) || isNumber(c) {
			return false
		}
		text++
	}
	return text > 0
}

func isNumber(s string) bool {
	s = strings.NewReplacer(",", "", "%", "", "$", "", "€", "", "£", "").Replace(s)
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// oneLine collapses the white space of a cell (line breaks included) to single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// columnName is the spreadsheet name of 0-based column i: A, B, …, Z, AA, ….
func columnName(i int) string {
	var b []byte
	for i++; i > 0; i = (i - 1) / 26 {
		b = append([]byte{byte('A' + (i-1)%26)}, b...)
	}
	return string(b)
}

// columnIndex parses the column of a cell reference ("C7" → 2); -1 when there is none, and
// maxRowCells for a column past the last one.
func columnIndex(ref string) int {
	n := 0
	seen := false
	for _, c := range ref {
		switch {
		case c >= 'A' && c <= 'Z':
			n = n*26 + int(c-'A'+1)
		case c >= 'a' && c <= 'z':
			n = n*26 + int(c-'a'+1)
		default:
			if !seen && n == 0 {
				return -1
			}
			return n - 1
		}
		seen = true
		if n > maxRowCells {
			return maxRowCells // past the last column: the caller's cap refuses it
		}
	}
	if n == 0 {
		return -1
	}
	return n - 1
}

// paraWriter collects paragraphs into sections under a heading path and a location, for the
// formats written as flowing text (slides, OpenDocument text, RTF, mail).
type paraWriter struct {
	lim  *limiter
	path []string
	loc  doctype.Location
	secs []Section
	cur  strings.Builder
}

// heading sets the heading at level (1-based); level 0 leaves every heading.
func (w *paraWriter) heading(level int, title string) {
	w.flush()
	if level <= 0 {
		w.path = nil
		return
	}
	if level-1 < len(w.path) {
		w.path = w.path[:level-1]
	}
	for len(w.path) < level-1 {
		w.path = append(w.path, "")
	}
	w.path = append(w.path, title)
}

// locate starts a new section at loc.
func (w *paraWriter) locate(loc doctype.Location) {
	w.flush()
	w.loc = loc
}

func (w *paraWriter) para(text string) error {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil
	}
	if err := w.lim.add(len(text) + 2); err != nil {
		return err
	}
	if w.cur.Len() > 0 {
		w.cur.WriteString("\n\n")
	}
	w.cur.WriteString(text)
	return nil
}

func (w *paraWriter) flush() {
	if strings.TrimSpace(w.cur.String()) != "" {
		w.secs = append(w.secs, Section{Text: w.cur.String(), Heading: headingPath(w.path), Location: w.loc})
	}
	w.cur.Reset()
}

func (w *paraWriter) finish() []Section {
	w.flush()
	return w.secs
}

// relsTarget resolves the Target of a relationship found in part base's .rels file.
func relsTarget(base, target string) string {
	if strings.HasPrefix(target, "/") {
		return strings.TrimPrefix(target, "/")
	}
	dir := base[:strings.LastIndexByte(base, '/')+1]
	return cleanPath(dir + target)
}

// cleanPath resolves "." and ".." in a slash path inside a package (never above its root).
func cleanPath(p string) string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	return strings.Join(out, "/")
}

// rels reads the relationships of part (its _rels/<name>.rels file): Id → resolved target,
// and Id → type.
func (pk *zipPackage) rels(part string) (map[string]string, map[string]string, error) {
	dir, name := "", part
	if i := strings.LastIndexByte(part, '/'); i >= 0 {
		dir, name = part[:i+1], part[i+1:]
	}
	relsName := dir + "_rels/" + name + ".rels"
	targets, types := map[string]string{}, map[string]string{}
	if pk.files[relsName] == nil {
		return targets, types, nil
	}
	err := pk.scan(relsName, 4<<20, func(_ *xml.Decoder, t xml.Token) error {
		se, ok := t.(xml.StartElement)
		if !ok || se.Name.Local != "Relationship" {
			return nil
		}
		if attr(se, "TargetMode") == "External" {
			return nil
		}
		id := attr(se, "Id")
		targets[id] = relsTarget(part, attr(se, "Target"))
		types[id] = attr(se, "Type")
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return targets, types, nil
}

// check returns ctx's error every 4096 calls.
type ticker struct{ n int }

func (t *ticker) check(ctx context.Context) error {
	if t.n++; t.n%4096 == 0 {
		return ctx.Err()
	}
	return nil
}

// errf wraps a sentinel with the format name.
func errf(sentinel error, kind, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", sentinel, kind, fmt.Sprintf(format, args...))
}
