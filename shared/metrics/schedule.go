package metrics

import "github.com/prometheus/client_golang/prometheus"

// Schedules holds the collectors of the schedule materializer (api-service). They have no
// schedule label: schedule ids are unbounded.
type Schedules struct {
	// Fires counts the fires turned into a task (quire_schedule_fires_total): duplicates of
	// a fire already materialised are not counted.
	Fires prometheus.Counter
	// Skipped counts the fires skipped by overlap policy skip while the schedule's previous
	// run was queued or running (quire_schedule_skipped_total).
	Skipped prometheus.Counter
}

// NewSchedules creates the schedule collectors and registers them on reg (nil: not
// registered). It fails if reg already holds a collector of the same name.
func NewSchedules(reg prometheus.Registerer) (*Schedules, error) {
	s := &Schedules{
		Fires: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "schedule_fires_total",
			Help: "Schedule fires turned into a task.",
		}),
		Skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "schedule_skipped_total",
			Help: "Schedule fires skipped because the previous run was still queued or running (overlap skip).",
		}),
	}
	if err := register(reg, "schedule", s.Fires, s.Skipped); err != nil {
		return nil, err
	}
	return s, nil
}
