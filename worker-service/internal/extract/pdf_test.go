package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/doctype"
)

var (
	sentence1 = "The quick brown fox jumps over the lazy dog near the riverbank."
	sentence2 = "Extraction keeps every page of the document in reading order."
	sentence3 = "Encrypted files open when their user password is empty."
)

func TestPDF(t *testing.T) {
	threePages := [][]string{{"Page one: " + sentence1}, {"Page two: " + sentence2}, {"Page three: " + sentence3}}
	tests := []struct {
		name      string
		spec      pdfSpec
		raw       func([]byte) []byte // damages the generated file
		wantErr   error
		wantPages int
		want      []string // substrings of the text, in order
	}{
		{name: "three pages", spec: pdfSpec{pages: threePages, title: "Field Guide"}, wantPages: 3,
			want: []string{"Page one", "lazy dog", "Page two", "reading order", "Page three"}},
		{name: "flate streams", spec: pdfSpec{pages: threePages, flate: true}, wantPages: 3, want: []string{"Page one", "Page three"}},
		{name: "junk before header", spec: pdfSpec{pages: threePages[:1], junk: 500}, wantPages: 1, want: []string{"lazy dog"}},
		{name: "rc4 empty user password", spec: pdfSpec{pages: threePages, encrypt: true, flate: true}, wantPages: 3,
			want: []string{"Page one", "Page three"}},
		{name: "rc4 user password", spec: pdfSpec{pages: threePages, encrypt: true, userPW: "secret"}, wantErr: ErrEncrypted},
		{name: "no text layer", spec: pdfSpec{pages: [][]string{nil, nil}}, wantErr: ErrNeedsOCR},
		{name: "truncated", spec: pdfSpec{pages: threePages}, raw: func(b []byte) []byte { return b[:60] }},
		{name: "not a pdf", raw: func([]byte) []byte { return []byte("<html><body>hello</body></html>") }, wantErr: ErrCorrupt},
		{name: "garbage after header", raw: func([]byte) []byte {
			return append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte{0xA5, 0x13, 0x00}, 3000)...)
		}},
		{name: "zero bytes", raw: func([]byte) []byte { return nil }, wantErr: ErrEmpty},
	}
	for _, engine := range pdfEngines() {
		t.Run(engine, func(t *testing.T) {
			e := extractor(t, engine)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					var data []byte
					if tt.spec.pages != nil {
						data = makePDF(tt.spec)
					}
					if tt.raw != nil {
						data = tt.raw(data)
					}
					var calls [][2]int
					doc, err := e.Extract(t.Context(), bytes.NewReader(data), int64(len(data)), doctype.PDF, func(done, total int) {
						calls = append(calls, [2]int{done, total})
					})
					if tt.want == nil {
						// Hostile or damaged: a permanent error, or else whatever text exists.
						if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
							t.Fatalf("err = %v, want %v", err, tt.wantErr)
						}
						if err != nil && !permanent(err) {
							t.Fatalf("err = %v, want one of the package's permanent errors", err)
						}
						return
					}
					if err != nil {
						t.Fatalf("Extract: %v", err)
					}
					if doc.Pages != tt.wantPages {
						t.Errorf("Pages = %d, want %d", doc.Pages, tt.wantPages)
					}
					text := allText(doc)
					at := 0
					for _, w := range tt.want {
						i := strings.Index(text[at:], w)
						if i < 0 {
							t.Fatalf("text lacks %q (in order); got:\n%s", w, text)
						}
						at += i + len(w)
					}
					for _, s := range doc.Sections {
						if s.Page < 1 || s.Page > doc.Pages {
							t.Errorf("section page %d out of 1..%d", s.Page, doc.Pages)
						}
						if want := fmt.Sprintf("Page %s", []string{"", "one", "two", "three"}[s.Page]); len(threePages) >= s.Page && !strings.Contains(s.Text, want) {
							t.Errorf("section of page %d lacks %q: %q", s.Page, want, s.Text)
						}
					}
					if n := len(calls); n == 0 || calls[n-1] != [2]int{tt.wantPages, tt.wantPages} {
						t.Errorf("progress calls %v, want per page ending at (%d,%d)", calls, tt.wantPages, tt.wantPages)
					}
					if tt.wantPages > 1 && len(calls) < tt.wantPages {
						t.Errorf("progress calls %v: want one per page", calls)
					}
					if tt.spec.title != "" && doc.Title != tt.spec.title {
						t.Errorf("Title = %q, want %q", doc.Title, tt.spec.title)
					}
				})
			}
		})
	}
}

