package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
)

// Usage and billing (DESIGN §12): GET /api/v1/usage, GET /api/v1/usage/invoice, and the admin
// token's GET /api/v1/admin/usage and GET|PUT /api/v1/admin/tenants/{tenant}/quota.

const (
	// maxUsageSpan bounds the range of one usage request; maxHourlySpan the range of one
	// at hourly granularity.
	maxUsageSpan  = 366 * 24 * time.Hour
	maxHourlySpan = 31 * 24 * time.Hour
)

// usagePeriod is one period of a usage report: every metric's quantity in it.
type usagePeriod struct {
	Period  time.Time        `json:"period"`
	Metrics map[string]int64 `json:"metrics"`
}

// usageReport is the answer of GET /api/v1/usage. Totals sums each counter over the range;
// storage_bytes is the largest measure in it.
type usageReport struct {
	TenantID    string           `json:"tenant_id"`
	AgentID     string           `json:"agent_id,omitempty"`
	From        time.Time        `json:"from"`
	To          time.Time        `json:"to"`
	Granularity string           `json:"granularity"`
	Rows        []usagePeriod    `json:"rows"`
	Totals      map[string]int64 `json:"totals"`
}

func (s *Server) getUsage(c *gin.Context) { s.usageReport(c, tenantOf(c)) }

// adminUsage is GET /api/v1/admin/usage?tenant=…: any tenant's usage report.
func (s *Server) adminUsage(c *gin.Context) {
	tenant, err := tenantParam(c.Query("tenant"))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.usageReport(c, tenant)
}

// usageReport answers ?from=&to=&granularity=hour|day|month&agent_id= for tenant. from and to
// are RFC 3339 times or YYYY-MM-DD dates (UTC); to defaults to the end of the current hour and
// from to 24 hours before to (hour), 30 days (day) or 365 days (month). The current hour is
// included live.
func (s *Server) usageReport(c *gin.Context, tenant string) {
	q := docstore.UsageQuery{TenantID: tenant, Granularity: c.DefaultQuery("granularity", docstore.GranularityHour)}
	var span time.Duration
	switch q.Granularity {
	case docstore.GranularityHour:
		span = 24 * time.Hour
	case docstore.GranularityDay:
		span = 30 * 24 * time.Hour
	case docstore.GranularityMonth:
		span = 365 * 24 * time.Hour
	default:
		s.fail(c, errBadRequest("granularity must be hour, day or month"))
		return
	}
	if a := c.Query("agent_id"); a != "" {
		if !agentIDPattern.MatchString(a) {
			s.fail(c, errBadRequest("agent_id must be 1-128 characters of A-Z a-z 0-9 _ . -"))
			return
		}
		q.AgentID = a
	}
	var err error
	if q.To, err = usageTime("to", c.Query("to"), s.now().UTC().Truncate(time.Hour).Add(time.Hour)); err != nil {
		s.fail(c, err)
		return
	}
	if q.From, err = usageTime("from", c.Query("from"), q.To.Add(-span)); err != nil {
		s.fail(c, err)
		return
	}
	switch {
	case !q.From.Before(q.To):
		s.fail(c, errBadRequest("from must be before to"))
		return
	case q.To.Sub(q.From) > maxUsageSpan:
		s.fail(c, errBadRequest("from and to may be at most 366 days apart"))
		return
	case q.Granularity == docstore.GranularityHour && q.To.Sub(q.From) > maxHourlySpan:
		s.fail(c, errBadRequest("hourly usage spans at most 31 days; ask for granularity=day"))
		return
	}
	rows, err := s.docs.Usage(c.Request.Context(), q)
	if err != nil {
		s.fail(c, storeError(err, ""))
		return
	}
	rep := usageReport{TenantID: tenant, AgentID: q.AgentID, From: q.From, To: q.To, Granularity: q.Granularity,
		Rows: []usagePeriod{}, Totals: zeroMetrics()}
	for _, r := range rows {
		if n := len(rep.Rows); n == 0 || !rep.Rows[n-1].Period.Equal(r.Period) {
			rep.Rows = append(rep.Rows, usagePeriod{Period: r.Period, Metrics: zeroMetrics()})
		}
		rep.Rows[len(rep.Rows)-1].Metrics[r.Metric] = r.Quantity
		addMetric(rep.Totals, r.Metric, r.Quantity)
	}
	c.JSON(http.StatusOK, rep)
}

// zeroMetrics is every metric at 0.
func zeroMetrics() map[string]int64 {
	m := make(map[string]int64, len(docstore.Metrics))
	for _, k := range docstore.Metrics {
		m[k] = 0
	}
	return m
}

// addMetric adds q to totals: a counter sums, storage_bytes keeps the largest.
func addMetric(totals map[string]int64, metric string, q int64) {
	if metric == docstore.MetricStorageBytes {
		totals[metric] = max(totals[metric], q)
		return
	}
	totals[metric] += q
}

