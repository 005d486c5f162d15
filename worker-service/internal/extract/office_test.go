package extract

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/quirehq/quire/shared/doctype"
)

const (
	pmlNS  = `xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"`
	smlNS  = `xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"`
	relsNS = `xmlns="http://schemas.openxmlformats.org/package/2006/relationships"`
	relT   = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
)

func rels(pairs ...string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><Relationships ` + relsNS + `>`)
	for i := 0; i+2 < len(pairs)+1; i += 3 {
		fmt.Fprintf(&b, `<Relationship Id="%s" Type="%s%s" Target="%s"/>`, pairs[i], relT, pairs[i+1], pairs[i+2])
	}
	b.WriteString(`</Relationships>`)
	return []byte(b.String())
}

// shape is a slide shape with a placeholder type ("" for none) and paragraphs.
func shape(ph string, paras ...string) string {
	var b strings.Builder
	b.WriteString(`<p:sp><p:nvSpPr><p:cNvPr id="2" name="s"/><p:cNvSpPr/><p:nvPr>`)
	if ph != "" {
		b.WriteString(`<p:ph type="` + ph + `"/>`)
	}
	b.WriteString(`</p:nvPr></p:nvSpPr><p:txBody>`)
	for _, p := range paras {
		b.WriteString(`<a:p><a:r><a:t>` + p + `</a:t></a:r></a:p>`)
	}
	b.WriteString(`</p:txBody></p:sp>`)
	return b.String()
}

func slideXML(shapes ...string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?><p:sld ` + pmlNS + `><p:cSld><p:spTree>` + strings.Join(shapes, "") + `</p:spTree></p:cSld></p:sld>`)
}

// pptxParts is a two-slide deck whose presentation order (slide2.xml first) differs from
// the part names; slide2.xml has a table and speaker notes.
func pptxParts(extra ...zipPart) []zipPart {
	table := `<p:graphicFrame><a:graphic><a:graphicData><a:tbl>` +
		`<a:tr><a:tc><a:txBody><a:p><a:r><a:t>Region</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>Units</a:t></a:r></a:p></a:txBody></a:tc></a:tr>` +
		`<a:tr><a:tc><a:txBody><a:p><a:r><a:t>North</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>120</a:t></a:r></a:p></a:txBody></a:tc></a:tr>` +
		`</a:tbl></a:graphicData></a:graphic></p:graphicFrame>`
	parts := []zipPart{
		{"[Content_Types].xml", []byte(`<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`)},
		{"_rels/.rels", rels("rId1", "officeDocument", "ppt/presentation.xml")},
		{"ppt/presentation.xml", []byte(`<p:presentation ` + pmlNS + `><p:sldIdLst><p:sldId id="256" r:id="rId7"/><p:sldId id="257" r:id="rId3"/></p:sldIdLst></p:presentation>`)},
		{"ppt/_rels/presentation.xml.rels", rels("rId3", "slide", "slides/slide1.xml", "rId7", "slide", "slides/slide2.xml")},
		{"ppt/slides/slide1.xml", slideXML(shape("title", "Results"), shape("body", "Sales grew in every region."), shape("sldNum", "2"))},
		{"ppt/slides/slide2.xml", slideXML(shape("ctrTitle", "Quarterly review"), shape("subTitle", "Prepared by the finance team"), table)},
		{"ppt/slides/_rels/slide2.xml.rels", rels("rId1", "slideLayout", "../slideLayouts/slideLayout1.xml", "rId2", "notesSlide", "../notesSlides/notesSlide1.xml")},
		{"ppt/notesSlides/notesSlide1.xml", []byte(`<p:notes ` + pmlNS + `><p:cSld><p:spTree>` + shape("sldImg") + shape("body", "Mention the new hires.") + shape("sldNum", "1") + `</p:spTree></p:cSld></p:notes>`)},
		{"docProps/core.xml", []byte(`<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Q3 deck</dc:title></cp:coreProperties>`)},
	}
	return append(parts, extra...)
}

