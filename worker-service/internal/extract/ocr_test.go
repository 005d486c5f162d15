package extract

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/quirehq/quire/shared/doctype"
)

// ocrInstall is the command that installs what the OCR tests need.
const ocrInstall = "apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng poppler-utils"

// needOCR fails the test under CI when tesseract or pdftoppm is missing (tools/test-tools.sh
// installs them), and skips it elsewhere.
func needOCR(t testing.TB) {
	t.Helper()
	if err := OCRAvailable(Options{}); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("OCR unavailable: %v; install with: %s", err, ocrInstall)
		}
		t.Skipf("OCR unavailable (%v); install with: %s", err, ocrInstall)
	}
}

func ocrExtractor(t testing.TB, opts Options) *Extractor {
	t.Helper()
	needOCR(t)
	opts.OCREngine = OCRTesseract
	return newExtractor(t, opts)
}

// pdftoppm renders page n of a PDF with the test machine's pdftoppm (format "png", "jpeg"
// or "tiff"), grey, at dpi. It writes a file: libtiff cannot write a TIFF to a pipe.
func pdftoppm(t testing.TB, pdf []byte, n, dpi int, format string) []byte {
	t.Helper()
	if _, err := exec.LookPath("pdftoppm"); err != nil {
		t.Fatalf("pdftoppm: %v; install with: %s", err, ocrInstall)
	}
	page := fmt.Sprint(n)
	root := filepath.Join(t.TempDir(), "page")
	cmd := exec.CommandContext(t.Context(), "pdftoppm", "-f", page, "-l", page, "-r", fmt.Sprint(dpi), "-gray", "-"+format, "-singlefile", "-", root)
	cmd.Stdin = bytes.NewReader(pdf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v: %s", err, out)
	}
	ext := map[string]string{"png": ".png", "jpeg": ".jpg", "tiff": ".tif"}[format]
	img, err := os.ReadFile(root + ext)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pdftoppmGray renders page n of a PDF as an 8-bit grey PGM.
func pdftoppmGray(t testing.TB, pdf []byte, n, dpi int) []byte {
	t.Helper()
	page := fmt.Sprint(n)
	cmd := exec.CommandContext(t.Context(), "pdftoppm", "-f", page, "-l", page, "-r", fmt.Sprint(dpi), "-gray", "-")
	cmd.Stdin = bytes.NewReader(pdf)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pdftoppm: %v", err)
	}
	return out
}

type pgm struct {
	w, h int
	pix  []byte
}

func parsePGM(t testing.TB, data []byte) pgm {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(data))
	w, h, hdr, err := readPGMHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	return pgm{w, h, data[len(hdr) : len(hdr)+w*h]}
}

// grayTIFF writes uncompressed 8-bit grey pages as one little-endian multi-page TIFF.
func grayTIFF(pages []pgm) []byte {
	b := []byte("II*\x00\x00\x00\x00\x00")
	link := 4 // where the offset of the next directory goes
	for _, p := range pages {
		data := len(b)
		b = append(b, p.pix...)
		if len(b)%2 == 1 {
			b = append(b, 0)
		}
		binary.LittleEndian.PutUint32(b[link:], uint32(len(b)))
		tags := [][2]uint32{{256, uint32(p.w)}, {257, uint32(p.h)}, {258, 8}, {259, 1}, {262, 1},
			{273, uint32(data)}, {277, 1}, {278, uint32(p.h)}, {279, uint32(len(p.pix))}}
		b = binary.LittleEndian.AppendUint16(b, uint16(len(tags)))
		for _, tag := range tags {
			b = binary.LittleEndian.AppendUint16(b, uint16(tag[0]))
			b = binary.LittleEndian.AppendUint16(b, 4) // LONG
			b = binary.LittleEndian.AppendUint32(b, 1)
			b = binary.LittleEndian.AppendUint32(b, tag[1])
		}
		link = len(b)
		b = binary.LittleEndian.AppendUint32(b, 0)
	}
	return b
}