// bombPDF has one page whose content stream inflates to 256 MiB (text, then spaces).
var bombPDF = sync.OnceValue(func() []byte {
	return makePDF(pdfSpec{pages: [][]string{{"Canary sentence before the padding of the bomb."}}, flate: true, bombBytes: 256 << 20})
})

// TestPDFBomb feeds a page whose content stream inflates to 256 MiB: each engine must either
// fail cleanly within its caps or return the text before the padding, never exhaust memory.
func TestPDFBomb(t *testing.T) {
	bomb := bombPDF()
	for _, engine := range pdfEngines() {
		t.Run(engine, func(t *testing.T) {
			e := newExtractor(t, Options{PDFEngine: engine, PDFMemoryLimitMB: 64, Timeout: 30 * time.Second})
			start := time.Now()
			doc, err := extractBytes(t, e, bomb, doctype.PDF)
			switch {
			case err == nil:
				if !strings.Contains(allText(doc), "Canary sentence") {
					t.Fatalf("bomb extracted without its canary text: %.200q", allText(doc))
				}
			case !permanent(err):
				t.Fatalf("err = %v, want a permanent error", err)
			case strings.Contains(err.Error(), "\n"):
				t.Errorf("error message spans lines: %q", err)
			}
			t.Logf("%s: %v after %v", engine, err, time.Since(start))
		})
	}
}

// TestPDFTimeout checks that a document past Options.Timeout is stopped (the PDFium instance
// killed, the pdftotext process group killed) and reported as ErrTooLarge, and that the
// engine keeps working afterwards.
func TestPDFTimeout(t *testing.T) {
	bomb := bombPDF()
	for _, engine := range pdfEngines() {
		t.Run(engine, func(t *testing.T) {
			e := newExtractor(t, Options{PDFEngine: engine, PDFWorkers: 1, Timeout: time.Second, PDFMemoryLimitMB: 2048})
			start := time.Now()
			_, err := extractBytes(t, e, bomb, doctype.PDF)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge (timeout)", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("stopped after %v, want within seconds of the 1s timeout", d)
			}
			// The single slot must be free again, with a working engine behind it.
			doc, err := extractBytes(t, e, makePDF(pdfSpec{pages: [][]string{{sentence1}}}), doctype.PDF)
			if err != nil || !strings.Contains(allText(doc), "lazy dog") {
				t.Fatalf("after a timeout: %v, %v", doc, err)
			}
		})
	}
}

func TestPDFCancel(t *testing.T) {
	bomb := bombPDF()
	for _, engine := range pdfEngines() {
		t.Run(engine, func(t *testing.T) {
			e := extractor(t, engine)
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			_, err := e.Extract(ctx, bytes.NewReader(bomb), int64(len(bomb)), doctype.PDF, nil)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the caller's context error", err)
			}
		})
	}
}

func TestPDFLimits(t *testing.T) {
	many := make([][]string, 12)
	for i := range many {
		many[i] = []string{fmt.Sprintf("Page %d of a long document: %s", i+1, sentence1)}
	}
	data := makePDF(pdfSpec{pages: many})
	for _, engine := range pdfEngines() {
		t.Run(engine, func(t *testing.T) {
			e := newExtractor(t, Options{PDFEngine: engine, MaxPages: 10})
			if _, err := extractBytes(t, e, data, doctype.PDF); !errors.Is(err, ErrTooLarge) {
				t.Errorf("12 pages, MaxPages 10: err = %v, want ErrTooLarge", err)
			}
			e = newExtractor(t, Options{PDFEngine: engine, MaxTextBytes: 300})
			if _, err := extractBytes(t, e, data, doctype.PDF); !errors.Is(err, ErrTooLarge) {
				t.Errorf("MaxTextBytes 300: err = %v, want ErrTooLarge", err)
			}
		})
	}
}

