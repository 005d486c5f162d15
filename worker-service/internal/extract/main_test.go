package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/quirehq/quire/shared/doctype"
)

// testCacheDir holds PDFium's compiled code for the whole test binary, so its cold start
// (seconds) is paid once even where $HOME is unset.
var testCacheDir string

func TestMain(m *testing.M) {
	// The user's cache directory survives between runs; a temporary one is the fallback.
	testCacheDir = Options{}.WithDefaults().CompilationCacheDir
	if testCacheDir == "off" {
		dir, err := os.MkdirTemp("", "extract-test-wazero-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer os.RemoveAll(dir)
		testCacheDir = dir
	}
	code := m.Run()
	closeShared()
	if code != 0 {
		os.Exit(code)
	}
}

// pdfEngines are the engines every PDF test runs against. pdftotext is required (CI installs
// poppler-utils); QUIRE_TEST_NO_PDFTOTEXT=1 declares it absent on a machine without it.
func pdfEngines() []string {
	if os.Getenv("QUIRE_TEST_NO_PDFTOTEXT") == "1" {
		return []string{EnginePDFium}
	}
	return []string{EnginePDFium, EnginePDFToText}
}

var (
	sharedMu sync.Mutex
	shared   = map[string]*Extractor{}
)

// extractor returns the test binary's Extractor for engine with default options.
func extractor(t testing.TB, engine string) *Extractor {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if e := shared[engine]; e != nil {
		return e
	}
	e, err := New(context.Background(), Options{PDFEngine: engine, CompilationCacheDir: testCacheDir})
	if err != nil {
		t.Fatalf("New(%s): %v (install poppler-utils, or set QUIRE_TEST_NO_PDFTOTEXT=1 where it cannot be)", engine, err)
	}
	shared[engine] = e
	return e
}

// newExtractor returns an Extractor with special options, closed when the test ends.
func newExtractor(t testing.TB, opts Options) *Extractor {
	t.Helper()
	if opts.CompilationCacheDir == "" {
		opts.CompilationCacheDir = testCacheDir
	}
	e, err := New(t.Context(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func closeShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	for _, e := range shared {
		e.Close()
	}
}

func extractBytes(t testing.TB, e *Extractor, data []byte, typ doctype.Type) (*Document, error) {
	t.Helper()
	return e.Extract(t.Context(), bytes.NewReader(data), int64(len(data)), typ, nil)
}

// permanent reports whether err wraps one of the package's sentinels.
func permanent(err error) bool {
	for _, s := range []error{ErrUnsupported, ErrCorrupt, ErrEncrypted, ErrNeedsOCR, ErrTooLarge, ErrEmpty} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func allText(d *Document) string {
	var b bytes.Buffer
	for _, s := range d.Sections {
		b.WriteString(s.Text)
		b.WriteString("\n")
	}
	return b.String()
}
