package extract

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/quirehq/quire/shared/doctype"
)

// benchPages is a 50-page text PDF of about 40 lines a page.
func benchPDF() []byte {
	pages := make([][]string, 50)
	for i := range pages {
		for j := range 40 {
			pages[i] = append(pages[i], fmt.Sprintf("Line %d of page %d: %s", j, i+1, sentence1))
		}
	}
	return makePDF(pdfSpec{pages: pages, flate: true})
}

func benchDOCX(b *testing.B) []byte {
	var body strings.Builder
	for i := range 2000 {
		body.WriteString(para(fmt.Sprintf("Paragraph %d. %s %s", i, sentence1, sentence2)))
		if i%100 == 0 {
			body.WriteString(styled("Heading1", fmt.Sprintf("Chapter %d", i/100)))
		}
	}
	return makeZip(b, docxParts(body.String())...)
}

func benchHTML() []byte {
	var page strings.Builder
	page.WriteString("<html><head><title>Bench</title></head><body><nav><a href='/'>Home</a></nav><main>")
	for i := range 400 {
		if i%40 == 0 {
			fmt.Fprintf(&page, "<h2>Section %d</h2>", i/40)
		}
		fmt.Fprintf(&page, "<p>Paragraph %d with <a href='#%d'>a link</a>. %s %s</p>", i, i, sentence1, sentence2)
	}
	page.WriteString("</main><footer>footer</footer></body></html>")
	return []byte(page.String())
}

func BenchmarkExtract(b *testing.B) {
	text := []byte(strings.Repeat(sentence1+" "+sentence2+"\n\n", 20000))
	cases := []struct {
		name string
		typ  doctype.Type
		data []byte
		e    *Extractor
	}{
		{"docx", doctype.DOCX, benchDOCX(b), extractor(b, EnginePDFium)},
		{"html", doctype.HTML, benchHTML(), extractor(b, EnginePDFium)},
		{"text", doctype.Text, text, extractor(b, EnginePDFium)},
		{"markdown", doctype.Markdown, text, extractor(b, EnginePDFium)},
	}
	for _, engine := range pdfEngines() {
		cases = append(cases, struct {
			name string
			typ  doctype.Type
			data []byte
			e    *Extractor
		}{"pdf-" + engine, doctype.PDF, benchPDF(), extractor(b, engine)})
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// Warm up outside the timed loop (PDFium compiles its module on first use).
			if _, err := c.e.Extract(b.Context(), bytes.NewReader(c.data), int64(len(c.data)), c.typ, nil); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(c.data)))
			pages, text := 0, 0
			for b.Loop() {
				doc, err := c.e.Extract(b.Context(), bytes.NewReader(c.data), int64(len(c.data)), c.typ, nil)
				if err != nil {
					b.Fatal(err)
				}
				pages += doc.Pages
				text += doc.Len()
			}
			// MB/s is of the input (compressed for DOCX and these PDFs); text-MB/s of the output.
			b.ReportMetric(float64(text)/1e6/b.Elapsed().Seconds(), "text-MB/s")
			if pages > 0 {
				b.ReportMetric(float64(pages)/b.Elapsed().Seconds(), "pages/s")
			}
		})
	}
}