func TestPPTX(t *testing.T) {
	e := newExtractor(t, Options{})
	doc, err := extractBytes(t, e, makeZip(t, pptxParts()...), doctype.PPTX)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Title != "Q3 deck" || doc.Pages != 2 || doc.Type != doctype.PPTX {
		t.Fatalf("title %q, pages %d, type %s", doc.Title, doc.Pages, doc.Type)
	}
	want := []Section{
		{Heading: "Quarterly review", Location: doctype.Location{Slide: 1},
			Text: "Quarterly review\n\nPrepared by the finance team\n\nRegion | Units\n\nNorth | 120\n\nSpeaker notes: Mention the new hires."},
		{Heading: "Results", Location: doctype.Location{Slide: 2}, Text: "Results\n\nSales grew in every region."},
	}
	if len(doc.Sections) != len(want) {
		t.Fatalf("sections = %+v", doc.Sections)
	}
	for i, w := range want {
		if doc.Sections[i] != w {
			t.Errorf("section %d = %+v\nwant %+v", i, doc.Sections[i], w)
		}
	}
}

func sheetXML(rows ...string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?><worksheet ` + smlNS + `><sheetData>` + strings.Join(rows, "") + `</sheetData></worksheet>`)
}

func xlsxParts(sst string, sheets ...[]byte) []zipPart {
	var book, rel strings.Builder
	book.WriteString(`<workbook ` + smlNS + `><sheets>`)
	rel.WriteString(`<Relationships ` + relsNS + `>`)
	parts := []zipPart{{"[Content_Types].xml", []byte(`<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`)}}
	names := []string{"Sales", "Costs", "Third"}
	for i, s := range sheets {
		fmt.Fprintf(&book, `<sheet name="%s" sheetId="%d" r:id="rId%d"/>`, names[i], i+1, i+1)
		fmt.Fprintf(&rel, `<Relationship Id="rId%d" Type="%sworksheet" Target="worksheets/sheet%d.xml"/>`, i+1, relT, i+1)
		parts = append(parts, zipPart{fmt.Sprintf("xl/worksheets/sheet%d.xml", i+1), s})
	}
	book.WriteString(`</sheets></workbook>`)
	fmt.Fprintf(&rel, `<Relationship Id="rId99" Type="%ssharedStrings" Target="/xl/sharedStrings.xml"/></Relationships>`, relT)
	return append(parts,
		zipPart{"xl/workbook.xml", []byte(book.String())},
		zipPart{"xl/_rels/workbook.xml.rels", []byte(rel.String())},
		zipPart{"xl/sharedStrings.xml", []byte(`<sst ` + smlNS + `>` + sst + `</sst>`)},
	)
}

func TestXLSX(t *testing.T) {
	e := newExtractor(t, Options{})
	sst := `<si><t>Region</t></si><si><t>Units</t></si><si><r><t>No</t></r><r><t>rth</t></r><rPh><t>ignored</t></rPh></si><si><t>Paid</t></si>`
	sales := sheetXML(
		`<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>3</v></c></row>`,
		`<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><v>120.10000000000001</v></c><c r="C2" t="b"><v>1</v></c></row>`,
		`<row r="3"/>`,
		`<row r="5"><c r="A5" t="inlineStr"><is><t>South</t></is></c><c r="C5" t="str"><f>X</f><v>no</v></c><c r="E5"><v>7</v></c></row>`,
	)
	costs := sheetXML(`<row r="4"><c r="B4"><v>1</v></c><c r="C4" t="s"><v>0</v></c></row>`)
	doc, err := extractBytes(t, e, makeZip(t, xlsxParts(sst, sales, costs)...), doctype.XLSX)
	if err != nil {
		t.Fatal(err)
	}
	want := []Section{
		{Heading: "Sales", Location: doctype.Location{Sheet: "Sales", RowStart: 2, RowEnd: 2}, Text: "Region: North; Units: 120.1; Paid: TRUE"},
		{Heading: "Sales", Location: doctype.Location{Sheet: "Sales", RowStart: 5, RowEnd: 5}, Text: "Region: South; Paid: no; E: 7"},
		{Heading: "Costs", Location: doctype.Location{Sheet: "Costs", RowStart: 4, RowEnd: 4}, Text: "1 | Region"},
	}
	if len(doc.Sections) != len(want) {
		t.Fatalf("sections = %+v", doc.Sections)
	}
	for i, w := range want {
		if doc.Sections[i] != w {
			t.Errorf("section %d = %+v\nwant %+v", i, doc.Sections[i], w)
		}
	}
}

// A sheet of 100,000 rows streams through: every row comes out, located.
func TestXLSXLargeSheet(t *testing.T) {
	const rows = 100_000
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><worksheet ` + smlNS + `><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c><c r="B1" t="inlineStr"><is><t>value</t></is></c></row>`)
	for i := 2; i <= rows; i++ {
		fmt.Fprintf(&b, `<row r="%d"><c r="A%d"><v>%d</v></c><c r="B%d"><v>%d</v></c></row>`, i, i, i, i, i*2)
	}
	b.WriteString(`</sheetData></worksheet>`)
	e := newExtractor(t, Options{})
	doc, err := extractBytes(t, e, makeZip(t, xlsxParts("", b.Bytes())...), doctype.XLSX)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Sections) != rows-1 {
		t.Fatalf("%d sections, want %d", len(doc.Sections), rows-1)
	}
	last := doc.Sections[len(doc.Sections)-1]
	if last.Text != fmt.Sprintf("id: %d; value: %d", rows, rows*2) || last.Location.RowStart != rows {
		t.Fatalf("last row = %+v", last)
	}
}

