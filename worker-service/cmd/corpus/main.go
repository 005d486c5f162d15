// Command corpus measures text extraction over a corpus folder (make corpus CORPUS=<dir>): the
// inputs in <type>/ (pdf, docx, html, txt, and the office, e-book, mail and table formats:
// pptx, xlsx, csv, tsv, odt, ods, odp, epub, rtf, eml), references in ref/<type>/ (the input's
// base name with .txt; .raw.txt for PDFs, .main.txt for HTML), and MANIFEST.tsv naming each
// file's type and expected outcome. It prints one table per format: files, successes,
// expected (clean) failures, unexpected outcomes, mean token-F1 against the references, MB/s
// and pages/s of extraction over the valid files, chunk count and chunking speed (cl100k
// tokens), then the process's peak memory. It exits non-zero when a file's outcome contradicts
// the manifest (a valid file failing, a hostile one failing uncleanly).
//
//	go run ./worker-service/cmd/corpus -dir <corpus folder> [-engine pdftotext] [-v]
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/quirehq/quire/shared/doctype"
	"github.com/quirehq/quire/worker-service/internal/chunk"
	"github.com/quirehq/quire/worker-service/internal/extract"
	"github.com/quirehq/quire/worker-service/internal/quality"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "corpus:", err)
		os.Exit(1)
	}
}

type entry struct {
	file, kind, expected string
}

type result struct {
	entry
	ok       bool
	clean    bool // failed with one of extract's errors
	err      error
	f1       float64
	hasF1    bool
	bytes    int64
	pages    int
	elapsed  time.Duration
	textLen  int
	chunks   int
	chunkDur time.Duration
	wantFail bool
	verdict  string
}

func run() error {
	var (
		dir         = flag.String("dir", "", "corpus folder (with MANIFEST.tsv)")
		engine      = flag.String("engine", os.Getenv("PDF_ENGINE"), "PDF engine: pdfium (default) or pdftotext")
		workers     = flag.Int("workers", 0, "PDF engines at once (default GOMAXPROCS)")
		concurrency = flag.Int("concurrency", 1, "files extracted at once")
		timeout     = flag.Duration("timeout", 0, "per-document extraction timeout (default 60s)")
		verbose     = flag.Bool("v", false, "print a row per file")
		model       = flag.String("model", "text-embedding-3-small", "embeddings model whose tokenizer chunks the text")
		chunkSize   = flag.Int("chunk-size", 512, "chunk size in tokens")
	)
	flag.Parse()
	if *dir == "" {
		return errors.New("-dir is required: a corpus folder with <type>/, ref/<type>/ and MANIFEST.tsv")
	}
	entries, err := readManifest(filepath.Join(*dir, "MANIFEST.tsv"))
	if err != nil {
		return err
	}
	ctx := context.Background()
	start := time.Now()
	counter, err := chunk.NewCounter(*model)
	if err != nil {
		return err
	}
	chunking := chunk.Options{Size: *chunkSize, Counter: counter}
	ex, err := extract.New(ctx, extract.Options{PDFEngine: *engine, PDFWorkers: *workers, Timeout: *timeout})
	if err != nil {
		return err
	}
	defer ex.Close()
	// Warm the PDF engine up so the one-off start (WebAssembly compilation) is not counted
	// against the first file.
	warm := time.Now()
	_, _ = ex.Extract(ctx, strings.NewReader(warmPDF), int64(len(warmPDF)), doctype.PDF, nil)
	fmt.Printf("engine %s: start %.2fs\n\n", ex.Options().PDFEngine, time.Since(warm).Seconds())

	results := make([]result, len(entries))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(*concurrency, 1))
	for i, e := range entries {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = measure(ctx, ex, chunking, *dir, e)
		}()
	}
	wg.Wait()

	if *verbose {
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "file\tverdict\tF1\tpages\tms\tchunks\tdetail")
		for _, r := range results {
			f1 := "-"
			if r.hasF1 {
				f1 = fmt.Sprintf("%.3f", r.f1)
			}
			detail := ""
			if r.err != nil {
				detail = r.err.Error()
				if len(detail) > 110 {
					detail = detail[:110] + "…"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.file, r.verdict, f1, r.pages, r.elapsed.Milliseconds(), r.chunks, detail)
		}
		tw.Flush()
		fmt.Println()
	}
	printTable(results)
	fmt.Printf("\ntotal %.1fs, peak RSS (VmHWM) %s\n", time.Since(start).Seconds(), peakRSS())
	for _, r := range results {
		if strings.HasPrefix(r.verdict, "UNEXPECTED") {
			return errors.New("some files had unexpected outcomes")
		}
	}
	return nil
}

func readManifest(path string) ([]entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.Comma = '\t'
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(rows) < 1 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, c := range []string{"file", "type", "expected_outcome"} {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("%s: no %q column", path, c)
		}
	}
	var out []entry
	for _, r := range rows[1:] {
		if len(r) <= col["expected_outcome"] {
			continue
		}
		out = append(out, entry{file: r[col["file"]], kind: r[col["type"]], expected: r[col["expected_outcome"]]})
	}
	return out, nil
}

// wantsText reports whether the manifest expects text (rather than a clean error, or either).
func wantsText(expected string) (must, may bool) {
	e := strings.ToLower(expected)
	switch {
	case strings.HasPrefix(e, "ok"), strings.HasPrefix(e, "open with"):
		return true, true
	case strings.Contains(e, "partial"), strings.Contains(e, "canary"), strings.Contains(e, "bounded"), strings.Contains(e, "literal"):
		return false, true
	}
	return false, false
}

