package docstore_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

// completeDoc inserts a document of tenant with task taskID and completes it with chunks
// chunks and usage u.
func completeDoc(t *testing.T, s *docstore.Store, tenant, taskID string, chunks int, u docstore.Usage) *docstore.Document {
	t.Helper()
	d := newDoc(tenant)
	d.TaskID = taskID
	if err := s.InsertDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(t.Context(), d.ID, docstore.Completion{Chunks: makeChunks(chunks), Usage: u}); err != nil {
		t.Fatal(err)
	}
	return d
}

func makeChunks(n int) []docstore.Chunk {
	out := make([]docstore.Chunk, n)
	for i := range out {
		out[i] = docstore.Chunk{Ordinal: i, Content: fmt.Sprintf("chunk %d", i), TokenCount: 2}
	}
	return out
}

// totals sums s's usage of tenant over all time into metric → quantity.
func totals(t *testing.T, s *docstore.Store, tenant, agent string) map[string]int64 {
	t.Helper()
	rows, err := s.Usage(t.Context(), docstore.UsageQuery{TenantID: tenant, AgentID: agent,
		From: time.Now().Add(-24 * time.Hour), To: time.Now().Add(time.Hour), Granularity: docstore.GranularityMonth})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		if r.Metric == docstore.MetricStorageBytes {
			out[r.Metric] = max(out[r.Metric], r.Quantity)
		} else {
			out[r.Metric] += r.Quantity
		}
	}
	return out
}

