package main

import (
	"context"
	"fmt"
	"time"

	"github.com/quirehq/quire/shared/job"
)

// runBacklog measures upload latency through the API at 0 and at sz.backlog queued jobs on
// the high queue (the uploads' own queue; no worker running), then one worker-service's
// memory while it works through that backlog. The backlog jobs are no-op document jobs whose
// documents do not exist, so the worker dead-letters them: a fast job per message that keeps
// pulling from the deep queue. The full run queues 1,000,000 jobs.
// backlogSettle is the pause between the last queued job's acknowledgement and the uploads
// measured at that depth.
const backlogSettle = 5 * time.Second

func runBacklog(ctx context.Context, e *env, srv *natsServer, dbURL string, sz sizes, upload func(i int) error, logf func(string, ...any)) ([]row, error) {
	n := sz.backlogUploads
	logf("backlog: %d uploads at 0 queued", n)
	at0, err := closedLoop(n, uploadClients, upload)
	if err != nil {
		return nil, err
	}
	logf("backlog: at 0 queued: %.0f uploads/s, p50 %.2f ms, p99 %.2f ms; queueing %d jobs", at0.rate, ms(at0.p50), ms(at0.p99), sz.backlog)
	prod, err := newProducer(srv, false, "backlog")
	if err != nil {
		return nil, err
	}
	prod.docBase = 1 << 40
	start := time.Now()
	for i := range sz.backlog {
		if _, err := prod.publish(i); err != nil {
			prod.nc.Close()
			return nil, err
		}
	}
	err = prod.complete(5 * time.Minute)
	prod.nc.Close()
	if err != nil {
		return nil, err
	}
	logf("backlog: %d jobs queued in %v", sz.backlog, time.Since(start).Round(time.Millisecond))
	// The figure is about a deep queue, not the burst that filled it: the server first
	// finishes writing the burst out.
	time.Sleep(backlogSettle)
	atN, err := closedLoop(n, uploadClients, func(i int) error { return upload(n + i) })
	if err != nil {
		return nil, err
	}
	logf("backlog: at %d queued: %.0f uploads/s, p50 %.2f ms, p99 %.2f ms", sz.backlog, atN.rate, ms(atN.p50), ms(atN.p99))

	metricsAddr, _ := freeAddr()
	w, err := e.startBinary("worker-service", map[string]string{
		"NATS_URL": srv.url(), "DATABASE_URL": dbURL, "METRICS_ADDR": metricsAddr, "LOG_LEVEL": "warn",
	})
	if err != nil {
		return nil, err
	}
	defer w.stop()
	if err := w.waitReady("http://"+metricsAddr+"/readyz", time.Minute); err != nil {
		return nil, err
	}
	idle, _ := w.rssMB()
	var peak float64
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		cur, _ := w.rssMB()
		peak = max(peak, cur)
		time.Sleep(100 * time.Millisecond)
	}
	_, hwm := w.rssMB()
	js, err := e.jsInfo(srv, job.PriorityHigh.Stream())
	if err != nil {
		return nil, err
	}
	logf("backlog: worker RSS at start %.0f MB, peak %.0f MB over 10 s working through the backlog (high-water mark %.0f MB); %d jobs still queued",
		idle, peak, hwm, js)
	label := "Backlog"
	if sz.backlog < 1_000_000 {
		label = fmt.Sprintf("Backlog (reduced: %d queued, not 1M)", sz.backlog)
	}
	return []row{{
		Figure: fmt.Sprintf("%s: upload p50 / p99 at 0 → at %d queued (ms)", label, sz.backlog),
		Quire:  fmt.Sprintf("%.1f / %.1f → %.1f / %.1f", ms(at0.p50), ms(at0.p99), ms(atN.p50), ms(atN.p99)),
		Ratio:  fmt.Sprintf("%.2f× (p50)", ms(atN.p50)/ms(at0.p50)), Goal: "flat (p50 ≤ 1.5×)", Met: met(ms(atN.p50) <= 1.5*ms(at0.p50)),
	}, {
		Figure: fmt.Sprintf("Backlog: worker RSS at start → peak while working through %d queued (MB)", sz.backlog),
		Quire:  fmt.Sprintf("%.0f → %.0f", idle, hwm), Goal: "flat",
	}}, nil
}