func odfZip(t *testing.T, mimetype, content string, extra ...zipPart) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "mimetype", Method: zip.Store})
	w.Write([]byte(mimetype))
	parts := append([]zipPart{
		{"content.xml", []byte(`<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"><office:body>` + content + `</office:body></office:document-content>`)},
		{"meta.xml", []byte(`<office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><office:meta><dc:title>Handbook</dc:title></office:meta></office:document-meta>`)},
	}, extra...)
	for _, p := range parts {
		w, _ := zw.Create(p.name)
		w.Write(p.body)
	}
	zw.Close()
	return b.Bytes()
}

func TestODF(t *testing.T) {
	e := newExtractor(t, Options{})
	t.Run("odt", func(t *testing.T) {
		content := `<office:text><text:sequence-decls><text:sequence-decl text:name="x"/></text:sequence-decls>` +
			`<text:table-of-content><text:index-body><text:p>Intro ..... 1</text:p></text:index-body></text:table-of-content>` +
			`<text:h text:outline-level="1">Intro</text:h><text:p>Hello<text:s text:c="2"/>world<text:note><text:note-citation>1</text:note-citation><text:note-body><text:p>A note.</text:p></text:note-body></text:note>.</text:p>` +
			`<text:list><text:list-item><text:p>first</text:p></text:list-item><text:list-item><text:p>second</text:p></text:list-item></text:list>` +
			`<text:h text:outline-level="2">Numbers</text:h><table:table><table:table-row><table:table-cell><text:p>a</text:p></table:table-cell><table:table-cell><text:p>b</text:p></table:table-cell></table:table-row></table:table>` +
			`<text:tracked-changes><text:changed-region><text:deletion><text:p>deleted</text:p></text:deletion></text:changed-region></text:tracked-changes></office:text>`
		doc, err := extractBytes(t, e, odfZip(t, "application/vnd.oasis.opendocument.text", content), doctype.ODT)
		if err != nil {
			t.Fatal(err)
		}
		want := []Section{{Heading: "Intro", Text: "Intro\n\nHello  world A note..\n\n- first\n\n- second"}, {Heading: "Intro > Numbers", Text: "Numbers\n\na | b"}}
		if doc.Title != "Handbook" || len(doc.Sections) != 2 || doc.Sections[0] != want[0] || doc.Sections[1] != want[1] {
			t.Fatalf("title %q sections %+v\nwant %+v", doc.Title, doc.Sections, want)
		}
	})
	t.Run("ods", func(t *testing.T) {
		content := `<office:spreadsheet><table:table table:name="Staff">` +
			`<table:table-row><table:table-cell office:value-type="string"><text:p>Name</text:p></table:table-cell><table:table-cell><text:p>Age</text:p></table:table-cell><table:table-cell table:number-columns-repeated="16380"/></table:table-row>` +
			`<table:table-row table:number-rows-repeated="3"><table:table-cell table:number-columns-repeated="1024"/></table:table-row>` +
			`<table:table-row><table:table-cell><text:p>Ann</text:p></table:table-cell><table:table-cell office:value-type="float" office:value="31"><text:p>31</text:p></table:table-cell></table:table-row>` +
			`<table:table-row table:number-rows-repeated="1048570"><table:table-cell table:number-columns-repeated="1024"/></table:table-row>` +
			`</table:table></office:spreadsheet>`
		doc, err := extractBytes(t, e, odfZip(t, "application/vnd.oasis.opendocument.spreadsheet", content), doctype.ODS)
		if err != nil {
			t.Fatal(err)
		}
		want := Section{Heading: "Staff", Location: doctype.Location{Sheet: "Staff", RowStart: 5, RowEnd: 5}, Text: "Name: Ann; Age: 31"}
		if len(doc.Sections) != 1 || doc.Sections[0] != want {
			t.Fatalf("sections %+v, want %+v", doc.Sections, want)
		}
	})
	t.Run("odp", func(t *testing.T) {
		frame := func(class, text string) string {
			return `<draw:frame presentation:class="` + class + `"><draw:text-box><text:p>` + text + `</text:p></draw:text-box></draw:frame>`
		}
		content := `<office:presentation><draw:page draw:name="p1">` + frame("title", "Welcome") + frame("outline", "Agenda items") +
			`<presentation:notes><draw:page-thumbnail/>` + frame("notes", "Say hello.") + `</presentation:notes></draw:page>` +
			`<draw:page draw:name="p2">` + frame("outline", "No title here") + frame("page-number", "2") + `</draw:page></office:presentation>`
		doc, err := extractBytes(t, e, odfZip(t, "application/vnd.oasis.opendocument.presentation", content), doctype.ODP)
		if err != nil {
			t.Fatal(err)
		}
		want := []Section{
			{Heading: "Welcome", Location: doctype.Location{Slide: 1}, Text: "Welcome\n\nAgenda items\n\nSpeaker notes: Say hello."},
			{Location: doctype.Location{Slide: 2}, Text: "No title here"},
		}
		if len(doc.Sections) != 2 || doc.Sections[0] != want[0] || doc.Sections[1] != want[1] {
			t.Fatalf("sections %+v\nwant %+v", doc.Sections, want)
		}
	})
}