// ocrProse is varied English text, a line per PDF text line (Helvetica 12 pt fits about 75
// characters in the page's width).
var ocrProse = []string{
	"Quarterly revenue grew by 14 percent, driven by strong demand in Europe.",
	"The committee approved the budget after a long debate on Thursday.",
	"Please return the signed contract before the end of the month.",
	"Water boils at one hundred degrees Celsius at sea level pressure.",
	"Our warehouse in Rotterdam ships orders within two business days.",
	"The patient reported mild headaches and was advised to rest.",
	"Invoice number 4471 remains unpaid; a reminder was sent today.",
	"Migrating birds navigate by the stars, the sun and magnetic fields.",
	"The library extends its opening hours during the examination period.",
	"Engineers replaced the damaged bearings and tested the turbine again.",
	"A gentle breeze carried the scent of pine across the quiet valley.",
	"Shareholders will vote on the proposed merger at the annual meeting.",
	"The recipe calls for two cups of flour, three eggs and some butter.",
	"Heavy rainfall caused delays on the northern railway line this week.",
	"Researchers published their findings in a peer reviewed journal.",
	"The museum acquired a rare collection of medieval manuscripts.",
}

// proseLines returns n lines of ocrProse starting at line from, wrapping around.
func proseLines(from, n int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = ocrProse[(from+i)%len(ocrProse)]
	}
	return lines
}