func TestCompleteMetersUsageOncePerTask(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	completeDoc(t, s, "acme", "t1", 3, docstore.Usage{Pages: 2, Bytes: 100, EmbeddingTokens: 6})
	d := completeDoc(t, s, "acme", "t2", 1, docstore.Usage{Pages: 1, Bytes: 50, EmbeddingTokens: 2})
	// A second commit of the same task (a duplicate delivery) replaces the chunks and counts
	// nothing more.
	if err := s.Complete(ctx, d.ID, docstore.Completion{Chunks: makeChunks(1), Usage: docstore.Usage{Pages: 1, Bytes: 50, EmbeddingTokens: 2}}); err != nil {
		t.Fatal(err)
	}
	// A cancelled document's commit is refused and counts nothing.
	c := newDoc("acme")
	c.TaskID = "t3"
	if err := s.InsertDocument(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.Cancel(ctx, "acme", c.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, c.ID, docstore.Completion{Chunks: makeChunks(5), Usage: docstore.Usage{Pages: 9, Bytes: 9, EmbeddingTokens: 9}}); !errors.Is(err, job.ErrConflict) {
		t.Fatalf("Complete of a cancelled document = %v, want ErrConflict", err)
	}
	// Metering off: the zero Usage records nothing.
	completeDoc(t, s, "acme", "t4", 2, docstore.Usage{})
	for range 2 {
		if err := s.RecordSearch(ctx, "acme", "7"); err != nil {
			t.Fatal(err)
		}
	}
	completeDoc(t, s, "other", "o1", 4, docstore.Usage{Pages: 4, Bytes: 4, EmbeddingTokens: 8})

	got := totals(t, s, "acme", "")
	want := map[string]int64{"documents": 2, "pages": 3, "bytes_ingested": 150, "chunks": 4, "embedding_tokens": 8, "searches": 2,
		// "chunk 0".."chunk 1" of t4 and t2's, t1's three: 7 bytes each.
		"storage_bytes": 7 * (3 + 1 + 2)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("usage of acme = %v, want %v", got, want)
	}
	if got := totals(t, s, "acme", "other-agent"); len(got) != 0 {
		t.Fatalf("usage of an agent with none = %v", got)
	}
	if got := totals(t, s, "other", "")["documents"]; got != 1 {
		t.Fatalf("documents of other = %d, want 1", got)
	}
}

// insertEvent writes a usage event at a chosen time, as the work of that hour would have.
func insertEvent(t *testing.T, conn *pgx.Conn, tenant, metric string, q int64, at time.Time) {
	t.Helper()
	if _, err := conn.Exec(t.Context(), `INSERT INTO usage_events (tenant_id, agent_id, `+pgx.Identifier{metric}.Sanitize()+`, occurred_at) VALUES ($1, '7', $2, $3)`,
		tenant, q, at); err != nil {
		t.Fatal(err)
	}
}

func TestRollupAfterAGapCoversEveryHourOnce(t *testing.T) {
	s, url := open(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	h0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	// The first roll-up, at 10:30, starts the watermark at the oldest event's hour and rolls
	// nothing: 10:00 has not ended.
	insertEvent(t, conn, "acme", "documents", 1, h0.Add(5*time.Minute))
	res, err := s.RollupUsage(ctx, h0.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Watermark.Equal(h0) || res.Rows != 0 {
		t.Fatalf("first roll-up = %+v, want watermark %v and no rows", res, h0)
	}
	// Events in 10:00, 11:00 and 12:00, and one in 13:00 still running; no roll-up until 13:30.
	insertEvent(t, conn, "acme", "documents", 2, h0.Add(50*time.Minute))
	insertEvent(t, conn, "acme", "searches", 4, h0.Add(time.Hour+time.Minute))
	insertEvent(t, conn, "acme", "documents", 3, h0.Add(2*time.Hour+59*time.Minute))
	insertEvent(t, conn, "acme", "documents", 7, h0.Add(3*time.Hour+10*time.Minute))
	insertEvent(t, conn, "other", "documents", 5, h0.Add(2*time.Hour))

	res, err = s.RollupUsage(ctx, h0.Add(3*time.Hour+30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !res.From.Equal(h0) || !res.To.Equal(h0.Add(3*time.Hour)) || !res.Watermark.Equal(h0.Add(3*time.Hour)) {
		t.Fatalf("roll-up after the gap = %+v, want hours 10:00-13:00", res)
	}
	hourly := func() map[string]int64 {
		rows, err := conn.Query(ctx, `SELECT tenant_id, metric, hour, quantity FROM usage_hourly ORDER BY 1, 2, 3`)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for rows.Next() {
			var tenant, metric string
			var hour time.Time
			var q int64
			if err := rows.Scan(&tenant, &metric, &hour, &q); err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprintf("%s %s %s", tenant, metric, hour.UTC().Format("15:04"))] = q
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := map[string]int64{"acme documents 10:00": 3, "acme searches 11:00": 4, "acme documents 12:00": 3, "other documents 12:00": 5}
	if got := hourly(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("usage_hourly = %v, want %v", got, want)
	}
	// A second run in the same hour has nothing to do; the rows stay as they are.
	res, err = s.RollupUsage(ctx, h0.Add(3*time.Hour+50*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 0 || !res.From.Equal(res.To) {
		t.Fatalf("repeated roll-up = %+v, want nothing done", res)
	}
	// Re-rolling hours replaces their rows rather than adding to them.
	if _, err := s.RollupHours(ctx, h0, h0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := hourly(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("usage_hourly after a re-roll = %v, want %v", got, want)
	}
	// The usage report: rolled-up hours from usage_hourly, the running hour live.
	rows, err := s.Usage(ctx, docstore.UsageQuery{TenantID: "acme", From: h0, To: h0.Add(4 * time.Hour), Granularity: docstore.GranularityHour})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s %s %d", r.Period.Format("15:04"), r.Metric, r.Quantity))
	}
	if w := "[10:00 documents 3 11:00 searches 4 12:00 documents 3 13:00 documents 7]"; fmt.Sprint(got) != w {
		t.Fatalf("hourly usage = %v, want %s", got, w)
	}
	rows, err = s.Usage(ctx, docstore.UsageQuery{TenantID: "acme", From: h0, To: h0.Add(4 * time.Hour), Granularity: docstore.GranularityDay})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Metric != "documents" || rows[0].Quantity != 13 || rows[1].Quantity != 4 {
		t.Fatalf("daily usage = %+v, want documents 13 and searches 4", rows)
	}
	if _, err := s.Usage(ctx, docstore.UsageQuery{TenantID: "acme", Granularity: "week"}); !errors.Is(err, docstore.ErrBadQuery) {
		t.Fatalf("granularity week = %v, want ErrBadQuery", err)
	}
}

func TestCheckQuota(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	if err := s.CheckQuota(ctx, "acme", 1, time.Now()); err != nil {
		t.Fatalf("no quota = %v", err)
	}
	two, zero := int64(2), int64(0)
	if err := s.SetQuota(ctx, "acme", docstore.Quota{DocumentsPerMonth: &two}); err != nil {
		t.Fatal(err)
	}
	if q, err := s.GetQuota(ctx, "acme"); err != nil || q.DocumentsPerMonth == nil || *q.DocumentsPerMonth != 2 || q.StorageBytes != nil {
		t.Fatalf("GetQuota = %+v, %v", q, err)
	}
	completeDoc(t, s, "acme", "a1", 1, docstore.Usage{Pages: 1})
	if err := s.CheckQuota(ctx, "acme", 1, time.Now()); err != nil {
		t.Fatalf("1 of 2 used = %v", err)
	}
	// A queued document counts toward the quota too.
	q := newDoc("acme")
	q.TaskID = "a2"
	if err := s.InsertDocument(ctx, q); err != nil {
		t.Fatal(err)
	}
	var qe *docstore.QuotaExceededError
	if err := s.CheckQuota(ctx, "acme", 1, time.Now()); !errors.As(err, &qe) || qe.Quota != "documents_per_month" || qe.Used != 2 || qe.Limit != 2 {
		t.Fatalf("2 of 2 used = %v", err)
	}
	if err := s.CheckQuota(ctx, "other", 1, time.Now()); err != nil {
		t.Fatalf("another tenant = %v", err)
	}
	if err := s.SetQuota(ctx, "acme", docstore.Quota{StorageBytes: &zero}); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckQuota(ctx, "acme", 1, time.Now()); !errors.As(err, &qe) || qe.Quota != "storage_bytes" || qe.Used != 7 {
		t.Fatalf("storage over quota = %v", err)
	}
	if err := s.SetQuota(ctx, "acme", docstore.Quota{}); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckQuota(ctx, "acme", 1, time.Now()); err != nil {
		t.Fatalf("quota removed = %v", err)
	}
}

func TestReembeddingMetersItsTokensOncePerTask(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	d := completeDoc(t, s, "acme", "first", 3, docstore.Usage{Pages: 1, Bytes: 10, EmbeddingTokens: 6})
	if err := s.Requeue(ctx, "acme", d.ID, "reindex-1", "high"); err != nil {
		t.Fatal(err)
	}
	vecs := [][]float32{{1}, {2}, {3}}
	for range 2 { // a redelivered re-embedding commits again and counts nothing more
		if err := s.ReplaceEmbeddings(ctx, d.ID, "m2", []int{0, 1, 2}, vecs); err != nil {
			t.Fatal(err)
		}
	}
	got := totals(t, s, "acme", "")
	if got["embedding_tokens"] != 6+6 || got["documents"] != 1 || got["chunks"] != 3 {
		t.Fatalf("usage after a re-embedding = %v, want 12 embedding tokens, 1 document, 3 chunks", got)
	}
}
