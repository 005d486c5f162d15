package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/quirehq/quire/shared/schedule"
)

// scheduleRowUI is one schedule on the dashboard.
type scheduleRowUI struct {
	ID, Name, Tenant, Spec, Zone, Overlap string
	TaskKind, TaskURL                     string
	Enabled                               bool
	// Next and Last are the next and last run in the schedule's zone, or "—".
	Next, Last string
}

type schedulesViewUI struct {
	Tenant    string
	Schedules []scheduleRowUI
}

// schedulesPage lists every tenant's schedules (or one tenant's) with their next run as the
// NATS server computes it and their last run.
func (u *ui) schedulesPage(c *gin.Context) {
	view := schedulesViewUI{Tenant: strings.TrimSpace(c.Query("tenant"))}
	list, err := u.s.docs.ListSchedules(c.Request.Context(), view.Tenant, maxSchedulesListed)
	if err != nil {
		u.s.log.Error("ui: schedules", "err", err)
		u.fail(c, errUnavailable)
		return
	}
	now := u.s.now()
	for _, sc := range list {
		row := scheduleRowUI{
			ID: sc.ID, Name: sc.Name, Tenant: sc.TenantID, Zone: sc.TimeZone, Overlap: sc.Overlap, Enabled: sc.Enabled,
			Spec: sc.SpecKind + " " + sc.Spec, Next: "—", Last: "—",
		}
		var task scheduleTask
		if json.Unmarshal(sc.Task, &task) == nil {
			row.TaskKind, row.TaskURL = string(task.Kind), task.URL
		}
		loc := time.UTC
		if spec, err := schedule.Parse(schedule.Kind(sc.SpecKind), sc.Spec, sc.TimeZone); err == nil {
			loc = spec.Location()
		}
		if next := nextRun(sc, now); next != nil {
			row.Next = next.In(loc).Format("2006-01-02 15:04:05 MST")
		}
		if sc.LastRunAt != nil {
			row.Last = sc.LastRunAt.In(loc).Format("2006-01-02 15:04:05 MST")
		}
		view.Schedules = append(view.Schedules, row)
	}
	u.render(c, http.StatusOK, "schedules", authOf(c), view)
}
