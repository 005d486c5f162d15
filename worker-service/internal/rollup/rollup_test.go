package rollup_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/pgtest"
	"github.com/quirehq/quire/worker-service/internal/rollup"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// A usage_rollup job run after a gap rolls up every hour of the gap; a duplicate delivery of
// it changes nothing.
func TestHandlerRollsUpEveryHourDue(t *testing.T) {
	url := pgtest.NewDB(t)
	docs, err := docstore.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(docs.Close)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(t.Context()) }()
	h0 := time.Date(2026, 5, 6, 7, 0, 0, 0, time.UTC)
	for i := range 3 {
		if _, err := conn.Exec(t.Context(), `INSERT INTO usage_events (tenant_id, agent_id, documents, occurred_at) VALUES ('acme', '7', $1, $2)`,
			i+1, h0.Add(time.Duration(i)*time.Hour+10*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	clock := h0.Add(3*time.Hour + 5*time.Minute)
	h := &rollup.Handler{Store: docs, Now: func() time.Time { return clock }}
	j := &job.Job{TaskID: "usage_rollup-2026-05-06T10", Kind: job.KindUsageRollup, TenantID: job.SystemTenant, AgentID: "usage", Priority: job.PriorityMedium}
	for range 2 {
		if err := h.Handle(t.Context(), j); err != nil {
			t.Fatal(err)
		}
	}
	var rows, sum int64
	if err := conn.QueryRow(t.Context(), `SELECT count(*), coalesce(sum(quantity), 0) FROM usage_hourly WHERE metric = 'documents'`).Scan(&rows, &sum); err != nil {
		t.Fatal(err)
	}
	if rows != 3 || sum != 6 {
		t.Fatalf("usage_hourly: %d rows summing to %d, want 3 hours summing to 6", rows, sum)
	}
	if wm, ok, err := docs.UsageWatermark(t.Context()); err != nil || !ok || !wm.Equal(h0.Add(3*time.Hour)) {
		t.Fatalf("watermark = %v %v %v, want %v", wm, ok, err, h0.Add(3*time.Hour))
	}
}
