// Package extract turns document bytes into text sections (pages, headings) for chunking.
// Every error it returns is permanent for the document: retrying the same bytes cannot help.
//
// Formats: PDF (PDFium compiled to WebAssembly, in process, or poppler's pdftotext as a
// sandboxed subprocess), DOCX (a streaming archive/zip + encoding/xml reader with zip-bomb
// limits), plain text and Markdown (UTF-8, UTF-16 with a BOM, legacy single-byte encodings)
// and HTML (main content via go-readability, with a whole-page fallback). With OCR on
// ([Options.OCREngine]), PNG, JPEG, TIFF and WebP images and the PDF pages that have no text
// layer are recognised by Tesseract.
package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/quirehq/quire/shared/doctype"
)

// Errors wrapped by everything Extract returns; all of them are permanent for the document.
var (
	ErrUnsupported = errors.New("extract: unsupported document")
	ErrCorrupt     = errors.New("extract: corrupt document")
	ErrEncrypted   = errors.New("extract: password required")
	ErrNeedsOCR    = errors.New("extract: no text layer (needs OCR)")
	ErrTooLarge    = errors.New("extract: document exceeds extraction limits")
	ErrEmpty       = errors.New("extract: document has no text")
)

// ErrEngine reports that an extraction engine could not run at all (pdftotext missing, the
// WebAssembly module failed to compile). Unlike the other errors it says nothing about the
// document: it is a deployment problem, and a retry on a healthy worker may succeed.
var ErrEngine = errors.New("extract: extraction engine unavailable")

// Section is a run of text with its position in the document.
type Section struct {
	Text string
	// Page is the 1-based page number for paged formats (PDF), 0 otherwise.
	Page int
	// Heading is the heading path the text sits under ("Install > Linux"), if any.
	Heading string
	// Location is where the text sits (slide, sheet and rows, chapter). A section with only
	// Page set may leave it zero: its location is that page.
	Location doctype.Location
}

// Document is the extracted text of a document.
type Document struct {
	Title    string
	Type     doctype.Type
	Pages    int
	Sections []Section
}

// Len is the total length of the extracted text in bytes.
func (d *Document) Len() int {
	n := 0
	for _, s := range d.Sections {
		n += len(s.Text)
	}
	return n
}

// Progress is told how far extraction has come (e.g. pages done of total).
type Progress func(done, total int)

// PDF engines for [Options.PDFEngine].
const (
	// EnginePDFium runs PDFium compiled to WebAssembly inside the process (wazero): nothing to
	// install, memory capped per instance, no host filesystem visible to it.
	EnginePDFium = "pdfium"
	// EnginePDFToText runs poppler's pdftotext as a sandboxed subprocess: faster and the most
	// faithful, but poppler-utils must be installed.
	EnginePDFToText = "pdftotext"
)

// Values of [Options.PDFToTextSandbox].
const (
	SandboxAuto  = "auto"
	SandboxBwrap = "bwrap"
	SandboxOff   = "off"
)

