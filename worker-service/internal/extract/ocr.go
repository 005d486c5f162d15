package extract

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// OCR engines for [Options.OCREngine].
const (
	// OCROff leaves scanned pages and images unread: they fail with ErrNeedsOCR.
	OCROff = "off"
	// OCRTesseract recognises images and scanned PDF pages with Tesseract, run as a sandboxed
	// subprocess; PDF pages are rendered for it by poppler's pdftoppm. Both tools must be
	// installed (Debian: tesseract-ocr, tesseract-ocr-eng and poppler-utils).
	OCRTesseract = "tesseract"
)

// ocrHint says how to turn OCR on; it ends the ErrNeedsOCR errors of a worker without OCR.
const ocrHint = "OCR is off: set OCR_ENGINE=tesseract on the worker, with tesseract-ocr, tesseract-ocr-eng and poppler-utils installed"

// errPageTimeout is the cause recorded when one page's OCR exceeds Options.OCRPageTimeout.
var errPageTimeout = errors.New("extract: ocr page timeout")

// ocrEngine recognises text with tesseract and renders PDF pages with pdftoppm, both under
// [tool]'s limits (address space Options.OCRMemoryLimitMB, CPU time and wall clock
// Options.OCRPageTimeout per page), inside bubblewrap when Options.PDFToTextSandbox allows and
// it works. Tesseract runs single-threaded (OMP_THREAD_LIMIT=1): the Extractor's PDFWorkers
// slots bound how many documents are recognised at once, and so the processes and memory.
type ocrEngine struct {
	tesseract, pdftoppm, pdfinfo, sh string
	sandbox                          []string
	opts                             Options
}

// ocrLanguages is the shape of Options.OCRLanguages: tesseract language codes joined by "+".
var ocrLanguages = regexp.MustCompile(`^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$`)

func newOCREngine(opts Options) (*ocrEngine, error) {
	tess, err := exec.LookPath(opts.TesseractPath)
	if err != nil {
		return nil, fmt.Errorf("%w: ocr engine %q needs tesseract (Debian: apt-get install tesseract-ocr tesseract-ocr-eng): %v", ErrEngine, OCRTesseract, err)
	}
	ppm, err := exec.LookPath(opts.PDFToPPMPath)
	if err != nil {
		return nil, fmt.Errorf("%w: ocr engine %q needs pdftoppm to render PDF pages (Debian: apt-get install poppler-utils): %v", ErrEngine, OCRTesseract, err)
	}
	info := filepath.Join(filepath.Dir(ppm), "pdfinfo")
	if _, err := exec.LookPath(info); err != nil {
		if info, err = exec.LookPath("pdfinfo"); err != nil {
			return nil, fmt.Errorf("%w: pdfinfo not found beside %s (Debian: apt-get install poppler-utils): %v", ErrEngine, ppm, err)
		}
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		return nil, fmt.Errorf("%w: sh not found (needed to set resource limits): %v", ErrEngine, err)
	}
	o := &ocrEngine{tesseract: tess, pdftoppm: ppm, pdfinfo: info, sh: sh, opts: opts}
	if err := o.checkLanguages(); err != nil {
		return nil, err
	}
	if opts.PDFToTextSandbox != SandboxOff {
		sb, err := bwrapSandbox(tess, ppm, info, sh)
		switch {
		case err == nil:
			o.sandbox = sb
		case opts.PDFToTextSandbox == SandboxBwrap:
			return nil, fmt.Errorf("%w: PDFToTextSandbox %q: %v", ErrEngine, SandboxBwrap, err)
		}
	}
	return o, nil
}

// checkLanguages fails unless tesseract has trained data for every language asked for.
func (o *ocrEngine) checkLanguages() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.tesseract, "--list-langs")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/nonexistent"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: tesseract --list-langs: %v: %s", ErrEngine, err, lastLine(string(out)))
	}
	have := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		have[strings.TrimSpace(line)] = true
	}
	for _, l := range strings.Split(o.opts.OCRLanguages, "+") {
		if !have[l] {
			return fmt.Errorf("%w: tesseract has no trained data for language %q (Debian: apt-get install tesseract-ocr-%s)", ErrEngine, l, strings.ReplaceAll(strings.ToLower(l), "_", "-"))
		}
	}
	return nil
}

func (o *ocrEngine) tool(pages int) tool {
	return tool{sh: o.sh, sandbox: o.sandbox, memoryMB: o.opts.OCRMemoryLimitMB,
		cpu: time.Duration(pages) * o.opts.OCRPageTimeout, env: []string{"OMP_THREAD_LIMIT=1"}}
}

