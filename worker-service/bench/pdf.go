package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/quirehq/quire/shared/doctype"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/worker-service/internal/extract"
)

// corpusPDFs lists the well-formed PDFs of the corpus (files named p*.pdf), largest first.
func corpusPDFs(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "pdf", "p*.pdf"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no corpus PDFs under %s/pdf (set -corpus)", dir)
	}
	size := func(f string) int64 {
		st, err := os.Stat(f)
		if err != nil {
			return 0
		}
		return st.Size()
	}
	slices.SortFunc(files, func(a, b string) int { return int(size(b) - size(a)) })
	return files, nil
}

// runPDF measures the worker's PDF extraction (the default engine, in this process, one
// document at a time) beside poppler's pdftotext on the same files, then one worker-service
// processing the 8 largest corpus PDFs at once (8 slots) for its peak RSS.
func runPDF(ctx context.Context, e *env, corpus string, logf func(string, ...any)) ([]row, error) {
	files, err := corpusPDFs(corpus)
	if err != nil {
		return nil, err
	}
	ex, err := extract.New(ctx, extract.Options{})
	if err != nil {
		return nil, err
	}
	defer func() { _ = ex.Close() }()
	var pages int
	var bytesIn int64
	var quire, pdftotext time.Duration
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		t := time.Now()
		doc, err := ex.Extract(ctx, bytes.NewReader(data), int64(len(data)), doctype.PDF, nil)
		d := time.Since(t)
		if err != nil {
			logf("pdf: %s: %v (left out)", filepath.Base(f), err)
			continue
		}
		t = time.Now()
		if out, err := exec.CommandContext(ctx, "pdftotext", "-q", f, "-").Output(); err != nil || len(out) == 0 {
			logf("pdf: pdftotext %s: %v (left out)", filepath.Base(f), err)
			continue
		}
		pdftotext += time.Since(t)
		quire += d
		pages += doc.Pages
		bytesIn += int64(len(data))
	}
	if pages == 0 {
		return nil, fmt.Errorf("no corpus PDF extracted")
	}
	qps, pps := float64(pages)/quire.Seconds(), float64(pages)/pdftotext.Seconds()
	logf("pdf: %d pages, %.1f MB: worker extraction %.0f pages/s (%.1f MB/s), pdftotext %.0f pages/s (%.1f MB/s)",
		pages, float64(bytesIn)/1e6, qps, float64(bytesIn)/1e6/quire.Seconds(), pps, float64(bytesIn)/1e6/pdftotext.Seconds())
	rows := []row{{
		Figure: fmt.Sprintf("PDF extraction, %d corpus PDFs, %d pages, one at a time (pages/s; MB/s)", len(files), pages),
		Quire:  fmt.Sprintf("%.0f; %.1f", qps, float64(bytesIn)/1e6/quire.Seconds()),
		Raw:    fmt.Sprintf("pdftotext %.0f; %.1f", pps, float64(bytesIn)/1e6/pdftotext.Seconds()),
		Ratio:  fmt.Sprintf("%.2f×", qps/pps),
	}}

	// Peak RSS of one worker with 8 PDFs at once.
	big := files[:min(8, len(files))]
	srv, err := e.startNATS("pdf")
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	dbURL, err := e.newDB(ctx)
	if err != nil {
		return nil, err
	}
	httpAddr, _ := freeAddr()
	api, err := e.startBinary("api-service", map[string]string{
		"NATS_URL": srv.url(), "DATABASE_URL": dbURL, "API_TOKENS": "bench:" + benchToken, "HTTP_ADDR": httpAddr,
	})
	if err != nil {
		return nil, err
	}
	defer api.stop()
	if err := api.waitReady("http://"+httpAddr+"/readyz", time.Minute); err != nil {
		return nil, err
	}
	var total int64
	for _, f := range big {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		total += int64(len(data))
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		fw, _ := mw.CreateFormFile("file", filepath.Base(f))
		_, _ = fw.Write(data)
		_ = mw.Close()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+httpAddr+"/api/v1/documents/agent/agent-1/upload", &b)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+benchToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return nil, fmt.Errorf("upload %s: %d %s", filepath.Base(f), resp.StatusCode, body)
		}
	}
	mon, err := newAckMonitor(srv.url(), job.PriorityHigh.Stream(), len(big))
	if err != nil {
		return nil, err
	}
	defer mon.close()
	metricsAddr, _ := freeAddr()
	w, err := e.startBinary("worker-service", map[string]string{
		"NATS_URL": srv.url(), "DATABASE_URL": dbURL, "METRICS_ADDR": metricsAddr, "WORKER_CONCURRENCY_HIGH": "8",
	})
	if err != nil {
		return nil, err
	}
	defer w.stop()
	if err := mon.wait(5 * time.Minute); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, w.output())
	}
	_, peak := w.rssMB()
	logf("pdf: worker peak RSS %.0f MB processing the %d largest PDFs (%.1f MB) at once", peak, len(big), float64(total)/1e6)
	return append(rows, row{
		Figure: fmt.Sprintf("worker peak RSS, %d largest corpus PDFs (%.1f MB in all; not 'large') at once, 8 slots (MB)", len(big), float64(total)/1e6),
		Quire:  fmt.Sprintf("%.0f", peak),
	}), nil
}