// tokens splits text into lower-case words and numbers.
func tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// tokenF1 is the F1 score of the multiset of got's tokens against want's.
func tokenF1(got, want string) float64 {
	g, w := tokens(got), tokens(want)
	if len(g) == 0 || len(w) == 0 {
		return 0
	}
	counts := map[string]int{}
	for _, tok := range w {
		counts[tok]++
	}
	match := 0
	for _, tok := range g {
		if counts[tok] > 0 {
			counts[tok]--
			match++
		}
	}
	p, r := float64(match)/float64(len(g)), float64(match)/float64(len(w))
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

func TestTokenF1(t *testing.T) {
	for _, c := range []struct {
		got, want string
		f1        float64
	}{
		{"the cat sat", "The cat, sat.", 1},
		{"the cat", "the cat sat on", 2 * 1 * 0.5 / 1.5},
		{"dog", "cat", 0},
		{"", "cat", 0},
	} {
		if got := tokenF1(c.got, c.want); got < c.f1-1e-9 || got > c.f1+1e-9 {
			t.Errorf("tokenF1(%q, %q) = %v, want %v", c.got, c.want, got, c.f1)
		}
	}
}

// TestOCRQuality renders the pages of PDFs that have a text layer at 300 dpi, recognises
// them, and scores the recognised text by token-F1 against the text layer.
func TestOCRQuality(t *testing.T) {
	if testing.Short() {
		t.Skip("recognises many pages: left out of -short")
	}
	e := ocrExtractor(t, Options{})
	var pages [][]string
	for i := range 6 {
		pages = append(pages, proseLines(i*5, 20+i*4))
	}
	pdf := makePDF(pdfSpec{pages: pages, flate: true})
	layer, err := extractBytes(t, extractor(t, EnginePDFium), pdf, doctype.PDF)
	if err != nil {
		t.Fatal(err)
	}
	if len(layer.Sections) != len(pages) {
		t.Fatalf("text layer has %d sections, want %d", len(layer.Sections), len(pages))
	}
	sum := 0.0
	for i, s := range layer.Sections {
		got, err := e.ocr.ocrPage(t.Context(), pdf, s.Page, [2]float64{612, 792})
		if err != nil {
			t.Fatalf("page %d: %v", s.Page, err)
		}
		f1 := tokenF1(got, s.Text)
		t.Logf("page %d: token-F1 %.3f (%d tokens)", i+1, f1, len(tokens(s.Text)))
		sum += f1
	}
	mean := sum / float64(len(layer.Sections))
	t.Logf("mean token-F1 %.3f over %d pages at %d dpi", mean, len(layer.Sections), e.opts.OCRDPI)
	if mean < 0.90 {
		t.Fatalf("mean token-F1 %.3f, want >= 0.90", mean)
	}
}

// scanSpec describes the PDF of pages where each page i (0-based) in scanned is a 300-dpi
// JPEG render of its text, with no text layer.
func scanSpec(t testing.TB, pages [][]string, scanned ...int) pdfSpec {
	t.Helper()
	text := makePDF(pdfSpec{pages: pages})
	spec := pdfSpec{pages: make([][]string, len(pages)), scans: make([][]byte, len(pages))}
	copy(spec.pages, pages)
	for _, i := range scanned {
		spec.pages[i] = nil
		spec.scans[i] = pdftoppm(t, text, i+1, 300, "jpeg")
	}
	return spec
}

func TestOCRScannedPDF(t *testing.T) {
	if testing.Short() {
		t.Skip("recognises many pages: left out of -short")
	}
	pages := [][]string{proseLines(0, 12), proseLines(3, 12), proseLines(7, 12)}
	scanned := makePDF(scanSpec(t, pages, 0, 1, 2))
	mixed := makePDF(scanSpec(t, pages, 1))

	t.Run("ocr off", func(t *testing.T) {
		_, err := extractBytes(t, extractor(t, EnginePDFium), scanned, doctype.PDF)
		if !errors.Is(err, ErrNeedsOCR) || !strings.Contains(err.Error(), "OCR_ENGINE=tesseract") {
			t.Fatalf("err = %v, want ErrNeedsOCR saying how to enable OCR", err)
		}
	})

	// A Timeout shorter than the OCR of three pages: each page recognised extends it.
	for _, engine := range pdfEngines() {
		e := ocrExtractor(t, Options{PDFEngine: engine, Timeout: 3 * time.Second})
		for _, c := range []struct {
			name string
			pdf  []byte
		}{{"scanned", scanned}, {"mixed", mixed}} {
			t.Run(engine+"/"+c.name, func(t *testing.T) {
				var calls [][2]int
				doc, err := e.Extract(t.Context(), bytes.NewReader(c.pdf), int64(len(c.pdf)), doctype.PDF, func(done, total int) {
					calls = append(calls, [2]int{done, total})
				})
				if err != nil {
					t.Fatal(err)
				}
				if doc.Pages != 3 || len(doc.Sections) != 3 {
					t.Fatalf("%d pages, %d sections, want 3 and 3", doc.Pages, len(doc.Sections))
				}
				for i, s := range doc.Sections {
					if s.Page != i+1 {
						t.Errorf("section %d has page %d", i, s.Page)
					}
					if f1 := tokenF1(s.Text, strings.Join(pages[i], "\n")); f1 < 0.9 {
						t.Errorf("page %d: token-F1 %.3f against its source text:\n%s", i+1, f1, s.Text)
					}
				}
				if last := calls[len(calls)-1]; last != [2]int{3, 3} {
					t.Errorf("last progress %v, want [3 3]", last)
				}
				for i := 1; i < len(calls); i++ {
					if calls[i][0] < calls[i-1][0] {
						t.Errorf("progress went back: %v", calls)
					}
				}
			})
		}
	}
}

func TestOCRImages(t *testing.T) {
	e := ocrExtractor(t, Options{})
	lines := proseLines(2, 10)
	pdf := makePDF(pdfSpec{pages: [][]string{lines}})
	want := strings.Join(lines, "\n")
	for _, c := range []struct {
		typ    doctype.Type
		format string
	}{{doctype.PNG, "png"}, {doctype.JPEG, "jpeg"}, {doctype.TIFF, "tiff"}} {
		t.Run(string(c.typ), func(t *testing.T) {
			img := pdftoppm(t, pdf, 1, 300, c.format)
			if got, err := doctype.Sniff(img, "upload"); err != nil || got != c.typ {
				t.Fatalf("Sniff = %q, %v; want %q", got, err, c.typ)
			}
			var calls [][2]int
			doc, err := e.Extract(t.Context(), bytes.NewReader(img), int64(len(img)), c.typ, func(done, total int) {
				calls = append(calls, [2]int{done, total})
			})
			if err != nil {
				t.Fatal(err)
			}
			if doc.Pages != 1 || len(doc.Sections) != 1 || doc.Sections[0].Page != 1 {
				t.Fatalf("pages %d, sections %+v", doc.Pages, doc.Sections)
			}
			if f1 := tokenF1(allText(doc), want); f1 < 0.9 {
				t.Errorf("token-F1 %.3f:\n%s", f1, allText(doc))
			}
			if last := calls[len(calls)-1]; last != [2]int{1, 1} {
				t.Errorf("last progress %v, want [1 1]", last)
			}
		})
	}
	t.Run("webp", func(t *testing.T) {
		img, err := os.ReadFile(filepath.Join("testdata", "scan.webp"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := doctype.Sniff(img, "upload"); err != nil || got != doctype.WebP {
			t.Fatalf("Sniff = %q, %v; want webp", got, err)
		}
		doc, err := extractBytes(t, e, img, doctype.WebP)
		if err != nil {
			t.Fatal(err)
		}
		if f1 := tokenF1(allText(doc), strings.Join(proseLines(4, 8), "\n")); f1 < 0.9 {
			t.Errorf("token-F1 %.3f:\n%s", f1, allText(doc))
		}
	})
	t.Run("multi-page tiff", func(t *testing.T) {
		two := makePDF(pdfSpec{pages: [][]string{proseLines(0, 8), proseLines(8, 8)}})
		var pages []pgm
		for n := 1; n <= 2; n++ {
			pages = append(pages, parsePGM(t, pdftoppmGray(t, two, n, 200)))
		}
		img := grayTIFF(pages)
		var calls [][2]int
		doc, err := e.Extract(t.Context(), bytes.NewReader(img), int64(len(img)), doctype.TIFF, func(done, total int) {
			calls = append(calls, [2]int{done, total})
		})
		if err != nil {
			t.Fatal(err)
		}
		if doc.Pages != 2 || len(doc.Sections) != 2 {
			t.Fatalf("pages %d, %d sections, want 2 and 2", doc.Pages, len(doc.Sections))
		}
		for i, s := range doc.Sections {
			if s.Page != i+1 {
				t.Errorf("section %d: page %d", i, s.Page)
			}
			if f1 := tokenF1(s.Text, strings.Join(proseLines(i*8, 8), "\n")); f1 < 0.9 {
				t.Errorf("page %d: token-F1 %.3f:\n%s", i+1, f1, s.Text)
			}
		}
		if !slices.Contains(calls, [2]int{1, 2}) || calls[len(calls)-1] != [2]int{2, 2} {
			t.Errorf("progress %v, want page by page to [2 2]", calls)
		}
	})
	t.Run("ocr off", func(t *testing.T) {
		img := pdftoppm(t, pdf, 1, 100, "png")
		_, err := extractBytes(t, extractor(t, EnginePDFium), img, doctype.PNG)
		if !errors.Is(err, ErrNeedsOCR) || !strings.Contains(err.Error(), "OCR_ENGINE=tesseract") {
			t.Fatalf("err = %v, want ErrNeedsOCR saying how to enable OCR", err)
		}
	})
}

// pngChunk encodes one PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
	b.WriteString(typ)
	b.Write(data)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	return b.Bytes()
}

// pngHeader is a PNG signature and IHDR chunk of the given dimensions (8-bit grey).
func pngHeader(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 0, 0, 0, 0)
	return append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr)...)
}