// Options bounds extraction. The zero value is usable: [Options.WithDefaults] fills it in.
type Options struct {
	// MaxTextBytes caps the extracted text; a larger document fails with ErrTooLarge as soon as
	// the cap is crossed. Defaults to 32 MiB.
	MaxTextBytes int
	// Timeout bounds the extraction of one document (a PDF's from when it gets one of the
	// PDFWorkers slots); past it Extract fails with ErrTooLarge (the caller's own cancellation
	// is returned as the context's error instead). Defaults to 60 s.
	Timeout time.Duration
	// MaxPages caps the pages of a PDF (ErrTooLarge). Defaults to 5000.
	MaxPages int
	// MinCharsPerPage: a PDF whose text averages fewer non-space characters per page fails with
	// ErrNeedsOCR (a scan without a text layer). Defaults to 16.
	MinCharsPerPage int

	// PDFEngine is EnginePDFium (default) or EnginePDFToText.
	PDFEngine string
	// PDFWorkers bounds how many PDFs are extracted at once by this Extractor (PDFium instances
	// or pdftotext processes); further PDFs wait for a free slot. Defaults to GOMAXPROCS.
	PDFWorkers int
	// PDFMemoryLimitMB caps the memory of one PDF engine: the WebAssembly linear memory of a
	// PDFium instance, or the address space (RLIMIT_AS) of a pdftotext process. Defaults to
	// 256 MiB for PDFium and 1024 MiB for pdftotext.
	PDFMemoryLimitMB int
	// CompilationCacheDir keeps PDFium's compiled machine code between processes, so a worker
	// starts in about 0.2 s instead of 4 s. Defaults to $XDG_CACHE_HOME/quire/wazero (or the
	// platform's user cache directory); "off" keeps the cache in memory only, for the life of
	// the Extractor. An unwritable directory falls back to memory.
	CompilationCacheDir string
	// PDFToTextPath is the pdftotext binary (default "pdftotext" from PATH); pdfinfo is looked
	// up beside it.
	PDFToTextPath string
	// PDFToTextSandbox: SandboxAuto (default) runs the poppler tools (and the OCR tools)
	// inside bubblewrap (no network, no host filesystem beyond /usr and fonts) when bwrap is
	// installed and works, and with resource limits only otherwise; SandboxBwrap requires
	// bubblewrap (New fails without it); SandboxOff uses resource limits only.
	PDFToTextSandbox string

	// OCREngine is OCROff (default: images and PDF pages without a text layer fail with
	// ErrNeedsOCR) or OCRTesseract (New fails when tesseract, pdftoppm or a language's trained
	// data is missing). OCR runs in the PDFWorkers slots: at most PDFWorkers documents are
	// recognised at once, one tesseract process each.
	OCREngine string
	// OCRLanguages are the tesseract languages, joined by "+" ("eng+deu"). Defaults to "eng".
	OCRLanguages string
	// OCRPageTimeout bounds the rendering and recognition of one page; a page past it fails
	// the document with ErrTooLarge. Each page to recognise adds it to the document's Timeout.
	// Defaults to 60 s.
	OCRPageTimeout time.Duration
	// OCRDPI is the resolution PDF pages are rendered at for OCR. Defaults to 300.
	OCRDPI int
	// OCRMaxPixels caps the pixels of one image page (decompression bombs: the dimensions are
	// read from the header before anything decodes the image; a larger image fails with
	// ErrTooLarge) or rendered PDF page (a large page is rendered below OCRDPI to fit, down
	// to 50 dpi). Defaults to 60 million (an A3 page at 600 dpi is 35 million).
	OCRMaxPixels int
	// OCRMemoryLimitMB caps the address space (RLIMIT_AS) of a tesseract or pdftoppm process.
	// Defaults to 1024 MiB.
	OCRMemoryLimitMB int
	// TesseractPath and PDFToPPMPath are the binaries (defaults "tesseract" and "pdftoppm"
	// from PATH). They run under the PDFToTextSandbox setting, like the poppler text tools.
	TesseractPath, PDFToPPMPath string

	// MaxZipEntries caps the number of entries in a DOCX package. Defaults to 5000.
	MaxZipEntries int
	// MaxZipPartBytes caps the uncompressed bytes read from one part of a zip package (this
	// and the other MaxZip limits apply to DOCX, PPTX, XLSX, OpenDocument and EPUB alike;
	// worksheets and OpenDocument content, which stream, are capped by MaxZipTotalBytes
	// only). Defaults to 64 MiB.
	MaxZipPartBytes int64
	// MaxZipTotalBytes caps the uncompressed bytes read from a whole zip package. Defaults
	// to 256 MiB.
	MaxZipTotalBytes int64
	// MaxZipRatio caps the compression ratio of a zip package's part larger than 1 MiB
	// uncompressed (zip bombs). Defaults to 200.
	MaxZipRatio int

	// MaxHTMLBytes caps the size of an HTML document (uploaded or fetched); parsing takes about
	// ten times its size in memory. Defaults to 16 MiB.
	MaxHTMLBytes int
}

