package extract

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/quirehq/quire/shared/doctype"
)

const wordNS = `xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"`

type zipPart struct {
	name string
	body []byte
}

// makeZip writes parts (deflated) into a zip archive.
func makeZip(t testing.TB, parts ...zipPart) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, p := range parts {
		w, err := zw.Create(p.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(p.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func docxParts(body string, extra ...zipPart) []zipPart {
	parts := []zipPart{
		{"[Content_Types].xml", []byte(`<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>`)},
		{"_rels/.rels", []byte(`<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`)},
		{"word/document.xml", []byte(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document ` + wordNS + `><w:body>` + body + `</w:body></w:document>`)},
	}
	return append(parts, extra...)
}

func para(text string) string {
	return `<w:p><w:r><w:t xml:space="preserve">` + text + `</w:t></w:r></w:p>`
}

func styled(style, text string) string {
	return `<w:p><w:pPr><w:pStyle w:val="` + style + `"/></w:pPr><w:r><w:t>` + text + `</w:t></w:r></w:p>`
}

func TestDOCX(t *testing.T) {
	body := styled("Title", "Quarterly Report") +
		para("Opening paragraph with "+`</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>bold</w:t></w:r><w:r><w:t xml:space="preserve"> words.`) +
		styled("Heading1", "Results") +
		`<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>First bullet item</w:t></w:r></w:p>` +
		`<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Region</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Revenue</w:t></w:r></w:p></w:tc></w:tr>` +
		`<w:tr><w:tc><w:p><w:r><w:t>North</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>42</w:t></w:r></w:p></w:tc></w:tr></w:tbl>` +
		styled("Heading2", "Details") +
		para(`Kept<w:delText>deleted words</w:delText> text`) +
		`<w:p><w:r><w:instrText>PAGE \* MERGEFORMAT</w:instrText></w:r><w:r><w:t>Field result</w:t></w:r></w:p>` +
		`<w:p><mc:AlternateContent><mc:Choice Requires="wps"><w:r><w:t>Text box once</w:t></w:r></mc:Choice><mc:Fallback><w:r><w:t>Text box once</w:t></w:r></mc:Fallback></mc:AlternateContent></w:p>`
	data := makeZip(t, docxParts(body,
		zipPart{"word/footnotes.xml", []byte(`<w:footnotes ` + wordNS + `><w:footnote w:id="1"><w:p><w:r><w:t>A footnote about sources.</w:t></w:r></w:p></w:footnote></w:footnotes>`)},
		zipPart{"word/header1.xml", []byte(`<w:hdr ` + wordNS + `>` + para("Confidential header") + `</w:hdr>`)},
		zipPart{"word/footer1.xml", []byte(`<w:ftr ` + wordNS + `>` + para("Page footer text") + `</w:ftr>`)},
		zipPart{"docProps/core.xml", []byte(`<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Q3 Report</dc:title></cp:coreProperties>`)},
	)...)
	doc, err := extractBytes(t, extractor(t, EnginePDFium), data, doctype.DOCX)
	if err != nil {
		t.Fatal(err)
	}
	text := allText(doc)
	for _, want := range []string{"Quarterly Report", "Opening paragraph with bold words.", "- First bullet item",
		"Region | Revenue", "North | 42", "Kept text", "Field result", "A footnote about sources.", "Confidential header", "Page footer text"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	for _, not := range []string{"deleted words", "MERGEFORMAT"} {
		if strings.Contains(text, not) {
			t.Errorf("text has %q:\n%s", not, text)
		}
	}
	if n := strings.Count(text, "Text box once"); n != 1 {
		t.Errorf("alternate content appears %d times, want 1", n)
	}
	if doc.Title != "Q3 Report" {
		t.Errorf("Title = %q", doc.Title)
	}
	headings := map[string]string{}
	for _, s := range doc.Sections {
		for _, k := range []string{"First bullet item", "Kept text", "Opening paragraph"} {
			if strings.Contains(s.Text, k) {
				headings[k] = s.Heading
			}
		}
	}
	want := map[string]string{"Opening paragraph": "Quarterly Report", "First bullet item": "Results", "Kept text": "Results > Details"}
	for k, h := range want {
		if headings[k] != h {
			t.Errorf("heading of %q = %q, want %q", k, headings[k], h)
		}
	}
}

// lyingZip stores body deflated under a header that declares declared bytes uncompressed.
func lyingZip(t *testing.T, body []byte, declared uint64) []byte {
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestSpeed)
	fw.Write(body)
	fw.Close()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, p := range docxParts("")[:2] {
		w, _ := zw.Create(p.name)
		w.Write(p.body)
	}
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "word/document.xml", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(body),
		CompressedSize64: uint64(comp.Len()), UncompressedSize64: declared})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(comp.Bytes())
	zw.Close()
	return b.Bytes()
}

func TestDOCXHostile(t *testing.T) {
	bigRun := `<w:p><w:r><w:t>` + strings.Repeat("A", 8<<20) + `</w:t></w:r></w:p>`
	laughs := `<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><w:document ` + wordNS + `><w:body>` + para("&lol3;") + `</w:body></w:document>`
	xxe := `<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><w:document ` + wordNS + `><w:body>` + para("&xxe;") + `</w:body></w:document>`
	undeclared := `<w:document ` + wordNS + `><w:body>` + para("&lol9;") + `</w:body></w:document>`
	deep := `<w:document ` + wordNS + `><w:body>` + strings.Repeat("<w:sdt><w:sdtContent>", 100_000) + para("deep canary text") + strings.Repeat("</w:sdtContent></w:sdt>", 100_000) + `</w:body></w:document>`
	valid := makeZip(t, docxParts(para("Hello world, this is a document."))...)
	var manyEntries []zipPart
	for i := range 60 {
		manyEntries = append(manyEntries, zipPart{fmt.Sprintf("word/media/img%d.xml", i), []byte("x")})
	}
	tests := []struct {
		name    string
		opts    Options
		data    []byte
		wantErr error // nil: a permanent error or bounded text
	}{
		{name: "zip bomb ratio", data: makeZip(t, docxParts(bigRun)...), wantErr: ErrTooLarge},
		{name: "part over size cap", opts: Options{MaxZipPartBytes: 1 << 20, MaxZipRatio: 1 << 30}, data: makeZip(t, docxParts(bigRun)...), wantErr: ErrTooLarge},
		{name: "total over cap", opts: Options{MaxZipTotalBytes: 4 << 20, MaxZipRatio: 1 << 30}, data: makeZip(t, docxParts(bigRun)...), wantErr: ErrTooLarge},
		{name: "header lies about size", data: lyingZip(t, []byte(`<w:document `+wordNS+`><w:body>`+bigRun+`</w:body></w:document>`), 1000), wantErr: ErrCorrupt},
		{name: "too many entries", opts: Options{MaxZipEntries: 50}, data: makeZip(t, docxParts(para("x"), manyEntries...)...), wantErr: ErrTooLarge},
		{name: "billion laughs", data: makeZip(t, zipPart{"word/document.xml", []byte(laughs)}), wantErr: ErrCorrupt},
		{name: "external entity", data: makeZip(t, zipPart{"word/document.xml", []byte(xxe)}), wantErr: ErrCorrupt},
		{name: "undeclared entity", data: makeZip(t, zipPart{"word/document.xml", []byte(undeclared)}), wantErr: ErrCorrupt},
		{name: "deep nesting", data: makeZip(t, zipPart{"word/document.xml", []byte(deep)})},
		{name: "legacy doc", data: []byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1" + strings.Repeat("\x00", 512)), wantErr: ErrUnsupported},
		{name: "not a zip", data: []byte(strings.Repeat("GNU GENERAL PUBLIC LICENSE\n", 100)), wantErr: ErrCorrupt},
		{name: "truncated zip", data: valid[:len(valid)/2], wantErr: ErrCorrupt},
		{name: "missing document.xml", data: makeZip(t, docxParts("")[:2]...), wantErr: ErrCorrupt},
		{name: "text over cap", opts: Options{MaxTextBytes: 10}, data: valid, wantErr: ErrTooLarge},
		{name: "no text", data: makeZip(t, docxParts("<w:p/>")...), wantErr: ErrEmpty},
		{name: "malformed xml", data: makeZip(t, zipPart{"word/document.xml", []byte("<w:document><w:body><w:p>")}), wantErr: ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := extractor(t, EnginePDFium)
			if tt.opts != (Options{}) {
				e = newExtractor(t, tt.opts)
			}
			doc, err := extractBytes(t, e, tt.data, doctype.DOCX)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil && !permanent(err) {
				t.Fatalf("err = %v, want a permanent error", err)
			}
			if err == nil && !strings.Contains(allText(doc), "canary") {
				t.Fatalf("text = %.100q", allText(doc))
			}
		})
	}
}
