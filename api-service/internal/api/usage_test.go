package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/api-service/internal/api"
	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/pgtest"
	"github.com/quirehq/quire/shared/quiretest"
	"github.com/quirehq/quire/shared/taskstatus"
)

// usageEnv is env with billing prices and the database's URL, for reading usage tables.
type usageEnv struct {
	*env
	dbURL string
	top   *jobqueue.Topology
}

func newUsageEnv(t *testing.T, billing api.Billing) *usageEnv {
	t.Helper()
	ns := natstest.Run(t)
	nc, js := natstest.Connect(t, ns)
	top, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	url := pgtest.NewDB(t)
	docs, err := docstore.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(docs.Close)
	emb, err := embed.NewLocal(0)
	if err != nil {
		t.Fatal(err)
	}
	a := api.New(api.Config{
		Tokens:     map[string]string{tokenAcme: "acme", tokenOther: "other"},
		AdminToken: tokenAdmin, Billing: billing,
	}, api.Deps{
		NATS: nc, JetStream: js, Uploads: top.Uploads, Statuses: taskstatus.New(top.Tasks, js, time.Hour),
		Docs: docs, Idempotency: top.Idempotency, Embedder: emb, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	t.Cleanup(func() { a.Close(context.Background()) })
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &usageEnv{env: &env{srv: srv, ns: ns, js: js, docs: docs, api: a}, dbURL: url, top: top}
}

func (e *usageEnv) send(t *testing.T, method, token, path, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return do(t, req)
}

// totalsOf returns the totals of a usage report.
func totalsOf(t *testing.T, body map[string]any) map[string]int64 {
	t.Helper()
	raw, ok := body["totals"].(map[string]any)
	if !ok {
		t.Fatalf("no totals in %v", body)
	}
	out := map[string]int64{}
	for k, v := range raw {
		out[k] = int64(v.(float64))
	}
	return out
}

// complete commits document id's results as a worker does: chunks chunks, metered with u.
func complete(t *testing.T, docs *docstore.Store, id int64, chunks int, u docstore.Usage) error {
	t.Helper()
	rows := make([]docstore.Chunk, chunks)
	for i := range rows {
		rows[i] = docstore.Chunk{Ordinal: i, Content: fmt.Sprintf("cooling pump section %d", i), TokenCount: 4}
	}
	return docs.Complete(t.Context(), id, docstore.Completion{Chunks: rows, Usage: u})
}

func TestUsageReportsExactlyWhatWasDone(t *testing.T) {
	e := newUsageEnv(t, api.Billing{Currency: "USD"})
	// Three documents with known pages and chunks, committed as the worker commits them.
	want := map[string]int64{"documents": 3, "pages": 0, "bytes_ingested": 0, "chunks": 0, "embedding_tokens": 0, "searches": 2}
	for i, n := range []struct{ pages, chunks int }{{1, 2}, {5, 3}, {12, 4}} {
		content := []byte(strings.Repeat("pump ", 10*(i+1)))
		resp, up := e.upload(t, tokenAcme, "7", fmt.Sprintf("doc%d.txt", i), content, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("upload = %d %v", resp.StatusCode, up)
		}
		u := docstore.Usage{Pages: n.pages, Bytes: int64(len(content)), EmbeddingTokens: 4 * n.chunks}
		if err := complete(t, e.docs, int64(up["id"].(float64)), n.chunks, u); err != nil {
			t.Fatal(err)
		}
		want["pages"] += int64(n.pages)
		want["chunks"] += int64(n.chunks)
		want["bytes_ingested"] += int64(len(content))
		want["embedding_tokens"] += int64(4 * n.chunks)
	}
	// A cancelled task's commit is refused and counts nothing.
	_, up := e.upload(t, tokenAcme, "7", "cancelled.txt", []byte("cancel me\n"), nil)
	if resp, out := e.send(t, http.MethodDelete, tokenAcme, "/api/v1/tasks/"+up["task_id"].(string), ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("cancel = %d %v", resp.StatusCode, out)
	}
	if err := complete(t, e.docs, int64(up["id"].(float64)), 9, docstore.Usage{Pages: 99, Bytes: 99, EmbeddingTokens: 99}); err == nil {
		t.Fatal("commit of a cancelled document succeeded")
	}
	for range 2 {
		if resp, out := e.get(t, tokenAcme, "/api/v1/agents/7/search?q=pump"); resp.StatusCode != http.StatusOK {
			t.Fatalf("search = %d %v", resp.StatusCode, out)
		}
	}
	check := func(t *testing.T, body map[string]any) {
		t.Helper()
		got := totalsOf(t, body)
		storage := got["storage_bytes"]
		delete(got, "storage_bytes")
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("usage totals = %v, want %v", got, want)
		}
		// 9 chunks of "cooling pump section N" (22 bytes each).
		if storage != 9*22 {
			t.Fatalf("storage_bytes = %d, want %d", storage, 9*22)
		}
	}
	resp, body := e.get(t, tokenAcme, "/api/v1/usage?granularity=day")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("usage = %d %v", resp.StatusCode, body)
	}
	check(t, body)
	if rows := body["rows"].([]any); len(rows) != 1 {
		t.Fatalf("daily rows = %v, want today's only", rows)
	}
	_, body = e.get(t, tokenAdmin, "/api/v1/admin/usage?tenant=acme&granularity=month")
	check(t, body)
	// The hour rolled up (the clock moved on): the same numbers, from usage_hourly now.
	if _, err := e.docs.RollupUsage(t.Context(), time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, body = e.get(t, tokenAcme, "/api/v1/usage?granularity=hour&from="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)+
		"&to="+time.Now().Add(3*time.Hour).UTC().Format(time.RFC3339))
	check(t, body)

	// Another tenant, and another agent, used nothing.
	_, body = e.get(t, tokenOther, "/api/v1/usage")
	for k, v := range totalsOf(t, body) {
		if v != 0 {
			t.Errorf("other tenant's %s = %d, want 0", k, v)
		}
	}
	_, body = e.get(t, tokenAcme, "/api/v1/usage?agent_id=8")
	if got := totalsOf(t, body)["documents"]; got != 0 {
		t.Errorf("agent 8's documents = %d, want 0", got)
	}
	for _, bad := range []string{"granularity=week", "from=yesterday", "from=2026-03-05&to=2026-03-04", "from=2025-01-01&to=2026-03-01", "from=2026-01-01&to=2026-03-01&granularity=hour", "agent_id=a%20b"} {
		if resp, body := e.get(t, tokenAcme, "/api/v1/usage?"+bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("usage?%s = %d %v, want 400", bad, resp.StatusCode, body)
		}
	}
	if resp, _ := e.get(t, tokenAdmin, "/api/v1/admin/usage"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("admin usage without a tenant = %d, want 400", resp.StatusCode)
	}
}

