package api_test

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

// doRaw sends req and returns the response with its body.
func doRaw(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, raw
}

// multipartBody builds an upload body with one file part.
func multipartBody(t *testing.T, filename string, content []byte) (*bytes.Buffer, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &body, mw.FormDataContentType()
}

// authRoute is one /api/v1 route of the auth table.
type authRoute struct {
	method, template string
	// path is the concrete path, to a resource of tenant acme where the route has one.
	path string
	// body makes a fresh request body and its content type; nil for none.
	body func() (io.Reader, string)
	// want is the success status for the owner (tenant acme, or the admin on admin routes).
	want int
	// owned routes name one resource of acme: another tenant gets 404. On the others (an
	// agent's lists and search) another tenant succeeds but sees none of acme's data, which
	// notLeaked checks.
	owned     bool
	notLeaked func(t *testing.T, raw []byte)
	// ownerSees is in the owner's answer (so that notLeaked's check means something).
	ownerSees string
	admin     bool
}

// noTenant fails when an answer names tenant.
func noTenant(tenant string) func(t *testing.T, raw []byte) {
	return func(t *testing.T, raw []byte) {
		if strings.Contains(string(raw), `"`+tenant+`"`) {
			t.Errorf("another tenant's answer names %s: %s", tenant, raw)
		}
	}
}

func jsonBody(s string) func() (io.Reader, string) {
	return func() (io.Reader, string) { return strings.NewReader(s), "application/json" }
}

