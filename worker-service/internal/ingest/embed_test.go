package ingest

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/worker-service/internal/chunk"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// openAIError serves one OpenAI-style error answer on /v1/embeddings.
func openAIError(t *testing.T, status int, retryAfter string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/embeddings" {
			http.NotFound(w, r)
			return
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
			"message": http.StatusText(status), "type": "invalid_request_error", "param": nil, "code": nil,
		}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// TestEmbedErrorsMapToOutcomes: an input or model the endpoint refuses dead-letters the job at
// once, a long Retry-After becomes the job's retry delay, and an endpoint that keeps failing
// leaves the job retryable.
func TestEmbedErrorsMapToOutcomes(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		retryAfter    string
		wantPermanent bool
		wantAfter     time.Duration
	}{
		{"input too long", http.StatusBadRequest, "", true, 0},
		{"unknown model", http.StatusNotFound, "", true, 0},
		{"server error", http.StatusInternalServerError, "", false, 0},
		{"rate limited for long", http.StatusTooManyRequests, "900", false, 15 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := embed.New(t.Context(), embed.Config{
				Provider: embed.ProviderOpenAI, APIKey: "k", BaseURL: openAIError(t, tt.status, tt.retryAfter),
				Model: "m", MaxRetries: -1,
			})
			if err != nil {
				t.Fatal(err)
			}
			p := &Indexer{Embedder: e, BatchSize: 2}
			_, err = p.embed(t.Context(), []chunk.Chunk{{Content: "a"}, {Content: "b"}, {Content: "c"}})
			if err == nil {
				t.Fatal("embed succeeded against a failing endpoint")
			}
			if worker.IsPermanent(err) != tt.wantPermanent {
				t.Fatalf("permanent = %v for %v, want %v", worker.IsPermanent(err), err, tt.wantPermanent)
			}
			ra, ok := errors.AsType[*worker.RetryAfterError](err)
			if (tt.wantAfter > 0) != ok || (ok && ra.After != tt.wantAfter) {
				t.Fatalf("retry after %v (%v), want %v", ra, ok, tt.wantAfter)
			}
		})
	}
}