// usageTime parses an RFC 3339 time or a YYYY-MM-DD date (UTC); def when v is empty.
func usageTime(name, v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, errBadRequest(name + " must be an RFC 3339 time (2026-03-04T10:00:00Z) or a date (2026-03-04)")
}

// tenantParam checks a tenant named in an admin route.
func tenantParam(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 128 || strings.ContainsAny(v, ",:\x00") {
		return "", errBadRequest("tenant must be a tenant id of 1-128 characters")
	}
	return v, nil
}

// getInvoice is GET /api/v1/usage/invoice?month=YYYY-MM: each metric's quantity in the month
// (UTC; a current month includes its live hours), unit price (BILLING_PRICES) and amount, and
// the total, in BILLING_CURRENCY. With Accept: text/csv the lines are CSV, the total last.
func (s *Server) getInvoice(c *gin.Context) {
	tenant := tenantOf(c)
	month, err := time.Parse("2006-01", c.Query("month"))
	if err != nil {
		s.fail(c, errBadRequest("month must be YYYY-MM, such as 2026-03"))
		return
	}
	rows, err := s.docs.Usage(c.Request.Context(), docstore.UsageQuery{TenantID: tenant,
		From: month, To: month.AddDate(0, 1, 0), Granularity: docstore.GranularityMonth})
	if err != nil {
		s.fail(c, storeError(err, ""))
		return
	}
	quantities := zeroMetrics()
	for _, r := range rows {
		addMetric(quantities, r.Metric, r.Quantity)
	}
	inv := s.cfg.Billing.price(tenant, month.Format("2006-01"), quantities)
	if c.NegotiateFormat(gin.MIMEJSON, "text/csv") == "text/csv" {
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		_ = w.Write([]string{"metric", "quantity", "unit_price", "amount", "currency"})
		for _, l := range inv.Lines {
			_ = w.Write([]string{l.Metric, strconv.FormatInt(l.Quantity, 10), l.UnitPrice, l.Amount, inv.Currency})
		}
		_ = w.Write([]string{"total", "", "", inv.Total, inv.Currency})
		w.Flush()
		c.Header("Content-Disposition", `attachment; filename="invoice-`+inv.Month+`.csv"`)
		c.Data(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
		return
	}
	c.JSON(http.StatusOK, inv)
}

// quotaBody is the JSON of a tenant's quota; null is unlimited.
type quotaBody struct {
	TenantID string `json:"tenant_id"`
	docstore.Quota
}

func (s *Server) getQuota(c *gin.Context) {
	tenant, err := tenantParam(c.Param("tenant"))
	if err != nil {
		s.fail(c, err)
		return
	}
	q, err := s.docs.GetQuota(c.Request.Context(), tenant)
	if err != nil {
		s.fail(c, storeError(err, ""))
		return
	}
	c.JSON(http.StatusOK, quotaBody{TenantID: tenant, Quota: q})
}

// putQuota replaces a tenant's quota with {"documents_per_month", "embedding_tokens_per_month",
// "storage_bytes"}: non-negative integers, or null (or left out) for unlimited.
func (s *Server) putQuota(c *gin.Context) {
	tenant, err := tenantParam(c.Param("tenant"))
	if err != nil {
		s.fail(c, err)
		return
	}
	var raw map[string]json.RawMessage
	if err := decodeJSON(c, &raw); err != nil {
		s.fail(c, err)
		return
	}
	var q docstore.Quota
	fields := map[string]**int64{"documents_per_month": &q.DocumentsPerMonth,
		"embedding_tokens_per_month": &q.EmbeddingTokensPerMonth, "storage_bytes": &q.StorageBytes}
	for k, v := range raw {
		dst, ok := fields[k]
		if !ok {
			s.fail(c, errBadRequest("unknown field "+strconv.Quote(k)+"; want documents_per_month, embedding_tokens_per_month, storage_bytes"))
			return
		}
		if string(v) == "null" {
			continue
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 0 {
			s.fail(c, errBadRequest(k+" must be a non-negative integer or null"))
			return
		}
		*dst = &n
	}
	if err := s.docs.SetQuota(c.Request.Context(), tenant, q); err != nil {
		s.fail(c, storeError(err, ""))
		return
	}
	s.quotas.note(tenant, q.DocumentsPerMonth != nil || q.EmbeddingTokensPerMonth != nil || q.StorageBytes != nil)
	c.JSON(http.StatusOK, quotaBody{TenantID: tenant, Quota: q})
}

// checkQuota refuses, with 429 quota_exceeded, a submission of n documents that would take
// tenant over a quota; it returns false when it answered. It runs before anything of the
// submission is stored. A tenant without a quota costs no database round trip (see
// quotaTenants). With metering off (Config.NoUsage) it admits everything.
func (s *Server) checkQuota(c *gin.Context, tenant string, n int) bool {
	if s.cfg.NoUsage {
		return true
	}
	ctx := c.Request.Context()
	has, err := s.quotas.has(ctx, s.docs, tenant, s.now())
	if err == nil && has {
		err = s.docs.CheckQuota(ctx, tenant, n, s.now())
	}
	if qe, ok := errors.AsType[*docstore.QuotaExceededError](err); ok {
		s.fail(c, &httpError{http.StatusTooManyRequests, "quota_exceeded", qe.Error()})
		return false
	}
	if err != nil {
		s.log.Error("quota check failed", "tenant_id", tenant, "err", err)
		s.fail(c, errUnavailable)
		return false
	}
	return true
}

// quotaCacheTTL is how long the list of tenants with a quota is used before it is read again:
// a quota set through another API replica applies here within it.
const quotaCacheTTL = 5 * time.Second

// quotaTenants caches which tenants have a quota, read from the database at most once per
// quotaCacheTTL, so that the submissions of tenants without one are not slowed by a quota
// check. A quota set through this replica applies at once.
type quotaTenants struct {
	mu     sync.Mutex
	set    map[string]bool
	readAt time.Time
}

func (q *quotaTenants) has(ctx context.Context, docs *docstore.Store, tenant string, now time.Time) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.set == nil || now.Sub(q.readAt) >= quotaCacheTTL || now.Before(q.readAt) {
		tenants, err := docs.QuotaTenants(ctx)
		if err != nil {
			return false, err
		}
		q.set = make(map[string]bool, len(tenants))
		for _, t := range tenants {
			q.set[t] = true
		}
		q.readAt = now
	}
	return q.set[tenant], nil
}

// note records that tenant has, or no longer has, a quota.
func (q *quotaTenants) note(tenant string, has bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.set == nil {
		return // read in full on the next check
	}
	if has {
		q.set[tenant] = true
	} else {
		delete(q.set, tenant)
	}
}

// usageRollupTaskID is the task id of the usage_rollup job of the hour at: one per hour, so
// API replicas enqueueing it at once record one task (the others find it, or the job stream
// drops their publish as a duplicate).
func usageRollupTaskID(at time.Time) string {
	return "usage_rollup-" + at.UTC().Truncate(time.Hour).Format("2006-01-02T15")
}

// RunUsageRollup drives the hourly usage roll-up until a schedule does: it enqueues a
// usage_rollup job (medium queue, run by a worker) at start and then docstore.RollupSettle past
// each hour, and reads the roll-up's watermark every minute for
// quire_usage_rollup_lag_seconds. It returns when ctx ends.
func (s *Server) RunUsageRollup(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	due := s.now()
	for {
		if now := s.now(); !now.Before(due) {
			if err := s.EnqueueUsageRollup(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("usage roll-up: enqueue failed; the next hour's job covers this one", "err", err)
			}
			due = now.Truncate(time.Hour).Add(time.Hour + docstore.RollupSettle)
		}
		if err := s.RefreshUsageWatermark(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("usage roll-up: read the watermark", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// EnqueueUsageRollup enqueues the usage_rollup job of the current hour, unless it is recorded
// already. Whichever worker runs it rolls up every hour due by then.
func (s *Server) EnqueueUsageRollup(ctx context.Context) error {
	id := usageRollupTaskID(s.now().Add(-docstore.RollupSettle))
	if _, _, err := s.docs.GetTask(ctx, job.SystemTenant, id); err == nil {
		return nil
	} else if !errors.Is(err, job.ErrNotFound) {
		return err
	}
	j := &job.Job{TaskID: id, Kind: job.KindUsageRollup, TenantID: job.SystemTenant, AgentID: "usage", Priority: job.PriorityMedium}
	if _, err := s.taskQueue.Enqueue(ctx, jobqueue.Enqueue{Job: j, Message: "queued: usage roll-up", DropDuplicate: true}); err != nil {
		return fmt.Errorf("api: enqueue usage roll-up %s: %w", id, err)
	}
	return nil
}

// RefreshUsageWatermark reads the roll-up's watermark for quire_usage_rollup_lag_seconds.
func (s *Server) RefreshUsageWatermark(ctx context.Context) error {
	wm, ok, err := s.docs.UsageWatermark(ctx)
	if err != nil || !ok {
		return err
	}
	s.rollupWatermark.Store(wm.UnixNano())
	return nil
}

// rollupLag is quire_usage_rollup_lag_seconds: how far the roll-up's watermark is behind the
// clock; 0 before the first roll-up.
func (s *Server) rollupLag() float64 {
	wm := s.rollupWatermark.Load()
	if wm == 0 {
		return 0
	}
	return s.now().Sub(time.Unix(0, wm)).Seconds()
}