// recognise runs tesseract on one image file (any format it reads; a multi-page TIFF gives
// several pages) and calls page for each page's text in order, as each is recognised. dpi is
// the image's resolution when known (rendered pages), 0 to let tesseract read or estimate it.
// pages is how many pages the image holds, for the CPU limit.
func (o *ocrEngine) recognise(ctx context.Context, img []byte, dpi, pages int, page func(n int, text string) error) error {
	args := []string{"stdin", "stdout", "-l", o.opts.OCRLanguages}
	if dpi > 0 {
		args = append(args, "--dpi", strconv.Itoa(dpi))
	}
	t := o.tool(pages)
	done, total := 0, 0
	stderr, err := t.run(ctx, o.tesseract, args, bytes.NewReader(img), func(r io.Reader) error {
		br := bufio.NewReaderSize(r, 64<<10)
		var cur bytes.Buffer
		for {
			chunk, err := br.ReadSlice('\f') // tesseract ends each page with a form feed
			total += len(chunk)
			if total > o.opts.MaxTextBytes {
				return fmt.Errorf("%w: more than %d bytes of text", ErrTooLarge, o.opts.MaxTextBytes)
			}
			cur.Write(chunk)
			switch {
			case errors.Is(err, bufio.ErrBufferFull):
				continue
			case err == nil:
				done++
				if perr := page(done, strings.TrimSuffix(cur.String(), "\f")); perr != nil {
					return perr
				}
				cur.Reset()
				continue
			case errors.Is(err, io.EOF):
				if strings.TrimSpace(cur.String()) != "" {
					done++
					return page(done, cur.String())
				}
				return nil
			}
			return err
		}
	})
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return err
	}
	msg := strings.TrimSpace(stderr)
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Errorf("%w: tesseract killed by %v past its limits (%d MiB, %d s CPU): %s", ErrTooLarge, ws.Signal(), t.memoryMB, t.cpuSeconds(), lastLine(msg))
	}
	switch {
	case strings.Contains(msg, "Failed loading language"), strings.Contains(msg, "Error opening data file"):
		return fmt.Errorf("%w: tesseract: %s", ErrEngine, lastLine(msg))
	case ee.ExitCode() == 126 || ee.ExitCode() == 127:
		return fmt.Errorf("%w: tesseract could not be executed: %s", ErrEngine, lastLine(msg))
	case strings.Contains(msg, "bad_alloc") || strings.Contains(msg, "Out of memory"):
		return fmt.Errorf("%w: tesseract ran out of its %d MiB: %s", ErrTooLarge, t.memoryMB, lastLine(msg))
	}
	return fmt.Errorf("%w: tesseract cannot read the image (exit %d): %s", ErrCorrupt, ee.ExitCode(), lastLine(msg))
}