// TestPDFConcurrent runs more documents than engine slots at once through one Extractor.
func TestPDFConcurrent(t *testing.T) {
	for _, engine := range pdfEngines() {
		t.Run(engine, func(t *testing.T) {
			e := extractor(t, engine)
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for i := range 8 {
				wg.Go(func() {
					want := fmt.Sprintf("Document number %d says hello to the reader.", i)
					data := makePDF(pdfSpec{pages: [][]string{{want}, {sentence2}}})
					doc, err := extractBytes(t, e, data, doctype.PDF)
					if err != nil {
						errs <- err
						return
					}
					if !strings.Contains(allText(doc), want) {
						errs <- fmt.Errorf("document %d: text %q", i, allText(doc))
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestNewRejectsBadEngine(t *testing.T) {
	if _, err := New(t.Context(), Options{PDFEngine: "ghostscript"}); err == nil {
		t.Fatal("New accepted an unknown PDF engine")
	}
	if _, err := New(t.Context(), Options{PDFEngine: EnginePDFToText, PDFToTextPath: "/nonexistent/pdftotext"}); !errors.Is(err, ErrEngine) {
		t.Fatalf("missing pdftotext: err = %v, want ErrEngine", err)
	}
}

// TestPopplerSandbox runs pdftotext without and with the bubblewrap sandbox (where bwrap is
// installed and usable, "auto" uses it), and checks that a sandboxed tool sees nothing of the
// host's /etc or /work.
func TestPopplerSandbox(t *testing.T) {
	if os.Getenv("QUIRE_TEST_NO_PDFTOTEXT") == "1" {
		t.Log("pdftotext declared absent (QUIRE_TEST_NO_PDFTOTEXT=1)")
		return
	}
	data := makePDF(pdfSpec{pages: [][]string{{sentence1}}})
	for _, mode := range []string{SandboxOff, SandboxAuto} {
		t.Run(mode, func(t *testing.T) {
			e := newExtractor(t, Options{PDFEngine: EnginePDFToText, PDFToTextSandbox: mode})
			doc, err := extractBytes(t, e, data, doctype.PDF)
			if err != nil || !strings.Contains(allText(doc), "lazy dog") {
				t.Fatalf("extract: %v", err)
			}
			eng, err := e.pdfEngine()
			if err != nil {
				t.Fatal(err)
			}
			p := eng.(*popplerEngine)
			if mode == SandboxOff && p.sandboxed() {
				t.Fatal("sandboxed with PDFToTextSandbox off")
			}
			t.Logf("sandboxed: %v", p.sandboxed())
			if !p.sandboxed() {
				return
			}
			argv := append(slices.Clone(p.sandbox), p.sh, "-c", "test ! -e /etc/passwd && test ! -e /root && test ! -e /work && test -x "+p.pdftotext)
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("sandbox exposes the host (or cannot run the tool): %v %s", err, out)
			}
		})
	}
}

// TestPDFQueueing: with one slot, a document that waits for it behind a slow one still gets
// its whole Timeout once it runs.
func TestPDFQueueing(t *testing.T) {
	bomb := bombPDF()
	small := makePDF(pdfSpec{pages: [][]string{{sentence1}}})
	for _, engine := range pdfEngines() {
		t.Run(engine, func(t *testing.T) {
			e := newExtractor(t, Options{PDFEngine: engine, PDFWorkers: 1, Timeout: time.Second, PDFMemoryLimitMB: 2048})
			slow := make(chan error, 1)
			go func() {
				_, err := extractBytes(t, e, bomb, doctype.PDF)
				slow <- err
			}()
			time.Sleep(100 * time.Millisecond) // let the bomb take the slot
			start := time.Now()
			doc, err := extractBytes(t, e, small, doctype.PDF)
			if err != nil || !strings.Contains(allText(doc), "lazy dog") {
				t.Fatalf("queued document: %v (after %v)", err, time.Since(start))
			}
			if err := <-slow; !errors.Is(err, ErrTooLarge) {
				t.Fatalf("bomb: err = %v, want ErrTooLarge (timeout)", err)
			}
			t.Logf("queued document done after %v", time.Since(start))
		})
	}
}
