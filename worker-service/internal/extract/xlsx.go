package extract

import (
	"context"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
)

// xlsx reads an Excel workbook sheet by sheet in workbook order, each row as one section (see
// [sheetWriter] for how rows are written and why) located by sheet name and row number.
// Sheets stream token by token from the zip entry, so a sheet of any number of rows is never
// held whole; the shared-strings table is held in memory under a cap on its entries
// (maxSharedStrings) and its bytes (MaxZipPartBytes). Formulas give their cached values.
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
	var sheets []sheet
	err = pk.scan(book, 16<<20, func(_ *xml.Decoder, t xml.Token) error {
		se, ok := t.(xml.StartElement)
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
	var sst []string
	for id, typ := range types {
		if strings.HasSuffix(typ, "/sharedStrings") && pk.files[targets[id]] != nil {
			if sst, err = pk.sharedStrings(ctx, targets[id]); err != nil {
				return nil, err
			}
		}
	}
	doc := &Document{Title: pk.title(), Pages: len(sheets)}
	w := newSheetWriter(lim)
	for _, sh := range sheets {
		w.start(sh.name)
		if err := pk.sheetRows(ctx, sh.part, sst, w); err != nil {
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
func (pk *zipPackage) sheetRows(ctx context.Context, part string, sst []string, w *sheetWriter) error {
	var (
		tick    ticker
		rowNum  int
		cells   []string
		numeric []bool
		col     int    // column of the current cell
		typ     string // t attribute of the current cell
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
				text, isNum := cellValue(typ, val.String(), sst)
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

// cellValue renders a cell's stored value by its type (shared string, inline string, boolean,
// error, number or formula string).
func cellValue(typ, v string, sst []string) (string, bool) {
	switch typ {
	case "s":
		if i, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && i >= 0 && i < len(sst) {
			return sst[i], false
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
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		// Stored doubles carry binary noise (0.30000000000000004): 15 significant digits,
		// as Excel shows them.
		if g, err := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 15, 64), 64); err == nil {
			return strconv.FormatFloat(g, 'f', -1, 64), true
		}
	}
	return v, v != ""
}