// tiffFile builds a little-endian TIFF whose directories have the given dimensions; loop
// makes the last directory point back at the first.
func tiffFile(dims [][2]uint32, loop bool) []byte {
	b := []byte("II*\x00\x08\x00\x00\x00")
	for i, d := range dims {
		b = binary.LittleEndian.AppendUint16(b, 2)
		for j, tag := range []uint16{256, 257} {
			b = binary.LittleEndian.AppendUint16(b, tag)
			b = binary.LittleEndian.AppendUint16(b, 4) // LONG
			b = binary.LittleEndian.AppendUint32(b, 1)
			b = binary.LittleEndian.AppendUint32(b, d[j])
		}
		next := uint32(len(b) + 4)
		switch {
		case loop && i == len(dims)-1:
			next = 8
		case i == len(dims)-1:
			next = 0
		}
		b = binary.LittleEndian.AppendUint32(b, next)
	}
	return b
}

// webpVP8L is the header of a lossless WebP of the given dimensions (at most 16384 a side).
func webpVP8L(w, h uint32) []byte {
	bits := (w - 1) | (h-1)<<14
	payload := append([]byte{0x2f}, binary.LittleEndian.AppendUint32(nil, bits)...)
	payload = append(payload, make([]byte, 16)...)
	chunk := append([]byte("VP8L"), binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))...)
	chunk = append(chunk, payload...)
	riff := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(chunk)))...)
	return append(append(riff, "WEBP"...), chunk...)
}

