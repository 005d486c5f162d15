//go:build linux

package extract

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/doctype"
)

// benchScan is a scanned PDF of n dense pages (40 lines each, rendered at 300 dpi).
func benchScan(b testing.TB, n int) []byte {
	pages := make([][]string, n)
	scanned := make([]int, n)
	for i := range pages {
		pages[i] = proseLines(i*7, 40)
		scanned[i] = i
	}
	return makePDF(scanSpec(b, pages, scanned...))
}

// BenchmarkOCR measures one document at a time (one worker slot): pages/s of a scanned PDF
// (render at 300 dpi and recognise) and of a 300-dpi PNG page, and the CPU seconds the OCR
// processes spend per page (independent of how busy the machine is).
func BenchmarkOCR(b *testing.B) {
	e := ocrExtractor(b, Options{PDFWorkers: 1})
	scan := benchScan(b, 3)
	png := pdftoppm(b, makePDF(pdfSpec{pages: [][]string{proseLines(0, 40)}}), 1, 300, "png")
	for _, c := range []struct {
		name string
		typ  doctype.Type
		data []byte
	}{{"scanned-pdf", doctype.PDF, scan}, {"png", doctype.PNG, png}} {
		b.Run(c.name, func(b *testing.B) {
			pages := 0
			cpu0 := childCPU()
			for b.Loop() {
				doc, err := e.Extract(b.Context(), bytes.NewReader(c.data), int64(len(c.data)), c.typ, nil)
				if err != nil {
					b.Fatal(err)
				}
				pages += doc.Pages
			}
			b.ReportMetric(float64(pages)/b.Elapsed().Seconds(), "pages/s")
			b.ReportMetric((childCPU()-cpu0).Seconds()/float64(pages), "cpu-s/page")
		})
	}
}

// BenchmarkOCRPeakRSS extracts 8 large scans at once and reports the peak resident memory of
// the process plus its tesseract and pdftoppm children (sampled every 20 ms from /proc), and
// the most OCR processes seen at once, which the PDFWorkers slots bound.
func BenchmarkOCRPeakRSS(b *testing.B) {
	e := ocrExtractor(b, Options{})
	workers := e.opts.PDFWorkers
	scans := make([][]byte, 8)
	for i := range scans {
		scans[i] = benchScan(b, 2)
	}
	var peakKB, peakProcs, peakChildKB int
	for b.Loop() {
		ctx, stop := context.WithCancel(b.Context())
		var sampler sync.WaitGroup
		sampler.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				kb, procs, childKB := treeRSS(os.Getpid())
				peakKB, peakProcs, peakChildKB = max(peakKB, kb), max(peakProcs, procs), max(peakChildKB, childKB)
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
		var wg sync.WaitGroup
		errs := make([]error, len(scans))
		for i, scan := range scans {
			wg.Go(func() {
				_, errs[i] = e.Extract(ctx, bytes.NewReader(scan), int64(len(scan)), doctype.PDF, nil)
			})
		}
		wg.Wait()
		stop()
		sampler.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(peakKB)/1024, "peak-rss-MB")
	b.ReportMetric(float64(peakChildKB)/1024, "peak-ocr-proc-rss-MB")
	b.ReportMetric(float64(peakProcs), "max-ocr-procs")
	b.ReportMetric(float64(workers), "pdf-workers")
	if peakProcs > workers {
		b.Fatalf("%d OCR processes at once, want at most PDFWorkers = %d", peakProcs, workers)
	}
}

// treeRSS sums the resident memory (VmRSS) of pid and its descendants, counts the
// descendants that are tesseract or pdftoppm, and returns the largest of those.
func treeRSS(pid int) (kb, ocrProcs, maxOCRKB int) {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, ent := range entries {
		p, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
				parent[p], _ = strconv.Atoi(f[1])
			}
		}
	}
	inTree := func(p int) bool {
		for range 64 {
			if p == pid {
				return true
			}
			if p = parent[p]; p <= 1 {
				return false
			}
		}
		return false
	}
	for p := range parent {
		if !inTree(p) {
			continue
		}
		rss, comm := procStatus(p)
		kb += rss
		if p != pid && (comm == "tesseract" || comm == "pdftoppm") {
			ocrProcs++
			maxOCRKB = max(maxOCRKB, rss)
		}
	}
	return kb, ocrProcs, maxOCRKB
}

func procStatus(pid int) (rssKB int, name string) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch k {
		case "Name":
			name = strings.TrimSpace(v)
		case "VmRSS":
			rssKB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return rssKB, name
}

// childCPU is the user and system CPU time of the process's waited-for children.
func childCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
