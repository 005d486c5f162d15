package metrics

import "github.com/prometheus/client_golang/prometheus"

// RegisterUsage registers quire_usage_rollup_lag_seconds on reg: lag reports how far the
// usage roll-up's watermark (the start of the first hour not rolled up) is behind the clock.
// Hourly roll-ups keep it between about a minute and an hour; more means roll-ups are missing.
func RegisterUsage(reg prometheus.Registerer, lag func() float64) error {
	return register(reg, "usage", prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "usage_rollup_lag_seconds",
		Help: "Seconds the usage roll-up's watermark is behind the clock (0 before the first roll-up).",
	}, lag))
}