func TestImageHeaders(t *testing.T) {
	const maxPixels = 60_000_000
	tests := []struct {
		name      string
		typ       doctype.Type
		data      []byte
		wantPages int
		wantErr   error
	}{
		{"png", doctype.PNG, pngHeader(2550, 3300), 1, nil},
		{"png bomb", doctype.PNG, pngHeader(100000, 100000), 0, ErrTooLarge},
		{"png zero width", doctype.PNG, pngHeader(0, 10), 0, ErrCorrupt},
		{"png bad crc", doctype.PNG, append(pngHeader(10, 10)[:20], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), 0, ErrCorrupt},
		{"jpeg named png", doctype.PNG, []byte("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01"), 0, ErrCorrupt},
		{"png named jpeg", doctype.JPEG, pngHeader(10, 10), 0, ErrCorrupt},
		{"tiff two pages", doctype.TIFF, tiffFile([][2]uint32{{2550, 3300}, {2550, 3300}}, false), 2, nil},
		{"tiff bomb on page 2", doctype.TIFF, tiffFile([][2]uint32{{100, 100}, {1 << 20, 1 << 20}}, false), 0, ErrTooLarge},
		{"tiff directory loop", doctype.TIFF, tiffFile([][2]uint32{{100, 100}, {100, 100}}, true), 0, ErrCorrupt},
		{"tiff too many pages", doctype.TIFF, tiffFile(slices.Repeat([][2]uint32{{10, 10}}, 10), false), 0, ErrTooLarge},
		{"tiff truncated", doctype.TIFF, tiffFile([][2]uint32{{100, 100}}, false)[:12], 0, ErrCorrupt},
		{"tiff outside file", doctype.TIFF, []byte("II*\x00\xff\xff\x00\x00"), 0, ErrCorrupt},
		{"webp", doctype.WebP, webpVP8L(1000, 1000), 1, nil},
		{"webp bomb", doctype.WebP, webpVP8L(16384, 16384), 0, ErrTooLarge},
		{"webp truncated", doctype.WebP, webpVP8L(100, 100)[:22], 0, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxPages := 100
			if tt.name == "tiff too many pages" {
				maxPages = 5
			}
			n, err := imagePages(tt.data, tt.typ, maxPixels, maxPages)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("imagePages = %d, %v; want %v", n, err, tt.wantErr)
				}
				return
			}
			if err != nil || n != tt.wantPages {
				t.Fatalf("imagePages = %d, %v; want %d pages", n, err, tt.wantPages)
			}
		})
	}
}

// TestOCRHostileImages: hostile and damaged images are permanent failures (or, for a
// truncated image, whatever text survives), and the Extractor keeps working afterwards.
func TestOCRHostileImages(t *testing.T) {
	e := ocrExtractor(t, Options{})
	pdf := makePDF(pdfSpec{pages: [][]string{proseLines(0, 8)}})
	png := pdftoppm(t, pdf, 1, 150, "png")
	jpg := pdftoppm(t, pdf, 1, 150, "jpeg")
	// A real bomb: a valid 40000x40000 header and a few KB of compressed zeros behind it.
	bomb := append(pngHeader(40000, 40000), pngChunk("IDAT", make([]byte, 4096))...)
	tests := []struct {
		name    string
		typ     doctype.Type
		data    []byte
		wantErr error // nil: a permanent error or some text
	}{
		{"decompression bomb", doctype.PNG, bomb, ErrTooLarge},
		{"truncated png", doctype.PNG, png[:len(png)/3], nil},
		{"truncated jpeg", doctype.JPEG, jpg[:len(jpg)/3], nil},
		{"jpeg labelled png", doctype.PNG, jpg, ErrCorrupt},
		{"garbage after png header", doctype.PNG, append(pngHeader(200, 200), bytes.Repeat([]byte{0xA5, 0x13}, 2000)...), ErrCorrupt},
		{"zero bytes", doctype.PNG, nil, ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := extractBytes(t, e, tt.data, tt.typ)
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !permanent(err) {
				t.Fatalf("err = %v, want one of the package's permanent errors", err)
			}
			if err == nil && !hasText(doc) {
				t.Fatal("no error and no text")
			}
			t.Logf("err = %v", err)
		})
	}
	// The engine survives: a good image still extracts.
	doc, err := extractBytes(t, e, png, doctype.PNG)
	if err != nil || !strings.Contains(allText(doc), "revenue") {
		t.Fatalf("after hostile images: %v", err)
	}
}

