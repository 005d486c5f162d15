package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/quirehq/quire/shared/natstest"
)

// runJetStream starts an in-process JetStream server and returns it with a JetStream handle on a
// connection to it; both are closed when the test ends.
func runJetStream(t *testing.T) (*server.Server, jetstream.JetStream) {
	t.Helper()
	srv := natstest.Run(t)
	_, js := natstest.Connect(t, srv)
	return srv, js
}

// scrape serves g over HTTP the way a service's /metrics does and parses the response.
func scrape(t *testing.T, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	ts := httptest.NewServer(promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer ts.Close()
	resp, err := http.Get(ts.URL)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return mfs
}

// labelKey renders a metric's labels sorted by name as "a=x,b=y".
func labelKey(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// values returns the value of every series of a counter or gauge family, keyed by labelKey.
func values(mf *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	if mf == nil {
		return out
	}
	for _, m := range mf.GetMetric() {
		switch {
		case m.GetCounter() != nil:
			out[labelKey(m)] = m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			out[labelKey(m)] = m.GetGauge().GetValue()
		}
	}
	return out
}

func gatherFamily(t *testing.T, g prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("gather: no metric family %s", name)
	return nil
}

// nonZero returns the non-zero series of a counter or gauge family, keyed by labelKey.
func nonZero(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	out := values(gatherFamily(t, g, name))
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

func histogram(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) *dto.Histogram {
	t.Helper()
	for _, m := range gatherFamily(t, g, name).GetMetric() {
		match := true
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
				match = false
			}
		}
		if match && len(m.GetLabel()) == len(labels) {
			return m.GetHistogram()
		}
	}
	t.Fatalf("%s: no series %v", name, labels)
	return nil
}

func histogramCount(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) uint64 {
	t.Helper()
	return histogram(t, g, name, labels).GetSampleCount()
}

func histogramSum(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	return histogram(t, g, name, labels).GetSampleSum()
}