func epubParts(chapters ...string) []zipPart {
	var manifest, spine strings.Builder
	parts := []zipPart{{"META-INF/container.xml", []byte(`<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>`)}}
	// The spine reads the chapters in reverse order of their file names.
	for i := len(chapters) - 1; i >= 0; i-- {
		fmt.Fprintf(&manifest, `<item id="c%d" href="text/ch%%20%d.xhtml" media-type="application/xhtml+xml"/>`, i, i)
		fmt.Fprintf(&spine, `<itemref idref="c%d"/>`, i)
		parts = append(parts, zipPart{fmt.Sprintf("OEBPS/text/ch %d.xhtml", i), []byte(`<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title/></head><body>` + chapters[i] + `</body></html>`)})
	}
	parts = append(parts, zipPart{"OEBPS/content.opf", []byte(`<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>A Short Book</dc:title></metadata><manifest>` + manifest.String() + `</manifest><spine>` + spine.String() + `</spine></package>`)})
	return parts
}

func TestEPUB(t *testing.T) {
	e := newExtractor(t, Options{})
	data := makeZip(t, epubParts(`<h1>Two</h1><p>The end.</p>`, `<h1>One</h1><p>It began<a id="x"/> here.</p>`)...)
	doc, err := extractBytes(t, e, data, doctype.EPUB)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Title != "A Short Book" || len(doc.Sections) != 2 {
		t.Fatalf("title %q sections %+v", doc.Title, doc.Sections)
	}
	for i, w := range []struct{ heading, text string }{{"One", "It began here."}, {"Two", "The end."}} {
		s := doc.Sections[i]
		if s.Heading != w.heading || !strings.Contains(s.Text, w.text) || s.Location != (doctype.Location{Chapter: i + 1}) {
			t.Errorf("section %d = %+v, want heading %q with %q in chapter %d", i, s, w.heading, w.text, i+1)
		}
	}
}

// bomb is a part of n zero bytes, which deflate compresses about 1000:1.
func bomb(name string, n int) zipPart { return zipPart{name, make([]byte, n)} }

func deepXML(open, close string, n int) []byte {
	return []byte(strings.Repeat(open, n) + strings.Repeat(close, n))
}