// A large PDF page (a poster) is rendered at a lower resolution that fits
// Options.OCRMaxPixels; a page too large even at the lowest one fails the document as too
// large, not with an empty page.
func TestOCRLargePDFPages(t *testing.T) {
	if testing.Short() {
		t.Skip("recognises many pages: left out of -short")
	}
	e := ocrExtractor(t, Options{})
	lines := proseLines(0, 10)
	text := makePDF(pdfSpec{pages: [][]string{lines}})
	scan := [][]byte{pdftoppm(t, text, 1, 300, "jpeg")}
	// 4000 points square at 300 dpi is 278 million pixels: rendered at 139 dpi instead.
	poster := makePDF(pdfSpec{pages: [][]string{nil}, scans: scan, mediaBox: "[0 0 4000 4000]"})
	doc, err := extractBytes(t, e, poster, doctype.PDF)
	if err != nil {
		t.Fatal(err)
	}
	if f1 := tokenF1(allText(doc), strings.Join(lines, "\n")); f1 < 0.9 {
		t.Errorf("poster page: token-F1 %.3f:\n%s", f1, allText(doc))
	}
	huge := makePDF(pdfSpec{pages: [][]string{nil}, scans: scan, mediaBox: "[0 0 14400 14400]"})
	if _, err := extractBytes(t, e, huge, doctype.PDF); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("14400-point page: err = %v, want ErrTooLarge", err)
	}
}

func TestOCRPageTimeout(t *testing.T) {
	e := ocrExtractor(t, Options{OCRPageTimeout: 50 * time.Millisecond}) //: no page finishes
	pdf := makePDF(scanSpec(t, [][]string{proseLines(0, 30)}, 0))
	_, err := extractBytes(t, e, pdf, doctype.PDF)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "took longer than") {
		t.Fatalf("err = %v, want ErrTooLarge for the page time limit", err)
	}
}

func TestOCROptions(t *testing.T) {
	for _, opts := range []Options{
		{OCREngine: "abbyy"},
		{OCREngine: OCRTesseract, OCRLanguages: "eng; rm -rf /"},
		{OCREngine: OCRTesseract, OCRDPI: 5000},
	} {
		if _, err := New(t.Context(), opts); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", opts)
		}
	}
	needOCR(t)
	_, err := New(t.Context(), Options{OCREngine: OCRTesseract, OCRLanguages: "eng+zzz"})
	if !errors.Is(err, ErrEngine) || !strings.Contains(err.Error(), "tesseract-ocr-zzz") {
		t.Fatalf("missing language: err = %v, want ErrEngine naming the package", err)
	}
	_, err = New(t.Context(), Options{OCREngine: OCRTesseract, TesseractPath: "/nonexistent/tesseract"})
	if !errors.Is(err, ErrEngine) {
		t.Fatalf("missing tesseract: err = %v, want ErrEngine", err)
	}
}

// FuzzImagePages: no image header makes the header check panic, loop or answer with anything
// but a page count within the limits or one of the package's permanent errors.
func FuzzImagePages(f *testing.F) {
	f.Add(pngHeader(100, 100), 0)
	f.Add(tiffFile([][2]uint32{{100, 100}, {200, 300}}, false), 1)
	f.Add(tiffFile([][2]uint32{{100, 100}}, true), 1)
	f.Add(webpVP8L(640, 480), 2)
	f.Add([]byte("\xFF\xD8\xFF\xC0\x00\x11\x08\x01\x00\x01\x00\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"), 3)
	types := []doctype.Type{doctype.PNG, doctype.TIFF, doctype.WebP, doctype.JPEG}
	f.Fuzz(func(t *testing.T, data []byte, typ int) {
		const maxPixels, maxPages = 1 << 24, 50
		n, err := imagePages(data, types[uint(typ)%uint(len(types))], maxPixels, maxPages)
		if err != nil {
			if !permanent(err) {
				t.Fatalf("err = %v, want a permanent error", err)
			}
			return
		}
		if n < 1 || n > maxPages {
			t.Fatalf("%d pages, want 1..%d", n, maxPages)
		}
	})
}
