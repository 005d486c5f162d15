package extract

import (
	"context"
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// xlsx reads an Excel workbook sheet by sheet in workbook order, each row as one section (see
// [sheetWriter] for how rows are written and why) located by sheet name and row number.
// Sheets stream token by token from the zip entry, so a sheet of any number of rows is never
// held whole; the shared-strings table is held in memory under a cap on its entries
// (maxSharedStrings) and its bytes (MaxZipPartBytes). Formulas give their cached values;
// numbers in a date or time format (xl/styles.xml) come out as ISO dates and times.
//
// excelize was considered; this reader is used instead because it shares the limits of the
// other zip packages (bytes counted as inflated, compression ratio, XML depth) and keeps the
// shared strings capped, where excelize reads the whole archive into memory and spills large
// sheets to temporary files.
func (e *Extractor) xlsx(ctx context.Context, r io.ReaderAt, size int64, lim *limiter) (*Document, error) {
	pk, err := e.openZip(r, size, "xlsx")
	if err != nil {
		return nil, err
	}
	const book = "xl/workbook.xml"
	if pk.files[book] == nil {
		return nil, errf(ErrCorrupt, "xlsx", "the package has no %s", book)
	}
	targets, types, err := pk.rels(book)
	if err != nil {
		return nil, err
	}
	type sheet struct{ name, part string }
	var (
		sheets   []sheet
		date1904 bool
	)
	err = pk.scan(book, 16<<20, func(_ *xml.Decoder, t xml.Token) error {
		se, ok := t.(xml.StartElement)
		if ok && se.Name.Local == "workbookPr" {
			v := attr(se, "date1904")
			date1904 = v == "1" || v == "true"
		}
		if !ok || se.Name.Local != "sheet" {
			return nil
		}
		for _, a := range se.Attr {
			if a.Name.Local == "id" && a.Name.Space == relsNamespace {
				if tgt := targets[a.Value]; pk.files[tgt] != nil {
					sheets = append(sheets, sheet{attr(se, "name"), tgt})
				}
			}
		}
		if len(sheets) > maxSheets {
			return errf(ErrTooLarge, "xlsx", "more than %d sheets", maxSheets)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	cv := &cellValues{date1904: date1904}
	for id, typ := range types {
		switch {
		case strings.HasSuffix(typ, "/sharedStrings") && pk.files[targets[id]] != nil:
			if cv.sst, err = pk.sharedStrings(ctx, targets[id]); err != nil {
				return nil, err
			}
		case strings.HasSuffix(typ, "/styles") && pk.files[targets[id]] != nil:
			if cv.dateStyle, err = pk.dateStyles(targets[id]); err != nil {
				return nil, err
			}
		}
	}
	doc := &Document{Title: pk.title(), Pages: len(sheets)}
	w := newSheetWriter(lim)
	for _, sh := range sheets {
		w.start(sh.name)
		if err := pk.sheetRows(ctx, sh.part, cv, w); err != nil {
			return nil, err
		}
	}
	doc.Sections = w.secs
	return doc, nil
}

// sharedStrings reads the shared-strings table: the text of each <si>, phonetic runs left out.
func (pk *zipPackage) sharedStrings(ctx context.Context, part string) ([]string, error) {
	var (
		out    []string
		cur    strings.Builder
		inT    bool
		skip   int
		inItem bool
		tick   ticker
	)
	err := pk.scan(part, pk.opts.MaxZipPartBytes, func(_ *xml.Decoder, t xml.Token) error {
		if err := tick.check(ctx); err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.StartElement:
			switch {
			case skip > 0:
				skip++
			case t.Name.Local == "rPh", t.Name.Local == "phoneticPr":
				skip = 1
			case t.Name.Local == "si":
				if len(out) >= maxSharedStrings {
					return errf(ErrTooLarge, "xlsx", "shared-strings table of more than %d entries", maxSharedStrings)
				}
				inItem = true
				cur.Reset()
			case t.Name.Local == "t":
				inT = true
			}
		case xml.EndElement:
			switch {
			case skip > 0:
				skip--
			case t.Name.Local == "t":
				inT = false
			case t.Name.Local == "si":
				inItem = false
				out = append(out, cur.String())
			}
		case xml.CharData:
			if inT && inItem && skip == 0 {
				cur.Write(t)
			}
		}
		return nil
	})
	return out, err
}

// sheetRows streams the rows of a worksheet into w. A worksheet is never held whole, so it may
// pass the per-part cap: the whole-package cap and the compression ratio bound it.
func (pk *zipPackage) sheetRows(ctx context.Context, part string, cv *cellValues, w *sheetWriter) error {
	var (
		tick    ticker
		rowNum  int
		cells   []string
		numeric []bool
		col     int    // column of the current cell
		typ     string // t attribute of the current cell
		style   int    // s attribute of the current cell
		val     strings.Builder
		inV     bool // inside <v> or an inline string's <t>
		inCell  bool
	)
	return pk.scan(part, pk.opts.MaxZipTotalBytes, func(_ *xml.Decoder, t xml.Token) error {
		if err := tick.check(ctx); err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "row":
				if n, err := strconv.Atoi(attr(t, "r")); err == nil && n > 0 {
					rowNum = n
				} else {
					rowNum++
				}
				cells, numeric, col = cells[:0], numeric[:0], 0
			case "c":
				inCell = true
				if c := columnIndex(attr(t, "r")); c >= 0 {
					col = c
				}
				if col >= maxRowCells {
					return errf(ErrTooLarge, "xlsx", "%s: row %d has more than %d cells", part, rowNum, maxRowCells)
				}
				typ = attr(t, "t")
				style, _ = strconv.Atoi(attr(t, "s"))
				val.Reset()
			case "v", "t":
				inV = inCell
			case "rPh":
				inV = false
			}
		case xml.CharData:
			if inV {
				val.Write(t)
				if val.Len() > w.lim.max {
					return errf(ErrTooLarge, "xlsx", "cell of more than %d bytes", w.lim.max)
				}
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "v", "t":
				inV = false
			case "c":
				inCell = false
				text, isNum := cv.value(typ, style, val.String())
				for len(cells) <= col {
					cells, numeric = append(cells, ""), append(numeric, false)
				}
				cells[col], numeric[col] = text, isNum
				col++
			case "row":
				return w.row(rowNum, cells, numeric)
			}
		}
		return nil
	})
}

// cellValues renders the stored values of cells.
type cellValues struct {
	sst       []string
	dateStyle []bool // by cell style index: the number format shows a date or time
	date1904  bool
}

// value renders a cell's stored value by its type (shared string, inline string, boolean,
// error, number or formula string); a number in a date format as an ISO date and time.
func (cv *cellValues) value(typ string, style int, v string) (string, bool) {
	switch typ {
	case "s":
		if i, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && i >= 0 && i < len(cv.sst) {
			return cv.sst[i], false
		}
		return "", false
	case "b":
		if strings.TrimSpace(v) == "1" {
			return "TRUE", false
		}
		return "FALSE", false
	case "str", "inlineStr", "e":
		return v, false
	}
	v = strings.TrimSpace(v)
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return v, v != ""
	}
	if style >= 0 && style < len(cv.dateStyle) && cv.dateStyle[style] {
		if d, ok := serialDate(f, cv.date1904); ok {
			return d, false
		}
	}
	// Stored doubles carry binary noise (0.30000000000000004): 15 significant digits, as
	// Excel shows them.
	if g, err := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 15, 64), 64); err == nil {
		return strconv.FormatFloat(g, 'f', -1, 64), true
	}
	return v, true
}