// WithDefaults returns o with zero fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.MaxTextBytes <= 0 {
		o.MaxTextBytes = 32 << 20
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.MaxPages <= 0 {
		o.MaxPages = 5000
	}
	if o.MinCharsPerPage <= 0 {
		o.MinCharsPerPage = 16
	}
	if o.PDFEngine == "" {
		o.PDFEngine = EnginePDFium
	}
	if o.PDFWorkers <= 0 {
		o.PDFWorkers = runtime.GOMAXPROCS(0)
	}
	if o.PDFMemoryLimitMB <= 0 {
		o.PDFMemoryLimitMB = 256
		if o.PDFEngine == EnginePDFToText {
			o.PDFMemoryLimitMB = 1024
		}
	}
	if o.CompilationCacheDir == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			o.CompilationCacheDir = filepath.Join(dir, "quire", "wazero")
		} else {
			o.CompilationCacheDir = "off"
		}
	}
	if o.PDFToTextPath == "" {
		o.PDFToTextPath = "pdftotext"
	}
	if o.PDFToTextSandbox == "" {
		o.PDFToTextSandbox = SandboxAuto
	}
	if o.OCREngine == "" {
		o.OCREngine = OCROff
	}
	if o.OCRLanguages == "" {
		o.OCRLanguages = "eng"
	}
	if o.OCRPageTimeout <= 0 {
		o.OCRPageTimeout = 60 * time.Second
	}
	if o.OCRDPI <= 0 {
		o.OCRDPI = 300
	}
	if o.OCRMaxPixels <= 0 {
		o.OCRMaxPixels = 60_000_000
	}
	if o.OCRMemoryLimitMB <= 0 {
		o.OCRMemoryLimitMB = 1024
	}
	if o.TesseractPath == "" {
		o.TesseractPath = "tesseract"
	}
	if o.PDFToPPMPath == "" {
		o.PDFToPPMPath = "pdftoppm"
	}
	if o.MaxZipEntries <= 0 {
		o.MaxZipEntries = 5000
	}
	if o.MaxZipPartBytes <= 0 {
		o.MaxZipPartBytes = 64 << 20
	}
	if o.MaxZipTotalBytes <= 0 {
		o.MaxZipTotalBytes = 256 << 20
	}
	if o.MaxZipRatio <= 0 {
		o.MaxZipRatio = 200
	}
	if o.MaxHTMLBytes <= 0 {
		o.MaxHTMLBytes = 16 << 20
	}
	return o
}

func (o Options) validate() error {
	switch o.PDFEngine {
	case EnginePDFium, EnginePDFToText:
	default:
		return fmt.Errorf("extract: PDFEngine %q: want %q or %q", o.PDFEngine, EnginePDFium, EnginePDFToText)
	}
	switch o.PDFToTextSandbox {
	case SandboxAuto, SandboxBwrap, SandboxOff:
	default:
		return fmt.Errorf("extract: PDFToTextSandbox %q: want %q, %q or %q", o.PDFToTextSandbox, SandboxAuto, SandboxBwrap, SandboxOff)
	}
	switch o.OCREngine {
	case OCROff, OCRTesseract:
	default:
		return fmt.Errorf("extract: OCREngine %q: want %q or %q", o.OCREngine, OCRTesseract, OCROff)
	}
	if !ocrLanguages.MatchString(o.OCRLanguages) {
		return fmt.Errorf("extract: OCRLanguages %q: want tesseract language codes joined by + (eng+deu)", o.OCRLanguages)
	}
	if o.OCRDPI < 72 || o.OCRDPI > 1200 {
		return fmt.Errorf("extract: OCRDPI %d: want 72 to 1200", o.OCRDPI)
	}
	// 65536 pages of 64 KiB is the 4 GiB a 32-bit WebAssembly memory can address.
	if o.PDFEngine == EnginePDFium && o.PDFMemoryLimitMB > 4096 {
		return fmt.Errorf("extract: PDFMemoryLimitMB %d: at most 4096 for the pdfium engine", o.PDFMemoryLimitMB)
	}
	return nil
}

// pdfEngine extracts the text of a PDF page by page.
type pdfEngine interface {
	// extract reports the page count and the document's title through pages, then calls page
	// for every page in order (1-based numbers). It returns errors wrapping the package's
	// sentinels, or ctx's error once ctx is done.
	extract(ctx context.Context, data []byte, pages func(n int, title string) error, page func(n int, text string) error) error
	close() error
}

// Extractor extracts text from documents. It is safe for concurrent use; PDFs share one
// bounded pool of engines ([Options.PDFWorkers]).
type Extractor struct {
	opts Options

	pdfOnce sync.Once
	pdf     pdfEngine
	pdfErr  error
	// pdfSlots admits Options.PDFWorkers PDFs and images at a time; a document's Timeout
	// starts once it has a slot, so time spent queueing behind other PDFs does not count
	// against it.
	pdfSlots chan struct{}
	// ocr is the OCR engine, nil when Options.OCREngine is OCROff.
	ocr *ocrEngine

	closeOnce sync.Once
	closeErr  error
}

