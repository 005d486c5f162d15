package docstore_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

// deliveryArgs is the payload of a webhook delivery task as the outbox trigger writes it.
type deliveryArgs struct {
	TaskID    string `json:"-"`
	URL       string `json:"url"`
	WebhookID int64  `json:"webhook_id"`
	Event     struct {
		ID   string         `json:"id"`
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	} `json:"event"`
}

func deliveries(t *testing.T, s *docstore.Store) map[string]deliveryArgs {
	t.Helper()
	tasks, err := s.UnpublishedDeliveries(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]deliveryArgs{}
	for _, task := range tasks {
		j, err := task.Job()
		if err != nil {
			t.Fatalf("delivery %s: %v", task.TaskID, err)
		}
		if j.Kind != job.KindWebhook || j.Priority != job.PriorityMedium || j.TaskID != task.TaskID || j.TenantID != "acme" {
			t.Fatalf("delivery job = %+v", j)
		}
		var a deliveryArgs
		if err := json.Unmarshal(j.Args, &a); err != nil {
			t.Fatal(err)
		}
		a.TaskID = task.TaskID
		if prev, dup := out[a.URL]; dup {
			t.Fatalf("two deliveries to %s: %+v and %+v", a.URL, prev, a)
		}
		out[a.URL] = a
		if err := s.MarkTaskPublished(t.Context(), task.TaskID, "JOBS_MEDIUM", 1); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// The statement that makes a task final records its deliveries: one per subscribed webhook and
// one for the callback_url, all carrying the same event; a webhook's own end, a webhook not
// subscribed to the event, and a task already final record none.
func TestTaskEndRecordsItsWebhookDeliveries(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	hooks := []*docstore.Webhook{
		{TenantID: "acme", URL: "https://hooks.example.com/all", Events: []string{"task.succeeded", "task.failed"}, Secret: "s1"},
		{TenantID: "acme", URL: "https://hooks.example.com/failed", Events: []string{"task.failed"}, Secret: "s2"},
		{TenantID: "other", URL: "https://other.example.com/", Events: []string{"task.succeeded"}, Secret: "s3"},
	}
	for _, w := range hooks {
		if err := s.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	j := &job.Job{TaskID: "page-1", Kind: job.KindWebpage, TenantID: "acme", AgentID: "7", Priority: job.PriorityHigh,
		URL: "https://example.com/", CallbackURL: "https://client.example.com/done"}
	if err := s.InsertTask(ctx, j); err != nil {
		t.Fatal(err)
	}
	if got := deliveries(t, s); len(got) != 0 {
		t.Fatalf("deliveries before the end: %+v", got)
	}
	if err := s.FinishTask(ctx, "page-1", job.StateSuccess, 1, ""); err != nil {
		t.Fatal(err)
	}
	got := deliveries(t, s)
	urls := slices.Sorted(func(yield func(string) bool) {
		for u := range got {
			if !yield(u) {
				return
			}
		}
	})
	if !slices.Equal(urls, []string{"https://client.example.com/done", "https://hooks.example.com/all"}) {
		t.Fatalf("deliveries to %v", urls)
	}
	all, cb := got["https://hooks.example.com/all"], got["https://client.example.com/done"]
	if all.WebhookID != hooks[0].ID || cb.WebhookID != 0 || all.Event.ID == "" || all.Event.ID != cb.Event.ID ||
		all.Event.Type != "task.succeeded" || all.Event.Data["task_id"] != "page-1" || all.Event.Data["state"] != "SUCCESS" {
		t.Fatalf("deliveries = %+v", got)
	}
	// Recording the same outcome again is no new event.
	if err := s.FinishTask(ctx, "page-1", job.StateSuccess, 2, ""); err != nil {
		t.Fatal(err)
	}
	if got := deliveries(t, s); len(got) != 0 {
		t.Fatalf("a second record of the end made deliveries: %+v", got)
	}
	// A failure reaches both subscribers of task.failed.
	if err := s.InsertTask(ctx, &job.Job{TaskID: "page-2", Kind: job.KindWebpage, TenantID: "acme", AgentID: "7",
		Priority: job.PriorityHigh, URL: "https://example.com/2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishTask(ctx, "page-2", job.StateFailure, 4, "http status 404"); err != nil {
		t.Fatal(err)
	}
	got = deliveries(t, s)
	if len(got) != 2 || got["https://hooks.example.com/failed"].Event.Data["error"] != "http status 404" {
		t.Fatalf("failure deliveries = %+v", got)
	}
	// A delivery's own end is no event, though a webhook is subscribed to its outcome.
	if err := s.FinishTask(ctx, got["https://hooks.example.com/failed"].TaskID, job.StateFailure, 4, "http status 500"); err != nil {
		t.Fatal(err)
	}
	if got := deliveries(t, s); len(got) != 0 {
		t.Fatalf("a delivery's end made deliveries: %+v", got)
	}
}

func TestWebhookRegistry(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	if _, err := s.WebhookSecret(ctx, "acme", 0); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("secret without a webhook: %v", err)
	}
	if ok, err := s.HasWebhook(ctx, "acme"); ok || err != nil {
		t.Fatalf("HasWebhook = %v, %v", ok, err)
	}
	a := &docstore.Webhook{TenantID: "acme", URL: "https://a.example.com/", Events: []string{"task.failed"}, Secret: "first"}
	b := &docstore.Webhook{TenantID: "acme", URL: "https://b.example.com/", Events: []string{"batch.completed"}, Secret: "second"}
	for _, w := range []*docstore.Webhook{a, b} {
		if err := s.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if sec, err := s.WebhookSecret(ctx, "acme", a.ID); sec != "first" || err != nil {
		t.Fatalf("secret of a = %q, %v", sec, err)
	}
	if sec, err := s.WebhookSecret(ctx, "acme", 0); sec != "second" || err != nil {
		t.Fatalf("callback secret = %q, %v; want the newest webhook's", sec, err)
	}
	if _, err := s.WebhookSecret(ctx, "other", a.ID); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("another tenant's secret: %v", err)
	}
	list, err := s.ListWebhooks(ctx, "acme")
	if err != nil || len(list) != 2 || list[0].ID != b.ID || list[0].Secret != "" {
		t.Fatalf("ListWebhooks = %+v, %v", list, err)
	}
	if err := s.DeleteWebhook(ctx, "other", a.ID); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("delete of another tenant's webhook: %v", err)
	}
	if err := s.DeleteWebhook(ctx, "acme", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WebhookSecret(ctx, "acme", a.ID); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("secret of a deleted webhook: %v", err)
	}
}