func measure(ctx context.Context, ex *extract.Extractor, chunking chunk.Options, dir string, e entry) result {
	r := result{entry: e}
	path := filepath.Join(dir, e.kind, e.file)
	data, err := os.ReadFile(path)
	if err != nil {
		r.err, r.verdict = err, "UNEXPECTED (unreadable)"
		return r
	}
	r.bytes = int64(len(data))
	must, may := wantsText(e.expected)
	r.wantFail = !must

	t, serr := doctype.Sniff(data, e.file)
	switch e.kind {
	case "pdf":
		t = doctype.PDF
	case "docx":
		t = doctype.DOCX
	case "html":
		t = doctype.HTML
	case "pptx", "xlsx", "csv", "tsv", "odt", "ods", "odp", "epub", "rtf", "eml":
		t = doctype.Type(e.kind)
	}
	start := time.Now()
	var doc *extract.Document
	if serr != nil && e.kind == "txt" {
		err = serr
	} else if len(data) == 0 {
		// What the API does with a zero-byte upload.
		_, err = doctype.Sniff(data, e.file)
	} else {
		doc, err = ex.Extract(ctx, strings.NewReader(string(data)), int64(len(data)), t, nil)
	}
	r.elapsed = time.Since(start)
	r.err = err
	r.ok = err == nil
	r.clean = err != nil && isClean(err)
	if doc != nil {
		r.pages = doc.Pages
		r.textLen = doc.Len()
		cs := time.Now()
		r.chunks = len(chunk.Split(doc, chunking))
		r.chunkDur = time.Since(cs)
		if ref := refPath(dir, e); ref != "" {
			if want, rerr := os.ReadFile(ref); rerr == nil {
				r.f1, r.hasF1 = quality.TokenF1(docText(doc), string(want)), true
			}
		}
	}
	switch {
	case r.ok && must:
		r.verdict = "ok"
	case r.ok && may:
		r.verdict = "ok (bounded)"
	case r.ok:
		r.verdict = "UNEXPECTED success"
	case !must && r.clean:
		r.verdict = "clean failure (expected)"
	case must:
		r.verdict = "UNEXPECTED failure"
	default:
		r.verdict = "UNEXPECTED unclean failure"
	}
	return r
}

func isClean(err error) bool {
	for _, s := range []error{extract.ErrUnsupported, extract.ErrCorrupt, extract.ErrEncrypted, extract.ErrNeedsOCR,
		extract.ErrTooLarge, extract.ErrEmpty, doctype.ErrEmpty, doctype.ErrLegacyDoc, doctype.ErrUnsupported} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func refPath(dir string, e entry) string {
	base := strings.TrimSuffix(e.file, filepath.Ext(e.file))
	var candidates []string
	switch e.kind {
	case "pdf":
		candidates = []string{base + ".raw.txt"}
	case "html":
		candidates = []string{base + ".main.txt"}
	case "txt":
		candidates = []string{e.file}
	default:
		candidates = []string{base + ".txt"}
	}
	for _, c := range candidates {
		p := filepath.Join(dir, "ref", e.kind, c)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func docText(d *extract.Document) string {
	var b strings.Builder
	for _, s := range d.Sections {
		b.WriteString(s.Text)
		b.WriteString("\n")
	}
	return b.String()
}

func printTable(results []result) {
	byKind := map[string][]result{}
	for _, r := range results {
		byKind[r.kind] = append(byKind[r.kind], r)
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Println("| format | files | successes | expected failures | unexpected | mean token-F1 (valid files) | min F1 | MB/s | pages/s | chunks | chunking MB/s of text |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, k := range kinds {
		var (
			n, ok, expFail, unexp, nf1, pages int
			sumF1, minF1                      = 0.0, 1.0
			bytes                             int64
			elapsed, chunkDur                 time.Duration
			chunks, textLen                   int
		)
		for _, r := range byKind[k] {
			n++
			if r.ok {
				ok++
			}
			if r.ok && !r.wantFail { // speed over the valid files only (not bombs)
				bytes += r.bytes
				pages += r.pages
				elapsed += r.elapsed
				chunks += r.chunks
				textLen += r.textLen
				chunkDur += r.chunkDur
			}
			if !r.ok && r.wantFail && r.clean {
				expFail++
			}
			if strings.HasPrefix(r.verdict, "UNEXPECTED") {
				unexp++
			}
			if r.hasF1 && !r.wantFail {
				nf1++
				sumF1 += r.f1
				minF1 = min(minF1, r.f1)
			}
		}
		meanF1, minS := "-", "-"
		if nf1 > 0 {
			meanF1 = fmt.Sprintf("%.3f (%d)", sumF1/float64(nf1), nf1)
			minS = fmt.Sprintf("%.3f", minF1)
		}
		mbs, pps := "-", "-"
		if s := elapsed.Seconds(); s > 0 {
			mbs = fmt.Sprintf("%.1f", float64(bytes)/1e6/s)
			if pages > 0 {
				pps = fmt.Sprintf("%.0f", float64(pages)/s)
			}
		}
		cmbs := "-"
		if s := chunkDur.Seconds(); s > 0 {
			cmbs = fmt.Sprintf("%.1f", float64(textLen)/1e6/s)
		}
		fmt.Printf("| %s | %d | %d | %d | %d | %s | %s | %s | %s | %d | %s |\n", k, n, ok, expFail, unexp, meanF1, minS, mbs, pps, chunks, cmbs)
	}
}

func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// warmPDF is a one-page PDF used to start the engine before timing.
const warmPDF = "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