// New returns an Extractor with opts (zero fields take defaults). Close releases it. The PDF
// engine starts on the first PDF (PDFium compiles its WebAssembly module once, then every
// extraction reuses it); with EnginePDFToText, New fails if pdftotext cannot be found (or
// bubblewrap, with SandboxBwrap); with OCRTesseract, New fails if tesseract, pdftoppm or the
// trained data of Options.OCRLanguages cannot be found. ctx is not used after New returns.
func New(ctx context.Context, opts Options) (*Extractor, error) {
	opts = opts.WithDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	e := &Extractor{opts: opts, pdfSlots: make(chan struct{}, opts.PDFWorkers)}
	if opts.PDFEngine == EnginePDFToText {
		// Cheap to start (look-ups and a sandbox probe): fail now rather than on a document.
		eng, err := newPopplerEngine(opts)
		if err != nil {
			return nil, err
		}
		e.pdfOnce.Do(func() { e.pdf = eng })
	}
	if opts.OCREngine == OCRTesseract {
		ocr, err := newOCREngine(opts)
		if err != nil {
			return nil, err
		}
		e.ocr = ocr
	}
	return e, nil
}

// OCRAvailable reports why OCR with [OCRTesseract] cannot run with opts (tesseract, pdftoppm
// or a language's trained data missing, or the sandbox unusable), or nil when it can. A
// worker uses it to turn OCR on by default where the tools are installed.
func OCRAvailable(opts Options) error {
	opts = opts.WithDefaults()
	opts.OCREngine = OCRTesseract
	if err := opts.validate(); err != nil {
		return err
	}
	_, err := newOCREngine(opts)
	return err
}

// Options returns the options e runs with, defaults filled in.
func (e *Extractor) Options() Options { return e.opts }

// Close releases the resources of e (engines, caches), once in-flight extractions have
// returned. It is safe to call more than once.
func (e *Extractor) Close() error {
	e.closeOnce.Do(func() {
		// Make a later first use fail instead of starting an engine after Close.
		e.pdfOnce.Do(func() { e.pdfErr = fmt.Errorf("%w: extractor closed", ErrEngine) })
		if e.pdf != nil {
			e.closeErr = e.pdf.close()
		}
	})
	return e.closeErr
}

// pdfEngine returns the PDF engine, starting it on first use.
func (e *Extractor) pdfEngine() (pdfEngine, error) {
	e.pdfOnce.Do(func() {
		switch e.opts.PDFEngine {
		case EnginePDFToText:
			e.pdf, e.pdfErr = newPopplerEngine(e.opts)
		default:
			e.pdf, e.pdfErr = newPDFiumEngine(e.opts)
		}
	})
	return e.pdf, e.pdfErr
}

// errTimeout is the cause recorded when a document exceeds Options.Timeout.
var errTimeout = errors.New("extract: timeout")

