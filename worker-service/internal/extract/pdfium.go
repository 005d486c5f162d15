package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klippa-app/go-pdfium"
	pdfiumerrors "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// pdfiumEngine runs PDFium compiled to WebAssembly under wazero. The module is compiled once
// (and cached on disk in Options.CompilationCacheDir); each document gets a fresh instance
// from a pool of at most Options.PDFWorkers, so a document that corrupts or exhausts an
// instance cannot affect the next one. Each instance's linear memory is capped, it sees no
// host filesystem, and a document past its deadline is interrupted by killing its instance.
type pdfiumEngine struct {
	pool  pdfium.Pool
	cache wazero.CompilationCache
	opts  Options
}

func newPDFiumEngine(opts Options) (*pdfiumEngine, error) {
	if opts.CompilationCacheDir != "off" {
		if c, err := wazero.NewCompilationCacheWithDir(opts.CompilationCacheDir); err == nil {
			if p, err := startPDFium(opts, c); err == nil {
				return p, nil
			}
			// An unwritable cache directory fails the compilation: fall back to memory.
		}
	}
	return startPDFium(opts, wazero.NewCompilationCache())
}

func startPDFium(opts Options, cache wazero.CompilationCache) (*pdfiumEngine, error) {
	rc := wazero.NewRuntimeConfig().
		// The bundled PDFium lowers setjmp/longjmp to WebAssembly exception handling.
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling).
		WithMemoryLimitPages(uint32(opts.PDFMemoryLimitMB) * 16). // 64 KiB pages
		WithCloseOnContextDone(true).
		WithCompilationCache(cache)
	pool, err := webassembly.Init(webassembly.Config{
		// The pool's own context lives as long as the pool; documents are bounded by their
		// own contexts through Kill.
		Context:       experimental.WithMemoryAllocator(context.Background(), memoryAllocator()),
		MinIdle:       1,
		MaxIdle:       opts.PDFWorkers,
		MaxTotal:      opts.PDFWorkers,
		FSConfig:      wazero.NewFSConfig(), // nothing of the host is mounted
		RuntimeConfig: rc,
		Stdout:        io.Discard,
		Stderr:        io.Discard,
		ReuseWorkers:  false,
	})
	if err != nil {
		cache.Close(context.Background())
		return nil, fmt.Errorf("%w: pdfium: %v", ErrEngine, err)
	}
	return &pdfiumEngine{pool: pool, cache: cache, opts: opts}, nil
}

func (p *pdfiumEngine) close() error {
	err := p.pool.Close()
	if cerr := p.cache.Close(context.Background()); err == nil {
		err = cerr
	}
	return err
}

func (p *pdfiumEngine) extract(ctx context.Context, data []byte, pages func(int, string) error, page func(int, string) error) (err error) {
	inst, err := p.pool.GetInstanceWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: pdfium instance: %v", ErrEngine, err)
	}
	// Past the deadline, kill the instance: that interrupts a call stuck inside PDFium (a
	// decompression bomb) within milliseconds; the pool makes a new one for the next document.
	stop := context.AfterFunc(ctx, func() { _ = inst.Kill() })
	defer func() {
		if stop() {
			_ = inst.Close()
		}
	}()
	fail := func(what string, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Traps carry a multi-line wasm stack trace: keep the first line for the task error.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return fmt.Errorf("%w: pdfium %s: %s", ErrCorrupt, what, msg)
	}

	empty := ""
	opened, err := inst.OpenDocument(&requests.OpenDocument{File: &data, Password: &empty})
	if err != nil {
		switch {
		case errors.Is(err, pdfiumerrors.ErrPassword):
			return fmt.Errorf("%w: pdf is encrypted with a user password", ErrEncrypted)
		case errors.Is(err, pdfiumerrors.ErrSecurity):
			return fmt.Errorf("%w: pdf uses an unsupported security handler", ErrEncrypted)
		}
		return fail("open", err)
	}
	doc := opened.Document
	defer func() {
		if ctx.Err() == nil {
			_, _ = inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: doc})
		}
	}()
	count, err := inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: doc})
	if err != nil {
		return fail("page count", err)
	}
	title := ""
	if meta, err := inst.FPDF_GetMetaText(&requests.FPDF_GetMetaText{Document: doc, Tag: "Title"}); err == nil {
		title = meta.Value
	}
	if err := pages(count.PageCount, title); err != nil {
		return err
	}
	for i := range count.PageCount {
		if err := ctx.Err(); err != nil {
			return err
		}
		text, err := pdfiumPageText(inst, doc, i)
		if errors.Is(err, pdfiumerrors.ErrPage) {
			// A page PDFium cannot load (a broken page tree): keep the others.
			text, err = "", nil
		}
		if err != nil {
			return fail(fmt.Sprintf("page %d (malformed, or past the %d MiB memory cap)", i+1, p.opts.PDFMemoryLimitMB), err)
		}
		if err := page(i+1, text); err != nil {
			return err
		}
	}
	return nil
}

func pdfiumPageText(inst pdfium.Pdfium, doc references.FPDF_DOCUMENT, index int) (string, error) {
	pg, err := inst.FPDF_LoadPage(&requests.FPDF_LoadPage{Document: doc, Index: index})
	if err != nil {
		return "", err
	}
	defer inst.FPDF_ClosePage(&requests.FPDF_ClosePage{Page: pg.Page})
	tp, err := inst.FPDFText_LoadPage(&requests.FPDFText_LoadPage{Page: requests.Page{ByReference: &pg.Page}})
	if err != nil {
		return "", err
	}
	defer inst.FPDFText_ClosePage(&requests.FPDFText_ClosePage{TextPage: tp.TextPage})
	n, err := inst.FPDFText_CountChars(&requests.FPDFText_CountChars{TextPage: tp.TextPage})
	if err != nil {
		return "", err
	}
	if n.Count <= 0 {
		return "", nil
	}
	txt, err := inst.FPDFText_GetText(&requests.FPDFText_GetText{TextPage: tp.TextPage, StartIndex: 0, Count: n.Count})
	if err != nil {
		return "", err
	}
	return txt.Text, nil
}