// pageSizes returns the sizes in points of pages first to last of a PDF, by page number, as
// pdfinfo reports them.
func (o *ocrEngine) pageSizes(ctx context.Context, pdf []byte, first, last int) (map[int][2]float64, error) {
	sizes := map[int][2]float64{}
	args := []string{"-f", strconv.Itoa(first), "-l", strconv.Itoa(last), "-"}
	_, err := o.tool(1).run(ctx, o.pdfinfo, args, bytes.NewReader(pdf), func(r io.Reader) error {
		sc := bufio.NewScanner(io.LimitReader(r, 16<<20))
		for sc.Scan() {
			// "Page    3 size: 612 x 792 pts (letter)"
			f := strings.Fields(sc.Text())
			if len(f) < 6 || f[0] != "Page" || f[2] != "size:" || f[4] != "x" {
				continue
			}
			n, err1 := strconv.Atoi(f[1])
			w, err2 := strconv.ParseFloat(f[3], 64)
			h, err3 := strconv.ParseFloat(f[5], 64)
			if err1 == nil && err2 == nil && err3 == nil {
				sizes[n] = [2]float64{w, h}
			}
		}
		return sc.Err()
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: pdfinfo page sizes: %v", ErrCorrupt, err)
	}
	return sizes, nil
}

// minOCRDPI is the lowest resolution a page is shrunk to so that it fits Options.OCRMaxPixels;
// a page that needs less is refused (text would be unreadable).
const minOCRDPI = 50

// pageDPI is the resolution page n of a PDF (size in points, zero if unknown) is rendered at:
// Options.OCRDPI, lowered for a large page (a poster, a drawing) so that its image fits
// Options.OCRMaxPixels.
func (o *ocrEngine) pageDPI(n int, size [2]float64) (int, error) {
	dpi := float64(o.opts.OCRDPI)
	px := size[0] / 72 * dpi * size[1] / 72 * dpi
	if px <= float64(o.opts.OCRMaxPixels) {
		return o.opts.OCRDPI, nil
	}
	dpi = math.Floor(dpi * math.Sqrt(float64(o.opts.OCRMaxPixels)/px))
	if dpi < minOCRDPI {
		return 0, fmt.Errorf("%w: pdf page %d is %.0fx%.0f points: more than %d pixels even at %d dpi", ErrTooLarge, n, size[0], size[1], o.opts.OCRMaxPixels, minOCRDPI)
	}
	return int(dpi), nil
}

// render renders page n (1-based) of a PDF as an 8-bit grey PGM image at dpi. A page whose
// image would exceed Options.OCRMaxPixels fails with ErrTooLarge as soon as pdftoppm writes
// the image header (or earlier, when rendering it exceeds the memory limit).
func (o *ocrEngine) render(ctx context.Context, pdf []byte, n, dpi int) ([]byte, error) {
	page := strconv.Itoa(n)
	args := []string{"-f", page, "-l", page, "-r", strconv.Itoa(dpi), "-gray", "-"}
	t := o.tool(1)
	var img []byte
	stderr, err := t.run(ctx, o.pdftoppm, args, bytes.NewReader(pdf), func(r io.Reader) error {
		br := bufio.NewReader(r)
		w, h, hdr, err := readPGMHeader(br)
		if err != nil {
			return fmt.Errorf("%w: pdftoppm page %d: %v", ErrCorrupt, n, err)
		}
		if int64(w)*int64(h) > int64(o.opts.OCRMaxPixels) {
			return fmt.Errorf("%w: pdf page %d renders to %dx%d pixels at %d dpi, limit %d pixels", ErrTooLarge, n, w, h, dpi, o.opts.OCRMaxPixels)
		}
		img = make([]byte, len(hdr)+w*h)
		copy(img, hdr)
		if _, err := io.ReadFull(br, img[len(hdr):]); err != nil {
			return fmt.Errorf("%w: pdftoppm page %d: short image: %v", ErrCorrupt, n, err)
		}
		return nil
	})
	msg := strings.TrimSpace(stderr)
	if err == nil && strings.Contains(msg, "Bogus memory allocation size") {
		// Poppler refuses a bitmap too large to allocate and writes a 1x1 image instead.
		return nil, fmt.Errorf("%w: pdf page %d is too large to render at %d dpi", ErrTooLarge, n, dpi)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return img, err
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return nil, fmt.Errorf("%w: pdftoppm page %d killed by %v past its limits (%d MiB, %d s CPU): %s", ErrTooLarge, n, ws.Signal(), t.memoryMB, t.cpuSeconds(), lastLine(msg))
	}
	if strings.Contains(msg, "bad_alloc") || strings.Contains(msg, "Out of memory") {
		return nil, fmt.Errorf("%w: pdftoppm page %d ran out of its %d MiB: %s", ErrTooLarge, n, t.memoryMB, lastLine(msg))
	}
	return nil, fmt.Errorf("%w: pdftoppm page %d exit %d: %s", ErrCorrupt, n, ee.ExitCode(), lastLine(msg))
}

// readPGMHeader reads the header of a binary 8-bit PGM ("P5 <w> <h> 255\n") and returns it.
func readPGMHeader(br *bufio.Reader) (w, h int, hdr []byte, err error) {
	var fields []int
	var raw bytes.Buffer
	magic := make([]byte, 2)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != "P5" {
		return 0, 0, nil, fmt.Errorf("not a PGM image (%q)", magic)
	}
	raw.Write(magic)
	var tok []byte
	for len(fields) < 3 {
		c, err := br.ReadByte()
		if err != nil {
			return 0, 0, nil, fmt.Errorf("PGM header: %w", err)
		}
		raw.WriteByte(c)
		if raw.Len() > 64 {
			return 0, 0, nil, errors.New("PGM header too long")
		}
		if c >= '0' && c <= '9' {
			tok = append(tok, c)
			continue
		}
		if len(tok) > 0 {
			v, err := strconv.Atoi(string(tok))
			if err != nil {
				return 0, 0, nil, fmt.Errorf("PGM header: %w", err)
			}
			fields = append(fields, v)
			tok = tok[:0]
		}
	}
	if fields[0] <= 0 || fields[1] <= 0 || fields[2] != 255 {
		return 0, 0, nil, fmt.Errorf("PGM header %v: want positive dimensions and 8-bit samples", fields)
	}
	return fields[0], fields[1], raw.Bytes(), nil
}

// ocrPage renders and recognises page n of a PDF (size in points, zero if unknown) within
// Options.OCRPageTimeout.
func (o *ocrEngine) ocrPage(ctx context.Context, pdf []byte, n int, size [2]float64) (string, error) {
	dpi, err := o.pageDPI(n, size)
	if err != nil {
		return "", err
	}
	pctx, cancel := context.WithTimeoutCause(ctx, o.opts.OCRPageTimeout, errPageTimeout)
	defer cancel()
	text, err := func() (string, error) {
		img, err := o.render(pctx, pdf, n, dpi)
		if err != nil {
			return "", err
		}
		var sb strings.Builder
		err = o.recognise(pctx, img, dpi, 1, func(_ int, text string) error {
			sb.WriteString(text)
			return nil
		})
		return sb.String(), err
	}()
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(pctx), errPageTimeout) {
		return "", fmt.Errorf("%w: ocr of pdf page %d took longer than %s", ErrTooLarge, n, o.opts.OCRPageTimeout)
	}
	return text, err
}
