// Command bench measures Quire beside raw JetStream in one run and prints one table:
//
//   - W1 queue runtime overhead: no-op jobs through the worker runtime vs a hand-written
//     JetStream consumer (jobs/s, and enqueue→done latency at 200 jobs/s), and beside one
//     written by hand to keep Quire's task-status contract (what the contract itself costs);
//   - API upload: POST of 10 KB text files through bin/api-service at 16 clients vs the
//     "durable parts" floor (Object Store put + INSERT + KV create + acked publish, no HTTP);
//   - drain: one bin/worker-service with default settings turning the queued documents into
//     SUCCESS;
//   - search (search.go): hybrid search latency, with and without a 1%-selective filter, and
//     the vector ranking's recall@10, over one agent of 100k and 1M chunks loaded with COPY.
//
// It starts its own in-process NATS servers (file storage in a temporary directory) and a
// throwaway PostgreSQL cluster, and runs the binaries built by `make build`. Figures are
// ratios measured in the same run, so a noisy machine moves both sides together.
//
//	go run ./worker-service/bench [-quick] [-bin bin] [-out worker-service/bench/results/latest.md]
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

var corpusDir string

// metering is the -metering flag: USAGE_METERING of the binaries, or compare.
var metering string

type sizes struct {
	w1Jobs, w1Paced, w1Rounds int
	uploads, floorOps         int
	backlog, backlogUploads   int
}

var (
	fullSizes  = sizes{w1Jobs: 20000, w1Paced: 2000, w1Rounds: 2, uploads: 2000, floorOps: 2000, backlog: 1_000_000, backlogUploads: 500}
	quickSizes = sizes{w1Jobs: 5000, w1Paced: 600, w1Rounds: 1, uploads: 600, floorOps: 600}
)

