package api_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/quirehq/quire/api-service/internal/api"
)

// TestRateLimitPerTenant: past its burst a tenant gets 429 with Retry-After and the error
// shape; another tenant, the admin routes and the public routes are not affected, and with no
// limit configured nothing is refused.
func TestRateLimitPerTenant(t *testing.T) {
	e := newEnv(t, 0)
	newServer := func(limit float64, burst int) *httptest.Server {
		a := api.New(api.Config{
			Tokens:     map[string]string{tokenAcme: "acme", tokenOther: "other"},
			AdminToken: tokenAdmin, RateLimit: limit, RateBurst: burst,
		}, api.Deps{JetStream: e.js, Docs: e.docs, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		srv := httptest.NewServer(a.Handler())
		t.Cleanup(srv.Close)
		return srv
	}
	get := func(srv *httptest.Server, token, path string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return do(t, req)
	}
	const list = "/api/v1/documents/agent/7"

	// One request per 1000 s, burst 2: the third request is refused.
	limited := newServer(0.001, 2)
	for i := range 2 {
		if resp, body := get(limited, tokenAcme, list); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d within the burst = %d %v", i+1, resp.StatusCode, body)
		}
	}
	resp, body := get(limited, tokenAcme, list)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("request past the burst = %d %v, want 429", resp.StatusCode, body)
	}
	if got, _ := body["error"].(map[string]any); got["code"] != "too_many_requests" || got["message"] == "" {
		t.Fatalf("429 body = %v", body)
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 900 || secs > 1000 {
		t.Fatalf("Retry-After = %q, want about 1000 s", resp.Header.Get("Retry-After"))
	}
	// A refused request does not use up the bucket further, and other callers are not limited.
	if resp, body := get(limited, tokenOther, list); resp.StatusCode != http.StatusOK {
		t.Fatalf("other tenant = %d %v, want 200", resp.StatusCode, body)
	}
	if resp, _ := get(limited, "", list); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token = %d, want 401 before any rate limit", resp.StatusCode)
	}
	if resp, _ := get(limited, "", "/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz = %d, want 200", resp.StatusCode)
	}
	if resp, body := get(limited, tokenAdmin, "/api/v1/queues"); resp.StatusCode == http.StatusTooManyRequests {
		t.Fatalf("admin route rate-limited: %v", body)
	}

	// The default burst is the rate rounded up: 1.5/s allows 2 at once.
	def := newServer(1.5, 0)
	codes := []int{}
	for range 3 {
		resp, _ := get(def, tokenAcme, list)
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("statuses with rate 1.5 and the default burst = %v, want [200 200 429]", codes)
	}

	// No limit configured: many requests pass.
	for i := range 50 {
		if resp, body := get(e.srv, tokenAcme, list); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d without a limit = %d %v", i, resp.StatusCode, body)
		}
	}
}
