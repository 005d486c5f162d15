package main

import (
	"context"
	"fmt"
)

// compareMetering prices usage metering: the api figure (and the drain, if drain) with
// USAGE_METERING=off and =on, alternately, twice each (off, on, off, on), each run against its
// own NATS server and database. It returns the rows of the last metered run and one row per
// figure comparing the best of each setting.
func compareMetering(ctx context.Context, e *env, sz sizes, drain bool, logf func(string, ...any)) ([]row, error) {
	best := map[string]apiRates{}
	var rows []row
	for round := range 2 {
		for _, m := range []string{"off", "on"} {
			e.metering = m
			logf("metering %s, round %d of 2", m, round+1)
			r, rates, err := runAPIRates(ctx, e, sz, drain, logf)
			if err != nil {
				return nil, fmt.Errorf("metering %s: %w", m, err)
			}
			b := best[m]
			best[m] = apiRates{upload: max(b.upload, rates.upload), drain: max(b.drain, rates.drain)}
			if m == "on" {
				rows = r
			}
		}
	}
	e.metering = ""
	on, off := best["on"], best["off"]
	logf("metering: uploads/s on %.0f, off %.0f; drain documents/s on %.0f, off %.0f", on.upload, off.upload, on.drain, off.drain)
	rows = append(rows, row{
		Figure: fmt.Sprintf("API upload with usage metering on / off, %d × 10 KB text, best of 2 each (uploads/s)", sz.uploads),
		Quire:  fmt.Sprintf("%.0f", on.upload), Raw: fmt.Sprintf("%.0f (USAGE_METERING=off)", off.upload),
		Ratio: fmt.Sprintf("%.0f%%", 100*on.upload/off.upload), Goal: "≥ 95% of off", Met: met(on.upload >= 0.95*off.upload),
	})
	if drain {
		rows = append(rows, row{
			Figure: "Drain with usage metering on / off, best of 2 each (docs/s)",
			Quire:  fmt.Sprintf("%.0f", on.drain), Raw: fmt.Sprintf("%.0f (USAGE_METERING=off)", off.drain),
			Ratio: fmt.Sprintf("%.0f%%", 100*on.drain/off.drain), Goal: "≥ 95% of off", Met: met(on.drain >= 0.95*off.drain),
		})
	}
	return rows, nil
}