func TestOfficeHostile(t *testing.T) {
	e := newExtractor(t, Options{})
	manyStrings := func() []byte {
		var b bytes.Buffer
		b.WriteString(`<sst ` + smlNS + `>`)
		for range maxSharedStrings + 1 {
			b.WriteString(`<si><t>x</t></si>`)
		}
		b.WriteString(`</sst>`)
		return b.Bytes()
	}
	withPart := func(parts []zipPart, p zipPart) []zipPart {
		for i := range parts {
			if parts[i].name == p.name {
				parts[i] = p
				return parts
			}
		}
		return append(parts, p)
	}
	tests := []struct {
		name    string
		typ     doctype.Type
		data    []byte
		wantErr error
	}{
		{"pptx zip bomb", doctype.PPTX, makeZip(t, withPart(pptxParts(), bomb("ppt/slides/slide1.xml", 32<<20))...), ErrTooLarge},
		{"pptx deep xml", doctype.PPTX, makeZip(t, withPart(pptxParts(), zipPart{"ppt/slides/slide1.xml", deepXML("<p:grpSp "+pmlNS+">", "</p:grpSp>", 100_000)})...), ErrTooLarge},
		{"pptx without presentation", doctype.PPTX, makeZip(t, zipPart{"[Content_Types].xml", []byte("<Types/>")}), ErrCorrupt},
		{"pptx dtd", doctype.PPTX, makeZip(t, withPart(pptxParts(), zipPart{"ppt/presentation.xml", []byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><p:presentation ` + pmlNS + `/>`)})...), ErrCorrupt},
		{"xlsx zip bomb", doctype.XLSX, makeZip(t, withPart(xlsxParts("", sheetXML()), bomb("xl/worksheets/sheet1.xml", 32<<20))...), ErrTooLarge},
		{"xlsx huge shared strings", doctype.XLSX, makeZip(t, withPart(xlsxParts("", sheetXML()), zipPart{"xl/sharedStrings.xml", manyStrings()})...), ErrTooLarge},
		{"xlsx deep xml", doctype.XLSX, makeZip(t, xlsxParts("", deepXML("<x>", "</x>", 5000))...), ErrTooLarge},
		{"xlsx far column", doctype.XLSX, makeZip(t, xlsxParts("", sheetXML(`<row r="1"><c r="ZZZZZ1"><v>1</v></c></row>`))...), ErrTooLarge},
		{"epub zip bomb", doctype.EPUB, makeZip(t, withPart(epubParts("<p>x</p>"), bomb("OEBPS/text/ch 0.xhtml", 32<<20))...), ErrTooLarge},
		{"epub without container", doctype.EPUB, makeZip(t, zipPart{"mimetype", []byte("application/epub+zip")}), ErrCorrupt},
		{"odt deep xml", doctype.ODT, odfZip(t, "application/vnd.oasis.opendocument.text", string(deepXML("<text:span>", "</text:span>", 5000))), ErrTooLarge},
		{"ods repeated cells with text", doctype.ODS, odfZip(t, "application/vnd.oasis.opendocument.spreadsheet", `<office:spreadsheet><table:table table:name="s"><table:table-row><table:table-cell table:number-columns-repeated="1000000"><text:p>x</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet>`), ErrTooLarge},
		{"not a zip", doctype.PPTX, []byte("PK\x03\x04 not really"), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := extractBytes(t, e, tt.data, tt.typ)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestXLSXDates(t *testing.T) {
	styles := `<styleSheet ` + smlNS + `><numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy\-mm\-dd hh:mm"/><numFmt numFmtId="165" formatCode="&quot;days&quot; 0.00"/></numFmts>` +
		`<cellXfs count="5"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="46"/></cellXfs></styleSheet>`
	sheet := sheetXML(`<row r="1"><c r="A1" s="1"><v>45000</v></c><c r="B1" s="2"><v>45000.5</v></c><c r="C1" s="3"><v>2.5</v></c><c r="D1" s="4"><v>0.75</v></c><c r="E1" s="9"><v>3</v></c></row>`)
	for _, tt := range []struct {
		date1904 bool
		want     string
	}{
		{false, "2023-03-15 | 2023-03-15 12:00 | 2.5 | 18:00:00 | 3"},
		{true, "2027-03-16 | 2027-03-16 12:00 | 2.5 | 1904-01-01 18:00 | 3"},
	} {
		parts := xlsxParts("", sheet)
		for i := range parts {
			switch parts[i].name {
			case "xl/_rels/workbook.xml.rels":
				parts[i].body = bytes.Replace(parts[i].body, []byte("</Relationships>"), []byte(`<Relationship Id="rId98" Type="`+relT+`styles" Target="styles.xml"/></Relationships>`), 1)
			case "xl/workbook.xml":
				if tt.date1904 {
					parts[i].body = bytes.Replace(parts[i].body, []byte("<sheets>"), []byte(`<workbookPr date1904="1"/><sheets>`), 1)
				}
			}
		}
		parts = append(parts, zipPart{"xl/styles.xml", []byte(styles)})
		doc, err := extractBytes(t, newExtractor(t, Options{}), makeZip(t, parts...), doctype.XLSX)
		if err != nil {
			t.Fatal(err)
		}
		if len(doc.Sections) != 1 || doc.Sections[0].Text != tt.want {
			t.Fatalf("1904 %v: sections %+v, want %q", tt.date1904, doc.Sections, tt.want)
		}
	}
}