func main() {
	quick := flag.Bool("quick", false, "one-minute subset with smaller N")
	binDir := flag.String("bin", "bin", "directory of api-service and worker-service (make build)")
	out := flag.String("out", "", "write the results table (markdown) to this file")
	only := flag.String("only", "", "figures to run, comma-separated: w1, api, drain (drain needs api), pdf, search (default all; -quick: all but pdf and search)")
	flag.StringVar(&corpusDir, "corpus", "", "corpus folder for the pdf figure (its pdf/p*.pdf files); without it the pdf figure is left out")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (in-process NATS, W1 consumers, load generators)")
	flag.StringVar(&w1Only, "w1side", "", "run only this side of W1 (raw, protocol or quire, for profiling; protocol-noread prices the status read)")
	w1Jobs := flag.Int("w1jobs", 0, "override the number of W1 jobs")
	w1Paced := flag.Int("w1paced", 0, "override the number of paced W1 jobs")
	backlog := flag.Int("backlog", -1, "override the number of queued jobs of the backlog figure (0 skips it)")
	flag.StringVar(&metering, "metering", "", "USAGE_METERING of the binaries (on, off); compare runs the api and drain figures with metering off and on, alternately, twice each, and adds a row comparing the best of each")
	flag.Func("search-chunks", "chunk counts of the search figure, comma-separated (default 100000,1000000; -quick: 100000 when -only has search)", func(v string) error {
		n, err := parseCounts(v)
		searchSizes = n
		return err
	})
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	sz, mode := fullSizes, "full"
	if *quick {
		sz, mode = quickSizes, "quick"
	}
	if *w1Jobs > 0 {
		sz.w1Jobs = *w1Jobs
	}
	if *backlog >= 0 {
		sz.backlog = *backlog
		sz.backlogUploads = max(sz.backlogUploads, 500)
	}
	if *w1Paced > 0 {
		sz.w1Paced = *w1Paced
	}
	if searchSizes == nil {
		searchSizes = []int{100_000, 1_000_000}
		if *quick {
			searchSizes = []int{100_000}
		}
	}
	figures := "w1,api,drain,pdf,search"
	if *quick {
		figures = "w1,api,drain"
	}
	if *only != "" {
		figures = *only
	}
	if err := run(ctx, sz, mode, *binDir, *out, strings.Split(figures, ",")); err != nil {
		pprof.StopCPUProfile()
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func run(ctx context.Context, sz sizes, mode, binDir, out string, only []string) error {
	binDir, err := filepath.Abs(binDir)
	if err != nil {
		return err
	}
	var logLines []string
	logf := func(format string, args ...any) {
		line := fmt.Sprintf("%s  "+format, append([]any{time.Now().Format("15:04:05")}, args...)...)
		logLines = append(logLines, line)
		fmt.Fprintln(os.Stderr, line)
	}
	began := time.Now()
	speed0 := cpuSpeed()
	logf("CPU speed: SHA-256 %.0f MB/s on one core (the host's load moves it: compare runs by it)", speed0)
	e, err := newEnv(ctx, binDir)
	if err != nil {
		return err
	}
	defer e.close()

	var rows []row
	if slices.Contains(only, "w1") {
		logf("W1: %d no-op jobs, concurrency %d, %d round(s); then %d jobs paced at 200/s", sz.w1Jobs, w1Concurrency, sz.w1Rounds, sz.w1Paced)
		raw, proto, quire, err := runW1(ctx, e, sz.w1Jobs, sz.w1Paced, sz.w1Rounds, logf)
		if err != nil {
			return err
		}
		ratio := quire.rate / raw.rate
		rows = append(rows, row{
			Figure: fmt.Sprintf("W1 throughput, %d no-op jobs, concurrency 8 (jobs/s)", sz.w1Jobs),
			Quire:  fmt.Sprintf("%.0f", quire.rate), Raw: fmt.Sprintf("%.0f", raw.rate),
			Ratio: fmt.Sprintf("%.0f%%", 100*ratio), Goal: "≥ 50% of raw", Met: met(ratio >= 0.5),
		})
		rows = append(rows, row{
			Figure: "W1 CPU per job, all processes (NATS server, producer, consumers) (µs)",
			Quire:  fmt.Sprintf("%.0f", float64(quire.cpuPerJob)/1e3), Raw: fmt.Sprintf("%.0f", float64(raw.cpuPerJob)/1e3),
			Ratio: fmt.Sprintf("%.1f×", float64(quire.cpuPerJob)/float64(raw.cpuPerJob)),
		})
		rows = append(rows, row{
			Figure: fmt.Sprintf("W1 consumers alone: %d jobs queued first (statuses too), then drained (jobs/s; CPU µs per job)", sz.w1Jobs),
			Quire:  fmt.Sprintf("%.0f; %.0f", quire.drainRate, float64(quire.drainCPU)/1e3),
			Raw:    fmt.Sprintf("%.0f; %.0f", raw.drainRate, float64(raw.drainCPU)/1e3),
			Ratio:  fmt.Sprintf("%.0f%%", 100*quire.drainRate/raw.drainRate),
		})
		rows = append(rows, row{
			Figure: "W1 beside raw JetStream keeping Quire's status contract by hand (PENDING created, status read, SUCCESS compare-and-set with the result TTL; Consume's default buffer): throughput; consumers alone (jobs/s)",
			Quire:  fmt.Sprintf("%.0f; %.0f", quire.rate, quire.drainRate),
			Raw:    fmt.Sprintf("%.0f; %.0f (%.0f%%; %.0f%% of raw)", proto.rate, proto.drainRate, 100*proto.rate/raw.rate, 100*proto.drainRate/raw.drainRate),
			Ratio:  fmt.Sprintf("%.0f%%; %.0f%%", 100*quire.rate/proto.rate, 100*quire.drainRate/proto.drainRate),
		})
		lr := ms(quire.p50) / ms(raw.p50)
		rows = append(rows, row{
			Figure: fmt.Sprintf("W1 paced 200 jobs/s, enqueue→done p50 / p99 (ms, %d jobs)", sz.w1Paced),
			Quire:  fmt.Sprintf("%.2f / %.2f", ms(quire.p50), ms(quire.p99)), Raw: fmt.Sprintf("%.2f / %.2f", ms(raw.p50), ms(raw.p99)),
			Ratio: fmt.Sprintf("%.1f× (p50)", lr), Goal: "p50 ≤ 3× raw", Met: met(lr <= 3),
		})
	}
	if slices.Contains(only, "api") && metering == "compare" {
		meterRows, err := compareMetering(ctx, e, sz, slices.Contains(only, "drain"), logf)
		if err != nil {
			return err
		}
		rows = append(rows, meterRows...)
	} else if slices.Contains(only, "api") {
		e.metering = metering
		apiRows, err := runAPI(ctx, e, sz, slices.Contains(only, "drain"), logf)
		if err != nil {
			return err
		}
		rows = append(rows, apiRows...)
	}
	if slices.Contains(only, "search") {
		searchRows, err := runSearch(ctx, e, searchSizes, logf)
		if err != nil {
			return err
		}
		rows = append(rows, searchRows...)
	}
	if slices.Contains(only, "pdf") && corpusDir == "" {
		logf("pdf: no corpus folder (make bench CORPUS=<dir>, or -corpus): the PDF figures are left out")
	} else if slices.Contains(only, "pdf") {
		pdfRows, err := runPDF(ctx, e, corpusDir, logf)
		if err != nil {
			return err
		}
		rows = append(rows, pdfRows...)
	}

	var buf bytes.Buffer
	host, _ := os.Hostname()
	fmt.Fprintf(&buf, "# Quire benchmarks (%s run)\n\n", mode)
	fmt.Fprintf(&buf, "%s · %s · %d CPUs · %s/%s · %s · took %v\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), cpuModel(), runtime.NumCPU(),
		runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Since(began).Round(time.Second))
	writeTable(&buf, rows)
	fmt.Fprintf(&buf, "\nRaw JetStream: async publish, Consume (default buffer), KV put, ack. The status-contract reference (bench/protocol.go) is "+
		"raw JetStream doing by hand only what Quire's task statuses require. Quire: the worker runtime "+
		"(internal/worker) with a no-op handler, fed a PENDING status and the job as the API does. Best of the rounds for each side. "+
		"API and drain use bin/api-service and bin/worker-service; each figure has its own in-process NATS server (file storage) and "+
		"one throwaway PostgreSQL serves them all. Host %s; load average at the end %s; CPU speed at the start (SHA-256 on one core) "+
		"%.0f MB/s: on a shared host it moves with other tenants' load, and every figure with it. "+
		"Rerun with `make bench` (`make bench-quick` for the one-minute subset).\n\n```\n%s\n```\n",
		host, loadAvg(), speed0, strings.Join(logLines, "\n"))
	fmt.Print("\n" + buf.String())
	if out != "" {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
			return err
		}
		logf("results written to %s", out)
	}
	return nil
}

// cpuSpeed measures this machine's speed at the moment: SHA-256 of 64 MB on one core, in MB/s.
// A host shared with other tenants runs everything slower while they are busy.
func cpuSpeed() float64 {
	buf := make([]byte, 1<<20)
	start := time.Now()
	h := sha256.New()
	for range 64 {
		h.Write(buf)
	}
	h.Sum(nil)
	return 64 / time.Since(start).Seconds()
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
