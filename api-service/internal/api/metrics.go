package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quirehq/quire/shared/metrics"
)

// initMetrics gives s its own registry, served at GET /metrics: the Go runtime and process
// collectors, the HTTP collectors (quire_http_*) and the queue collector (quire_queue_*,
// quire_dlq_messages), whose cached reading also serves GET /api/v1/queues.
func (s *Server) initMetrics(js metrics.StreamLookup) {
	reg := prometheus.NewRegistry()
	s.metricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	logErr := func(err error) {
		if err != nil {
			s.log.Error("metrics: registering collectors", "err", err)
		}
	}
	logErr(reg.Register(collectors.NewGoCollector()))
	logErr(reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})))
	httpm, err := metrics.NewAPI(reg)
	if err != nil {
		logErr(err)
		httpm, _ = metrics.NewAPI(nil) // still counted, never nil
	}
	s.httpMetrics = httpm
	sm, err := metrics.NewSchedules(reg)
	if err != nil {
		logErr(err)
		sm, _ = metrics.NewSchedules(nil)
	}
	s.scheduleMetrics = sm
	logErr(metrics.RegisterUsage(reg, s.rollupLag))
	if js == nil {
		return
	}
	qc, err := metrics.NewQueueCollector(js, metrics.QueueCollectorConfig{Logger: s.log})
	if err != nil {
		logErr(err)
		return
	}
	logErr(reg.Register(qc))
	s.queueStats = qc
}

// observeHTTP records every request in quire_http_requests_total and
// quire_http_request_duration_seconds, labelled by route template (metrics.UnmatchedRoute for
// requests that match none), method and status.
func (s *Server) observeHTTP() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		s.httpMetrics.ObserveHTTP(c.FullPath(), methodLabel(c.Request.Method), c.Writer.Status(), time.Since(start))
	}
}

// methodLabel bounds the method label to the standard methods, so that clients sending made-up
// methods cannot create series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// serveMetrics serves the registry in the Prometheus exposition format. It needs no token,
// like /healthz: keep it off the public network (scrape it from inside the cluster).
func (s *Server) serveMetrics(c *gin.Context) {
	s.metricsHandler.ServeHTTP(c.Writer, c.Request)
}
