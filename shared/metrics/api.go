package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// UnmatchedRoute is the route label of requests that matched no route, so that probing random
// paths cannot create unbounded series.
const UnmatchedRoute = "unmatched"

// API holds the api-service's HTTP collectors.
type API struct {
	// HTTPRequests counts finished requests (quire_http_requests_total{route,method,status}).
	HTTPRequests *prometheus.CounterVec
	// HTTPRequestDuration observes request latency (quire_http_request_duration_seconds{route,method}).
	HTTPRequestDuration *prometheus.HistogramVec
}

// NewAPI creates the HTTP collectors and registers them on reg (nil: not registered). It fails
// if reg already holds a collector of the same name.
func NewAPI(reg prometheus.Registerer) (*API, error) {
	a := &API{
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests served, by route template, method and status code.",
		}, []string{labelRoute, labelMethod, labelStatus}),
		HTTPRequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "HTTP request latency, by route template and method.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{labelRoute, labelMethod}),
	}
	if err := register(reg, "api", a.HTTPRequests, a.HTTPRequestDuration); err != nil {
		return nil, err
	}
	return a, nil
}

// ObserveHTTP records one finished request. route must be the route template (gin's
// c.FullPath(), e.g. /api/v1/tasks/:task_id), never the raw path, so that ids do not become
// series; an empty route is recorded as [UnmatchedRoute].
func (a *API) ObserveHTTP(route, method string, status int, d time.Duration) {
	if route == "" {
		route = UnmatchedRoute
	}
	a.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	a.HTTPRequestDuration.WithLabelValues(route, method).Observe(d.Seconds())
}
