package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// An upload with a callback_url, to a tenant with a registered webhook: when the document is
// stored, the callback endpoint (which fails its first attempt) and the webhook each receive
// task.succeeded, signed with the webhook's secret, the retry with the same Quire-Delivery.
func TestTaskEndReachesTheCallbackAndTheWebhookSigned(t *testing.T) {
	slow(t)
	type hit struct {
		path, event, delivery, signature string
		body                             []byte
	}
	var mu sync.Mutex
	var hits []hit
	failedOnce := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		hits = append(hits, hit{r.URL.Path, r.Header.Get("Quire-Event"), r.Header.Get("Quire-Delivery"), r.Header.Get("Quire-Signature"), body})
		if r.URL.Path == "/callback" && !failedOnce {
			failedOnce = true
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	// The receiver is on 127.0.0.1: private addresses are allowed, as on-prem.
	s := newStack(t, map[string]string{"WEBPAGE_ALLOW_PRIVATE": "true", "RETRY_BASE_DELAY": "200ms"})
	api := s.startAPI(t)
	code, hook := api.do(http.MethodPost, "/api/v1/webhooks", strings.NewReader(`{"url":"`+srv.URL+`/hook","events":["task.succeeded"]}`), "application/json")
	if code != http.StatusCreated {
		t.Fatalf("register = %d %v", code, hook)
	}
	secret := hook["secret"].(string)
	s.startWorker(t, nil)
	code, up := api.uploadFields("7", "notes.txt", []byte("The cooling pump must be inspected every week.\n"), map[string]string{"callback_url": srv.URL + "/callback"})
	if code != http.StatusAccepted {
		t.Fatalf("upload = %d %v", code, up)
	}
	taskID := up["task_id"].(string)
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(hits)
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries after 60s, want 3 (the callback twice, the webhook once)", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	byPath := map[string][]hit{}
	for _, h := range hits {
		byPath[h.path] = append(byPath[h.path], h)
		if h.event != "task.succeeded" {
			t.Errorf("delivery to %s: Quire-Event %q", h.path, h.event)
		}
		ts, mac, _ := strings.Cut(strings.TrimPrefix(h.signature, "t="), ",v1=")
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(ts + "."))
		m.Write(h.body)
		if hex.EncodeToString(m.Sum(nil)) != mac {
			t.Errorf("delivery to %s: signature %q does not verify", h.path, h.signature)
		}
		var ev struct {
			ID   string         `json:"id"`
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(h.body, &ev); err != nil || ev.ID == "" || ev.Data["task_id"] != taskID || ev.Data["state"] != "SUCCESS" {
			t.Errorf("delivery to %s: body %s (%v)", h.path, h.body, err)
		}
	}
	cb := byPath["/callback"]
	if len(cb) != 2 || cb[0].delivery == "" || cb[0].delivery != cb[1].delivery || len(byPath["/hook"]) != 1 || byPath["/hook"][0].delivery == cb[0].delivery {
		t.Fatalf("deliveries = %+v, want the callback twice with one Quire-Delivery and the webhook once with its own", byPath)
	}
}
