package extract

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/quirehq/quire/shared/doctype"
	"github.com/quirehq/quire/worker-service/internal/quality"
)

// The same plain text saved by LibreOffice in each format (testdata/office, see its README)
// is sniffed as that format and extracts with token-F1 >= 0.95 against the text.
func TestLibreOfficeFixturesMatchTheirText(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "office", "plain.txt"))
	if err != nil {
		t.Fatal(err)
	}
	e := newExtractor(t, Options{})
	for _, tt := range []struct {
		file string
		typ  doctype.Type
	}{
		{"plain.docx", doctype.DOCX},
		{"plain.pptx", doctype.PPTX},
		{"plain.odt", doctype.ODT},
		{"plain.odp", doctype.ODP},
		{"plain.rtf", doctype.RTF},
		{"plain.epub", doctype.EPUB},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "office", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := doctype.Sniff(data, tt.file); err != nil || got != tt.typ {
				t.Fatalf("Sniff = %q, %v; want %q", got, err, tt.typ)
			}
			doc, err := extractBytes(t, e, data, tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			f1 := quality.TokenF1(allText(doc), string(want))
			t.Logf("%s: token-F1 %.3f", tt.file, f1)
			if f1 < 0.95 {
				t.Fatalf("token-F1 %.3f < 0.95; extracted:\n%s", f1, allText(doc))
			}
			first, last := doc.Sections[0], doc.Sections[len(doc.Sections)-1]
			switch tt.typ {
			case doctype.PPTX, doctype.ODP:
				// Slide 1 has the title placeholder; the four paragraphs after it a slide each.
				if first.Heading != "Harbour Lights: notes on a small coastal museum" || first.Location.Slide != 1 || last.Location.Slide != 5 {
					t.Fatalf("slides: first %+v, last %+v", first, last)
				}
			case doctype.EPUB:
				if first.Location.Chapter != 1 {
					t.Fatalf("chapter of %+v, want 1", first)
				}
			}
		})
	}
}