// serialDate renders an Excel date serial (days since 1899-12-30, or since 1904-01-01 in the
// 1904 system; the fraction is the time of day) as "2006-01-02", "2006-01-02 15:04" or
// "15:04:05".
func serialDate(f float64, date1904 bool) (string, bool) {
	if f < 0 || f > 2958465 || math.IsNaN(f) { // after 9999-12-31
		return "", false
	}
	base := time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)
	if date1904 {
		base = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)
	} else if f < 61 {
		base = base.AddDate(0, 0, 1) // Excel counts a 29 February 1900 that never was
	}
	days := math.Floor(f)
	secs := math.Round((f - days) * 86400)
	t := base.AddDate(0, 0, int(days)).Add(time.Duration(secs) * time.Second)
	switch {
	case secs == 0:
		return t.Format("2006-01-02"), true
	case days == 0 && !date1904:
		return t.Format("15:04:05"), true
	case int(secs)%60 == 0:
		return t.Format("2006-01-02 15:04"), true
	}
	return t.Format("2006-01-02 15:04:05"), true
}

// dateStyles reads which cell styles (cellXfs, by index) show numbers as dates or times: the
// built-in date formats and custom formats with date or time fields.
func (pk *zipPackage) dateStyles(part string) ([]bool, error) {
	custom := map[int]bool{}
	var out []bool
	inXfs := false
	err := pk.scan(part, 16<<20, func(_ *xml.Decoder, t xml.Token) error {
		switch t := t.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "numFmt":
				if id, err := strconv.Atoi(attr(t, "numFmtId")); err == nil {
					custom[id] = isDateFormat(attr(t, "formatCode"))
				}
			case "cellXfs":
				inXfs = true
			case "xf":
				if inXfs {
					id, _ := strconv.Atoi(attr(t, "numFmtId"))
					date, ok := custom[id]
					if !ok {
						date = id >= 14 && id <= 22 || id >= 27 && id <= 36 || id >= 45 && id <= 47 || id >= 50 && id <= 58
					}
					out = append(out, date)
					if len(out) > 1<<16 {
						return errf(ErrTooLarge, "xlsx", "more than %d cell styles", 1<<16)
					}
				}
			}
		case xml.EndElement:
			if t.Name.Local == "cellXfs" {
				inXfs = false
			}
		}
		return nil
	})
	return out, err
}

// isDateFormat reports whether a number format code shows a date or a time: it has a y, d, h
// or s field outside quoted text, escapes and [colour] or [$-locale] sections (elapsed times
// such as [h]:mm are durations, not dates).
func isDateFormat(code string) bool {
	code = strings.ToLower(code)
	if strings.Contains(code, "[h") || strings.Contains(code, "[m") || strings.Contains(code, "[s") {
		return false
	}
	inQuote, inBracket := false, false
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch {
		case inQuote:
			inQuote = c != '"'
		case inBracket:
			inBracket = c != ']'
		case c == '"':
			inQuote = true
		case c == '[':
			inBracket = true
		case c == '\\' || c == '_' || c == '*':
			i++
		case c == ';':
			return false // only the first (positive) section is looked at
		case c == 'y' || c == 'd' || c == 'h' || c == 's':
			return true
		}
	}
	return false
}