// TestEveryRouteAuthTable runs every /api/v1 route with no token, a wrong token, another
// tenant's token and the owner's, on real resources, and checks each answer against the
// OpenAPI document. A route registered without a row here fails the test.
func TestEveryRouteAuthTable(t *testing.T) {
	e := newEnv(t, 0)
	sc := specChecker{loadSpec(t)}

	// Tenant acme's resources, made through the API and the stores as a worker would.
	done := storeDoc(t, e.docs, "acme", "7", "pumps.txt", "The cooling pump must be inspected every week.")
	reindexed := storeDoc(t, e.docs, "acme", "7", "valves.txt", "Valves are checked every month.")
	_, up := e.upload(t, tokenAcme, "7", "queued.txt", []byte("queued for cancelling\n"), nil)
	cancelTask := up["task_id"].(string)
	_, up = e.upload(t, tokenAcme, "7", "delete-me.txt", []byte("to be deleted\n"), nil)
	deleteDoc := jsonNumber(up["id"])
	hook := &docstore.Webhook{TenantID: "acme", URL: "https://hooks.example.com/quire", Events: []string{"task.failed"}, Secret: "whsec_acme"}
	if err := e.docs.CreateWebhook(t.Context(), hook); err != nil {
		t.Fatal(err)
	}
	batchDocs := []*docstore.Document{
		{TenantID: "acme", AgentID: "7", Kind: job.KindWebpage, URL: "https://docs.example.com/b1", TaskID: "route-batch-1", Priority: "medium"},
		{TenantID: "acme", AgentID: "7", Kind: job.KindWebpage, URL: "https://docs.example.com/b2", TaskID: "route-batch-2", Priority: "medium"},
	}
	for _, d := range batchDocs {
		if payload, err := (&job.Job{TaskID: d.TaskID, Kind: job.KindWebpage, TenantID: "acme", AgentID: "7", Priority: job.PriorityMedium, URL: d.URL}).Encode(); err == nil {
			d.Job = payload
		}
	}
	if err := e.docs.InsertBatch(t.Context(), &docstore.Batch{ID: "bat_route", TenantID: "acme", AgentID: "7"}, batchDocs); err != nil {
		t.Fatal(err)
	}
	for _, d := range batchDocs {
		if err := e.docs.FinishTask(t.Context(), d.TaskID, job.StateFailure, 1, "http status 404"); err != nil {
			t.Fatal(err)
		}
	}
	e.deadLetter(t, "acme", "dead-retry")
	e.deadLetter(t, "acme", "dead-delete")
	const retrySeq, deleteSeq = "1", "2"
	newSchedule := func(name string) string {
		_, out := e.callJSON(t, http.MethodPost, tokenAcme, "/api/v1/schedules",
			`{"name":"`+name+`","cron":"0 3 * * *","task":{"kind":"webpage","agent_id":"7","url":"https://docs.example.com/a"}}`)
		id, _ := out["id"].(string)
		if id == "" {
			t.Fatalf("create schedule: %v", out)
		}
		return id
	}
	sched, schedDelete := newSchedule("nightly-acme-schedule"), newSchedule("to delete")

	uploadBody := func() (io.Reader, string) { return multipartBody(t, "note.txt", []byte("a note\n")) }
	noDocuments := func(t *testing.T, raw []byte) {
		if strings.Contains(string(raw), "pumps.txt") || strings.Contains(string(raw), "queued.txt") || strings.Contains(string(raw), cancelTask) {
			t.Errorf("another tenant sees acme's documents: %s", raw)
		}
	}
	routes := []authRoute{
		{method: "POST", template: "/api/v1/documents/agent/:agent_id/upload", path: "/api/v1/documents/agent/7/upload", body: uploadBody, want: 202},
		{method: "POST", template: "/api/v1/documents/agent/:agent_id/webpage", path: "/api/v1/documents/agent/7/webpage", body: jsonBody(`{"url":"https://docs.example.com/a"}`), want: 202},
		{method: "POST", template: "/api/v1/documents/agent/:agent_id/crawl", path: "/api/v1/documents/agent/7/crawl", body: jsonBody(`{"url":"https://docs.example.com/","max_pages":3}`), want: 202},
		{method: "POST", template: "/api/v1/documents/agent/:agent_id/batch", path: "/api/v1/documents/agent/7/batch", body: jsonBody(`{"urls":["https://docs.example.com/x"]}`), want: 202, ownerSees: `"batch_id"`},
		{method: "GET", template: "/api/v1/batches/:batch_id", path: "/api/v1/batches/bat_route", want: 200, owned: true, ownerSees: `"state":"FAILURE"`},
		{method: "GET", template: "/api/v1/batches/:batch_id/events", path: "/api/v1/batches/bat_route/events", want: 200, owned: true, ownerSees: `"state":"FAILURE"`},
		{method: "POST", template: "/api/v1/batches/:batch_id/retry", path: "/api/v1/batches/bat_route/retry", want: 202, owned: true, ownerSees: `"retried":2`},
		{method: "DELETE", template: "/api/v1/batches/:batch_id", path: "/api/v1/batches/bat_route", want: 200, owned: true, ownerSees: `"cancelled":2`},
		{method: "GET", template: "/api/v1/documents/agent/:agent_id", path: "/api/v1/documents/agent/7", want: 200, notLeaked: noDocuments, ownerSees: "pumps.txt"},
		{method: "GET", template: "/api/v1/documents/:id", path: fmt.Sprintf("/api/v1/documents/%d", done.ID), want: 200, owned: true},
		{method: "GET", template: "/api/v1/documents/:id/chunks", path: fmt.Sprintf("/api/v1/documents/%d/chunks", done.ID), want: 200, owned: true},
		{method: "POST", template: "/api/v1/documents/:id/reindex", path: fmt.Sprintf("/api/v1/documents/%d/reindex", reindexed.ID), want: 202, owned: true},
		{method: "DELETE", template: "/api/v1/documents/:id", path: "/api/v1/documents/" + deleteDoc, want: 200, owned: true},
		{method: "GET", template: "/api/v1/tasks/:task_id", path: "/api/v1/tasks/" + done.TaskID, want: 200, owned: true},
		{method: "GET", template: "/api/v1/tasks/:task_id/events", path: "/api/v1/tasks/" + done.TaskID + "/events", want: 200, owned: true, ownerSees: `"state":"SUCCESS"`},
		{method: "DELETE", template: "/api/v1/tasks/:task_id", path: "/api/v1/tasks/" + cancelTask, want: 200, owned: true},
		{method: "POST", template: "/api/v1/webhooks", path: "/api/v1/webhooks", body: jsonBody(`{"url":"https://93.184.215.14/hooks/quire"}`), want: 201, ownerSees: `"secret":"whsec_`},
		{method: "GET", template: "/api/v1/webhooks", path: "/api/v1/webhooks", want: 200, ownerSees: "hooks.example.com", notLeaked: func(t *testing.T, raw []byte) {
			if strings.Contains(string(raw), "hooks.example.com") {
				t.Errorf("another tenant sees acme's webhooks: %s", raw)
			}
		}},
		{method: "DELETE", template: "/api/v1/webhooks/:id", path: fmt.Sprintf("/api/v1/webhooks/%d", hook.ID), want: 200, owned: true},
		{method: "GET", template: "/api/v1/dlq", path: "/api/v1/dlq", want: 200, ownerSees: "dead-retry", notLeaked: func(t *testing.T, raw []byte) {
			if strings.Contains(string(raw), "dead-") {
				t.Errorf("another tenant sees acme's dead letters: %s", raw)
			}
		}},
		{method: "POST", template: "/api/v1/dlq/:id/retry", path: "/api/v1/dlq/" + retrySeq + "/retry", want: 202, owned: true},
		{method: "DELETE", template: "/api/v1/dlq/:id", path: "/api/v1/dlq/" + deleteSeq, want: 200, owned: true},
		{method: "GET", template: "/api/v1/agents/:agent_id/search", path: "/api/v1/agents/7/search?q=cooling+pump", want: 200, ownerSees: "inspected every week", notLeaked: func(t *testing.T, raw []byte) {
			if strings.Contains(string(raw), "inspected every week") {
				t.Errorf("another tenant finds acme's chunks: %s", raw)
			}
		}},
		{method: "POST", template: "/api/v1/schedules", path: "/api/v1/schedules", body: jsonBody(`{"name":"hourly","every":"1h","task":{"kind":"crawl","agent_id":"7","url":"https://docs.example.com/"}}`), want: 201},
		{method: "GET", template: "/api/v1/schedules", path: "/api/v1/schedules", want: 200, ownerSees: "nightly-acme-schedule", notLeaked: func(t *testing.T, raw []byte) {
			if strings.Contains(string(raw), "nightly-acme-schedule") {
				t.Errorf("another tenant sees acme's schedules: %s", raw)
			}
		}},
		{method: "GET", template: "/api/v1/schedules/:id", path: "/api/v1/schedules/" + sched, want: 200, owned: true},
		{method: "PATCH", template: "/api/v1/schedules/:id", path: "/api/v1/schedules/" + sched, body: jsonBody(`{"name":"nightly-acme-schedule"}`), want: 200, owned: true},
		{method: "POST", template: "/api/v1/schedules/:id/pause", path: "/api/v1/schedules/" + sched + "/pause", want: 200, owned: true},
		{method: "POST", template: "/api/v1/schedules/:id/resume", path: "/api/v1/schedules/" + sched + "/resume", want: 200, owned: true},
		{method: "POST", template: "/api/v1/schedules/:id/trigger", path: "/api/v1/schedules/" + sched + "/trigger", want: 202, owned: true},
		{method: "GET", template: "/api/v1/schedules/:id/runs", path: "/api/v1/schedules/" + sched + "/runs", want: 200, owned: true},
		{method: "DELETE", template: "/api/v1/schedules/:id", path: "/api/v1/schedules/" + schedDelete, want: 200, owned: true},
		{method: "GET", template: "/api/v1/usage", path: "/api/v1/usage?granularity=day", want: 200, ownerSees: `"tenant_id":"acme"`, notLeaked: noTenant("acme")},
		{method: "GET", template: "/api/v1/usage/invoice", path: "/api/v1/usage/invoice?month=2026-03", want: 200, ownerSees: `"tenant_id":"acme"`, notLeaked: noTenant("acme")},
		{method: "GET", template: "/api/v1/admin/usage", path: "/api/v1/admin/usage?tenant=acme", want: 200, admin: true},
		{method: "GET", template: "/api/v1/admin/tenants/:tenant/quota", path: "/api/v1/admin/tenants/acme/quota", want: 200, admin: true},
		{method: "PUT", template: "/api/v1/admin/tenants/:tenant/quota", path: "/api/v1/admin/tenants/acme/quota", body: jsonBody(`{"documents_per_month":null}`), want: 200, admin: true},
		{method: "POST", template: "/api/v1/agents/:agent_id/search", path: "/api/v1/agents/7/search", body: jsonBody(`{"q":"cooling pump","filter":{"kind":"document"}}`),
			want: 200, ownerSees: "inspected every week", notLeaked: func(t *testing.T, raw []byte) {
				if strings.Contains(string(raw), "inspected every week") {
					t.Errorf("another tenant finds acme's chunks: %s", raw)
				}
			}},
		{method: "PATCH", template: "/api/v1/documents/:id", path: fmt.Sprintf("/api/v1/documents/%d", done.ID), body: jsonBody(`{"metadata":{"team":"ops"}}`), want: 200, owned: true, ownerSees: `"team":"ops"`},
		{method: "GET", template: "/api/v1/queues", path: "/api/v1/queues", want: 200, admin: true},
		{method: "POST", template: "/api/v1/queues/:priority/pause", path: "/api/v1/queues/low/pause", want: 200, admin: true},
		{method: "POST", template: "/api/v1/queues/:priority/resume", path: "/api/v1/queues/low/resume", want: 200, admin: true},
	}

	// Every registered /api/v1 route but the public document has a row.
	rows := map[string]bool{}
	for _, r := range routes {
		rows[r.method+" "+r.template] = true
	}
	for _, r := range e.api.Engine().Routes() {
		if strings.HasPrefix(r.Path, "/api/v1/") && r.Path != "/api/v1/openapi.json" && !rows[r.Method+" "+r.Path] {
			t.Errorf("route %s %s has no row in the auth table", r.Method, r.Path)
		}
	}

	call := func(t *testing.T, r authRoute, auth string) (*http.Response, []byte) {
		var body io.Reader
		var ctype string
		if r.body != nil {
			body, ctype = r.body()
		}
		req, err := http.NewRequest(r.method, e.srv.URL+r.path, body)
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, raw := doRaw(t, req)
		sc.check(t, r.method, r.template, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
		return resp, raw
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.template, func(t *testing.T) {
			for _, c := range []struct{ name, auth string }{
				{"no token", ""},
				{"wrong token", "Bearer wrong-token-0123456789"},
				{"wrong scheme", "Basic " + tokenAcme},
				{"empty bearer", "Bearer "},
			} {
				resp, raw := call(t, r, c.auth)
				if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: %d, WWW-Authenticate %q, body %s; want 401 with a Bearer challenge", c.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), raw)
				}
			}
			other := "Bearer " + tokenOther
			if r.admin {
				other = "Bearer " + tokenAcme // a tenant, not the admin
			}
			resp, raw := call(t, r, other)
			switch {
			case r.admin:
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("tenant token on an admin route: %d %s, want 403", resp.StatusCode, raw)
				}
			case r.owned:
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("other tenant: %d %s, want 404", resp.StatusCode, raw)
				}
			default:
				if resp.StatusCode != r.want {
					t.Errorf("other tenant on its own agent data: %d %s, want %d", resp.StatusCode, raw, r.want)
				}
				if r.notLeaked != nil {
					r.notLeaked(t, raw)
				}
			}
			owner := "Bearer " + tokenAcme
			if r.admin {
				owner = "Bearer " + tokenAdmin
			}
			resp, raw = call(t, r, owner)
			if resp.StatusCode != r.want {
				t.Errorf("owner: %d %s, want %d", resp.StatusCode, raw, r.want)
			}
			if !strings.Contains(string(raw), r.ownerSees) {
				t.Errorf("owner's answer lacks %q: %s", r.ownerSees, raw)
			}
		})
	}
}
