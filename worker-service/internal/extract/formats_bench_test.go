package extract

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/quirehq/quire/shared/doctype"
)

const benchRows = 100_000

// BenchmarkXLSXRows extracts one sheet of 100,000 rows of four cells (shared and inline
// strings, numbers), the case that must stream.
func BenchmarkXLSXRows(b *testing.B) {
	var sheet bytes.Buffer
	sheet.WriteString(`<?xml version="1.0" encoding="UTF-8"?><worksheet ` + smlNS + `><sheetData><row r="1"><c t="s"><v>0</v></c><c t="s"><v>1</v></c><c t="s"><v>2</v></c><c t="s"><v>3</v></c></row>`)
	for i := 2; i <= benchRows; i++ {
		fmt.Fprintf(&sheet, `<row r="%d"><c r="A%d"><v>%d</v></c><c r="B%d" t="s"><v>%d</v></c><c r="C%d"><v>%d.25</v></c><c r="D%d" t="inlineStr"><is><t>order %d shipped</t></is></c></row>`, i, i, i, i, 4+i%4, i, i%500, i, i)
	}
	sheet.WriteString(`</sheetData></worksheet>`)
	sst := `<si><t>order_id</t></si><si><t>region</t></si><si><t>units</t></si><si><t>note</t></si><si><t>North</t></si><si><t>South</t></si><si><t>East</t></si><si><t>West</t></si>`
	data := makeZip(b, xlsxParts(sst, sheet.Bytes())...)
	benchFormat(b, data, doctype.XLSX, benchRows-1)
}

// BenchmarkCSVRows extracts a CSV of 100,000 rows of four fields.
func BenchmarkCSVRows(b *testing.B) {
	var csv bytes.Buffer
	csv.WriteString("order_id,region,units,note\n")
	for i := 2; i <= benchRows; i++ {
		fmt.Fprintf(&csv, "%d,North,%d,\"order %d, shipped\"\n", i, i%500, i)
	}
	benchFormat(b, csv.Bytes(), doctype.CSV, benchRows-1)
}

func benchFormat(b *testing.B, data []byte, t doctype.Type, sections int) {
	e := newExtractor(b, Options{})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		doc, err := e.Extract(b.Context(), bytes.NewReader(data), int64(len(data)), t, nil)
		if err != nil || len(doc.Sections) != sections {
			b.Fatalf("%v, %d sections", err, len(doc.Sections))
		}
	}
	b.ReportMetric(float64(sections)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
