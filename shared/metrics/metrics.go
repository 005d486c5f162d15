// Package metrics defines Quire's Prometheus metrics: the worker's job, stage and embeddings
// collectors ([Worker]), the API's HTTP collectors ([API]) and a collector that reports queue
// depth from JetStream consumer and stream info ([QueueCollector]).
//
// The metric names are part of the design contract: the Grafana dashboard and the alert rules in
// deploy/ use them. Nothing here registers itself: each constructor takes the
// [prometheus.Registerer] to register on, so a process (or a test) owns its registry and nothing
// is package-level state.
package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quirehq/quire/shared/job"
)

// namespace prefixes every metric name.
const namespace = "quire"

// Label names.
const (
	labelQueue    = "queue"
	labelKind     = "kind"
	labelStage    = "stage"
	labelProvider = "provider"
	labelRoute    = "route"
	labelMethod   = "method"
	labelStatus   = "status"
)

// kinds lists the job kinds whose series are created at start-up, so that rate() and ratios over
// them have a zero to start from rather than a missing series.
var kinds = []job.Kind{job.KindDocument, job.KindWebpage, job.KindCrawl}

// register registers every collector on reg and returns the first failure, naming the metric
// set. A nil reg registers nothing.
func register(reg prometheus.Registerer, set string, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("metrics: register %s metrics: %w", set, errors.Join(errs...))
	}
	return nil
}