// Extract reads the document of type t from r (size bytes) and returns its text. A panic in a
// parser is recovered into an ErrCorrupt error; a document running past Options.Timeout fails
// with ErrTooLarge (for a PDF, the clock starts once one of the Options.PDFWorkers slots is
// free); the cancellation of ctx itself is returned as ctx's error. A failing r is returned
// as is (not a property of the document). progress, if not nil, is called from the calling
// goroutine (per page for PDFs).
func (e *Extractor) Extract(ctx context.Context, r io.ReaderAt, size int64, t doctype.Type, progress Progress) (*Document, error) {
	if progress == nil {
		progress = func(int, int) {}
	}
	if (t == doctype.PDF || t.IsImage()) && size > 0 {
		select {
		case e.pdfSlots <- struct{}{}:
			defer func() { <-e.pdfSlots }()
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	return e.run(ctx, func(ctx context.Context, lim *limiter) (*Document, error) {
		if size <= 0 {
			return nil, fmt.Errorf("%w: zero-byte file", ErrEmpty)
		}
		switch t {
		case doctype.PNG, doctype.JPEG, doctype.TIFF, doctype.WebP:
			return e.imageDocument(ctx, r, size, t, lim, progress)
		case doctype.Text, doctype.Markdown:
			data, err := readAll(r, size, int64(e.opts.MaxTextBytes))
			if err != nil {
				return nil, err
			}
			doc, err := textDocument(data, t, lim)
			if err == nil {
				progress(1, 1)
			}
			return doc, err
		case doctype.HTML:
			data, err := readAll(r, size, int64(e.opts.MaxHTMLBytes))
			if err != nil {
				return nil, err
			}
			doc, err := e.html(ctx, data, "", "", lim)
			if err == nil {
				progress(1, 1)
			}
			return doc, err
		case doctype.DOCX:
			doc, err := e.docx(ctx, r, size, lim)
			if err == nil {
				progress(1, 1)
			}
			return doc, err
		case doctype.PDF:
			return e.pdfDocument(ctx, r, size, lim, progress)
		}
		if fn := e.formatReader(t); fn != nil {
			doc, err := fn(ctx, r, size, lim)
			if err == nil {
				doc.Type = t
				progress(1, 1)
			}
			return doc, err
		}
		return nil, fmt.Errorf("%w: type %q", ErrUnsupported, t)
	})
}

// ExtractHTML extracts the main content of a fetched web page. contentType is the HTTP
// Content-Type header (its charset is trusted over the page's own <meta>, but not over a
// byte-order mark or over bytes that are valid UTF-8 when the header says otherwise); pageURL
// resolves relative links and may be empty. The title is kept in Document.Title.
func (e *Extractor) ExtractHTML(ctx context.Context, body []byte, contentType string, pageURL string) (*Document, error) {
	return e.run(ctx, func(ctx context.Context, lim *limiter) (*Document, error) {
		if len(body) == 0 {
			return nil, fmt.Errorf("%w: empty page", ErrEmpty)
		}
		if len(body) > e.opts.MaxHTMLBytes {
			return nil, fmt.Errorf("%w: page of %d bytes, limit %d", ErrTooLarge, len(body), e.opts.MaxHTMLBytes)
		}
		return e.html(ctx, body, contentType, pageURL, lim)
	})
}

// run applies the guardrails shared by every format: the per-document deadline, panic
// recovery, the text cap and the empty-text check.
func (e *Extractor) run(ctx context.Context, fn func(context.Context, *limiter) (*Document, error)) (doc *Document, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	dl := newDeadline(e.opts.Timeout, func() { cancel(errTimeout) })
	defer dl.stop()
	defer func() {
		if p := recover(); p != nil {
			doc, err = nil, fmt.Errorf("%w: parser panic: %v", ErrCorrupt, p)
		}
		if err != nil && dctx.Err() != nil {
			if ctx.Err() != nil {
				doc, err = nil, context.Cause(ctx)
			} else if errors.Is(context.Cause(dctx), errTimeout) {
				doc, err = nil, fmt.Errorf("%w: extraction took longer than %s", ErrTooLarge, e.opts.Timeout)
			}
		}
	}()
	lim := &limiter{max: e.opts.MaxTextBytes, extend: dl.extend}
	doc, err = fn(dctx, lim)
	if err != nil {
		return nil, err
	}
	if !hasText(doc) {
		return nil, fmt.Errorf("%w: no text found", ErrEmpty)
	}
	return doc, nil
}

func hasText(d *Document) bool {
	for _, s := range d.Sections {
		if strings.IndexFunc(s.Text, func(r rune) bool { return !unicode.IsSpace(r) }) >= 0 {
			return true
		}
	}
	return false
}

// limiter enforces Options.MaxTextBytes over everything a document yields.
type limiter struct {
	max, n int
	// extend pushes the document's deadline back (each page to recognise by OCR brings its
	// own Options.OCRPageTimeout).
	extend func(time.Duration)
}

// deadline fires once its time has passed; unlike a context deadline it can be extended.
type deadline struct {
	mu    sync.Mutex
	at    time.Time
	timer *time.Timer
}

func newDeadline(d time.Duration, fire func()) *deadline {
	return &deadline{at: time.Now().Add(d), timer: time.AfterFunc(d, fire)}
}

// extend moves the deadline d later, unless it has already fired.
func (d *deadline) extend(by time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer.Stop() {
		d.at = d.at.Add(by)
		d.timer.Reset(time.Until(d.at))
	}
}

func (d *deadline) stop() { d.timer.Stop() }

func (l *limiter) add(n int) error {
	l.n += n
	if l.n > l.max {
		return fmt.Errorf("%w: more than %d bytes of text", ErrTooLarge, l.max)
	}
	return nil
}

// readAll reads the size bytes of r, refusing more than limit.
func readAll(r io.ReaderAt, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, limit)
	}
	buf := make([]byte, size)
	n, err := r.ReadAt(buf, 0)
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) == size) {
		// A failing reader is not a property of the document: returned as is (retryable).
		return nil, fmt.Errorf("extract: read document: %w", err)
	}
	return buf, nil
}
