package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/quirehq/quire/shared/docstore"
)

// The usage page: every tenant's usage over the last 24 hours, an hourly bar chart of one
// metric (server-rendered SVG, no script) and the 24-hour totals of every counter.

const (
	usageChartHours  = 24
	usageChartWidth  = 480
	usageChartHeight = 120
	usageBarGap      = 2
)

// usageBar is one hour of a tenant's chart, in SVG user units.
type usageBar struct {
	X, Y, W, H int
	Hour       time.Time
	Quantity   int64
}

// tenantUsageView is one tenant's chart and totals.
type tenantUsageView struct {
	Tenant string
	Bars   []usageBar
	Max    int64
	Totals []metricTotal
}

type metricTotal struct {
	Metric   string
	Quantity int64
}

type usageView struct {
	Metric        string
	Metrics       []string
	From, To      time.Time
	Tenants       []tenantUsageView
	Width, Height int
}

// usageCounters are the metrics the chart can show (storage_bytes is a level, not per hour).
var usageCounters = slices.DeleteFunc(slices.Clone(docstore.Metrics), func(m string) bool { return m == docstore.MetricStorageBytes })

func (u *ui) usagePage(c *gin.Context) {
	view := usageView{Metric: c.DefaultQuery("metric", docstore.MetricDocuments), Metrics: usageCounters,
		Width: usageChartWidth, Height: usageChartHeight}
	if !slices.Contains(view.Metrics, view.Metric) {
		u.renderError(c, http.StatusBadRequest, "Bad metric", "metric must be one of "+strings.Join(view.Metrics, ", "))
		return
	}
	view.To = u.s.now().UTC().Truncate(time.Hour).Add(time.Hour)
	view.From = view.To.Add(-usageChartHours * time.Hour)
	rows, err := u.s.docs.UsageByTenant(c.Request.Context(), view.From, view.To)
	if err != nil {
		u.s.log.Error("ui: usage", "err", err)
		u.fail(c, errUnavailable)
		return
	}
	view.Tenants = usageCharts(rows, view.Metric, view.From)
	u.render(c, http.StatusOK, "usage", authOf(c), view)
}

// usageCharts lays rows (by tenant, then hour) out as one chart per tenant of metric's hourly
// quantities over the usageChartHours hours from from, bars scaled to the tenant's largest hour.
func usageCharts(rows []docstore.TenantUsage, metric string, from time.Time) []tenantUsageView {
	var out []tenantUsageView
	byTenant := map[string]*[usageChartHours]int64{}
	totals := map[string]map[string]int64{}
	for _, r := range rows {
		if byTenant[r.TenantID] == nil {
			byTenant[r.TenantID] = &[usageChartHours]int64{}
			totals[r.TenantID] = map[string]int64{}
			out = append(out, tenantUsageView{Tenant: r.TenantID})
		}
		totals[r.TenantID][r.Metric] += r.Quantity
		if i := int(r.Hour.Sub(from) / time.Hour); r.Metric == metric && i >= 0 && i < usageChartHours {
			byTenant[r.TenantID][i] += r.Quantity
		}
	}
	w := usageChartWidth / usageChartHours
	for k := range out {
		t := &out[k]
		hours := byTenant[t.Tenant]
		t.Max = slices.Max(hours[:])
		for i, q := range hours {
			h := 0
			if t.Max > 0 {
				h = int(q * (usageChartHeight - 1) / t.Max)
			}
			if q > 0 {
				h = max(h, 1)
			}
			t.Bars = append(t.Bars, usageBar{X: i * w, Y: usageChartHeight - h, W: w - usageBarGap, H: h,
				Hour: from.Add(time.Duration(i) * time.Hour), Quantity: q})
		}
		for _, m := range usageCounters {
			t.Totals = append(t.Totals, metricTotal{Metric: m, Quantity: totals[t.Tenant][m]})
		}
	}
	return out
}

// usageTitle is the tooltip of one bar.
func usageTitle(b usageBar, metric string) string {
	return b.Hour.Format("Jan 2 15:04") + " UTC: " + strconv.FormatInt(b.Quantity, 10) + " " + metric
}