// counts is what a refused submission must not have changed.
type counts struct{ documents, objects, messages int }

func (e *usageEnv) counts(t *testing.T, tenant string) counts {
	t.Helper()
	docs, err := e.docs.ListDocuments(t.Context(), docstore.ListFilter{TenantID: tenant, AgentID: "7", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := e.top.Uploads.List(t.Context())
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		t.Fatal(err)
	}
	var msgs uint64
	for _, s := range []string{"JOBS_HIGH", "JOBS_MEDIUM", "JOBS_LOW"} {
		msgs += quiretest.StreamMsgs(t, e.js, s)
	}
	return counts{len(docs), len(objs), int(msgs)}
}

func TestQuotaRefusesBeforeAnythingIsStored(t *testing.T) {
	e := newUsageEnv(t, api.Billing{Currency: "USD"})
	resp, body := e.send(t, http.MethodPut, tokenAdmin, "/api/v1/admin/tenants/acme/quota", `{"documents_per_month":1,"storage_bytes":null}`)
	if resp.StatusCode != http.StatusOK || body["documents_per_month"] != 1.0 || body["storage_bytes"] != nil {
		t.Fatalf("PUT quota = %d %v", resp.StatusCode, body)
	}
	if resp, body := e.get(t, tokenAdmin, "/api/v1/admin/tenants/acme/quota"); body["documents_per_month"] != 1.0 || body["embedding_tokens_per_month"] != nil {
		t.Fatalf("GET quota = %d %v", resp.StatusCode, body)
	}
	if resp, body := e.upload(t, tokenAcme, "7", "first.txt", []byte("the one document of the month\n"), nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload within the quota = %d %v", resp.StatusCode, body)
	}
	before := e.counts(t, "acme")
	if before != (counts{1, 1, 1}) {
		t.Fatalf("after one upload: %+v", before)
	}
	refused := func(name string, resp *http.Response, body map[string]any) {
		t.Helper()
		e, _ := body["error"].(map[string]any)
		if resp.StatusCode != http.StatusTooManyRequests || e["code"] != "quota_exceeded" ||
			!strings.Contains(e["message"].(string), "documents_per_month") || !strings.Contains(e["message"].(string), "1 used of 1") {
			t.Errorf("%s over the quota = %d %v, want 429 quota_exceeded", name, resp.StatusCode, body)
		}
	}
	resp, body = e.upload(t, tokenAcme, "7", "second.txt", bytes.Repeat([]byte("over the quota\n"), 1000), nil)
	refused("upload", resp, body)
	resp, body = e.send(t, http.MethodPost, tokenAcme, "/api/v1/documents/agent/7/webpage", `{"url":"https://docs.example.com/a"}`)
	refused("webpage", resp, body)
	resp, body = e.send(t, http.MethodPost, tokenAcme, "/api/v1/documents/agent/7/crawl", `{"url":"https://docs.example.com/"}`)
	refused("crawl", resp, body)
	if after := e.counts(t, "acme"); after != before {
		t.Fatalf("refused submissions stored something: %+v, before %+v", after, before)
	}
	// Another tenant is unaffected.
	if resp, body := e.upload(t, tokenOther, "7", "other.txt", []byte("another tenant\n"), nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("other tenant's upload = %d %v", resp.StatusCode, body)
	}
	for _, bad := range []string{`{"documents_per_month":-1}`, `{"documents_per_month":1.5}`, `{"documents":1}`, `[]`} {
		if resp, body := e.send(t, http.MethodPut, tokenAdmin, "/api/v1/admin/tenants/acme/quota", bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("PUT quota %s = %d %v, want 400", bad, resp.StatusCode, body)
		}
	}
	// A refusal is not kept for its Idempotency-Key: the same request passes once the quota allows.
	if resp, body := e.uploadWithKey(t, tokenAcme, "7", "keyed.txt", []byte("keyed upload\n"), nil, "key-1"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("keyed upload over the quota = %d %v", resp.StatusCode, body)
	}
	// Unlimited again.
	if resp, body := e.send(t, http.MethodPut, tokenAdmin, "/api/v1/admin/tenants/acme/quota", `{}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT quota {} = %d %v", resp.StatusCode, body)
	}
	if resp, body := e.uploadWithKey(t, tokenAcme, "7", "keyed.txt", []byte("keyed upload\n"), nil, "key-1"); resp.StatusCode != http.StatusAccepted || resp.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("keyed upload once unlimited = %d %v, want a fresh 202", resp.StatusCode, body)
	}
	if resp, body := e.upload(t, tokenAcme, "7", "third.txt", []byte("unlimited again\n"), nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload without a quota = %d %v", resp.StatusCode, body)
	}
}

func TestInvoiceEqualsHourlyRollupsPricedByHand(t *testing.T) {
	billing, err := api.ParseBilling("documents=0.25, pages=0.001,embedding_tokens=0.0000001,searches=0.003,storage_bytes=0.000000001", "EUR")
	if err != nil {
		t.Fatal(err)
	}
	e := newUsageEnv(t, billing)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	// Storage: one stored document (committed without metering, so it adds no events).
	storeDoc(t, e.docs, "acme", "7", "kept.txt", "Chunks kept in storage count as storage bytes.")
	march := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	insert := func(tenant, metric string, q int64, at time.Time) {
		if _, err := conn.Exec(ctx, `INSERT INTO usage_events (tenant_id, agent_id, `+pgx.Identifier{metric}.Sanitize()+`, occurred_at) VALUES ($1, '7', $2, $3)`,
			tenant, q, at); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		at := march.Add(time.Duration(i*17) * time.Hour).Add(time.Duration(i) * time.Minute)
		insert("acme", "documents", 1, at)
		insert("acme", "pages", int64(3+i%7), at)
		insert("acme", "embedding_tokens", int64(1000+37*i), at)
		if i%3 == 0 {
			insert("acme", "searches", 2, at)
		}
		insert("other", "documents", 5, at) // another tenant's
	}
	insert("acme", "documents", 100, march.AddDate(0, 1, 0).Add(10*time.Minute)) // April's
	if _, err := e.docs.RollupUsage(ctx, march.AddDate(0, 1, 1)); err != nil {
		t.Fatal(err)
	}

	// By hand: March's usage_hourly rows of acme, each counter summed and storage at its peak,
	// times its price.
	rows, err := conn.Query(ctx, `SELECT metric, quantity FROM usage_hourly WHERE tenant_id = 'acme' AND hour >= $1 AND hour < $2`, march, march.AddDate(0, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	quantity := map[string]int64{}
	hours := 0
	for rows.Next() {
		var m string
		var q int64
		if err := rows.Scan(&m, &q); err != nil {
			t.Fatal(err)
		}
		if m == "storage_bytes" {
			quantity[m] = max(quantity[m], q)
			hours++
		} else {
			quantity[m] += q
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if hours != 31*24 || quantity["documents"] != 40 {
		t.Fatalf("March rolled up into %d storage hours and %d documents, want 744 and 40", hours, quantity["documents"])
	}
	price := map[string]string{"documents": "0.25", "pages": "0.001", "embedding_tokens": "0.0000001", "searches": "0.003", "storage_bytes": "0.000000001"}
	rat := func(s string) *big.Rat {
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("not a decimal: %q", s)
		}
		return r
	}
	wantAmount := map[string]*big.Rat{}
	wantTotal := new(big.Rat)
	for m, q := range quantity {
		p := "0"
		if v, ok := price[m]; ok {
			p = v
		}
		a := new(big.Rat).Mul(rat(p), new(big.Rat).SetInt64(q))
		wantAmount[m] = a
		wantTotal.Add(wantTotal, a)
	}

	resp, body := e.get(t, tokenAcme, "/api/v1/usage/invoice?month=2026-03")
	if resp.StatusCode != http.StatusOK || body["currency"] != "EUR" || body["month"] != "2026-03" {
		t.Fatalf("invoice = %d %v", resp.StatusCode, body)
	}
	lines := body["lines"].([]any)
	if len(lines) != len(docstore.Metrics) {
		t.Fatalf("invoice lines = %v, want one per metric", lines)
	}
	for _, l := range lines {
		l := l.(map[string]any)
		m := l["metric"].(string)
		if q := int64(l["quantity"].(float64)); q != quantity[m] {
			t.Errorf("%s quantity = %d, want %d", m, q, quantity[m])
		}
		want := wantAmount[m]
		if want == nil {
			want = new(big.Rat)
		}
		if got := rat(l["amount"].(string)); got.Cmp(want) != 0 {
			t.Errorf("%s amount = %s, want %s", m, l["amount"], want.FloatString(12))
		}
	}
	if got := rat(body["total"].(string)); got.Cmp(wantTotal) != 0 || wantTotal.Sign() == 0 {
		t.Fatalf("invoice total = %s, want %s", body["total"], wantTotal.FloatString(12))
	}

	// The same as CSV.
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/v1/usage/invoice?month=2026-03", nil)
	req.Header.Set("Authorization", "Bearer "+tokenAcme)
	req.Header.Set("Accept", "text/csv")
	cresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(cresp.Body)
	_ = cresp.Body.Close()
	if !strings.HasPrefix(cresp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV invoice content type %q", cresp.Header.Get("Content-Type"))
	}
	recs, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1]
	if len(recs) != len(docstore.Metrics)+2 || last[0] != "total" || rat(last[3]).Cmp(wantTotal) != 0 || last[4] != "EUR" {
		t.Fatalf("CSV invoice:\n%s", raw)
	}
	// Another tenant's invoice is its own.
	_, body = e.get(t, tokenOther, "/api/v1/usage/invoice?month=2026-03")
	if l := body["lines"].([]any)[0].(map[string]any); l["quantity"] != 200.0 {
		t.Fatalf("other tenant's documents = %v, want 200", l)
	}
	if resp, _ := e.get(t, tokenAcme, "/api/v1/usage/invoice?month=2026-13"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("month 2026-13 = %d, want 400", resp.StatusCode)
	}
}

// The API enqueues one usage_rollup job per hour (a worker runs it), however often it is asked,
// and reports the roll-up's lag.
func TestUsageRollupIsEnqueuedOncePerHourAndItsLagReported(t *testing.T) {
	e := newUsageEnv(t, api.Billing{Currency: "USD"})
	for range 3 {
		if err := e.api.EnqueueUsageRollup(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := quiretest.StreamMsgs(t, e.js, "JOBS_MEDIUM"); n != 1 {
		t.Fatalf("JOBS_MEDIUM holds %d jobs, want one usage_rollup job", n)
	}
	conn, err := pgx.Connect(t.Context(), e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(t.Context()) }()
	var tasks int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM tasks WHERE kind = 'usage_rollup' AND tenant_id = '_system' AND priority = 'medium'`).Scan(&tasks); err != nil {
		t.Fatal(err)
	}
	if tasks != 1 {
		t.Fatalf("%d usage_rollup tasks recorded, want 1", tasks)
	}
	// What the worker's handler does, then the API's minutely read of the watermark.
	if _, err := e.docs.RollupUsage(t.Context(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.api.RefreshUsageWatermark(t.Context()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	lag := -1.0
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "quire_usage_rollup_lag_seconds "); ok {
			if _, err := fmt.Sscan(v, &lag); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The watermark is the start of an hour that ended at least RollupSettle ago.
	if lag < docstore.RollupSettle.Seconds() || lag > (time.Hour+docstore.RollupSettle).Seconds()+60 {
		t.Fatalf("quire_usage_rollup_lag_seconds = %v in\n%s", lag, raw)
	}
}

func TestParseBilling(t *testing.T) {
	for _, c := range []struct {
		prices, currency, wantErr string
	}{
		{"documents=0.01,embedding_tokens=0.00000002", "USD", ""},
		{"", "", ""},
		{"documents=1", "usd", "BILLING_CURRENCY"},
		{"documents", "USD", "BILLING_PRICES"},
		{"widgets=1", "USD", "BILLING_PRICES: unknown metric"},
		{"documents=-1", "USD", "BILLING_PRICES"},
		{"documents=1e", "USD", "BILLING_PRICES"},
		{"documents=1,documents=2", "USD", "priced twice"},
	} {
		b, err := api.ParseBilling(c.prices, c.currency)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("ParseBilling(%q, %q) = %v", c.prices, c.currency, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("ParseBilling(%q, %q) = %v, want an error with %q", c.prices, c.currency, err, c.wantErr)
		case c.wantErr == "" && b.Currency == "":
			t.Errorf("ParseBilling(%q, %q): no currency", c.prices, c.currency)
		}
	}
}

func TestUIUsageChartsEveryTenant(t *testing.T) {
	e := newUsageEnv(t, api.Billing{})
	b := e.browser(t)
	b.signIn()
	for i := range 2 {
		_, up := e.upload(t, tokenAcme, "7", fmt.Sprintf("doc%d.txt", i), fmt.Appendf(nil, "pump %d\n", i), nil)
		if err := complete(t, e.docs, int64(up["id"].(float64)), 2, docstore.Usage{Pages: 1, Bytes: 5, EmbeddingTokens: 8}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.docs.RecordSearch(t.Context(), "other", "9"); err != nil {
		t.Fatal(err)
	}
	resp, body := b.get("/ui/usage")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{`data-tenant="acme"`, `data-tenant="other"`, `<svg class="usage-chart"`, `data-quantity="2"`,
		`data-metric="documents">2<`, `data-metric="embedding_tokens">16<`, `data-metric="searches">1<`} {
		if !strings.Contains(body, want) {
			t.Errorf("usage page lacks %q:\n%s", want, body)
		}
	}
	if n := strings.Count(body, "<rect "); n != 2*24 {
		t.Errorf("usage page has %d bars, want 24 per tenant", n)
	}
	resp, body = b.get("/ui/usage?metric=searches")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `data-quantity="1"`) || strings.Contains(body, `data-quantity="2"`) {
		t.Errorf("searches chart:\n%s", body)
	}
	resp, body = b.get("/ui/usage?metric=storage_bytes")
	wantStatus(t, resp, body, http.StatusBadRequest)
}
