package embed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func newTestOpenAI(t *testing.T, f *fakeOpenAI, cfg Config) (*OpenAI, *fakeClock) {
	t.Helper()
	cfg.Provider = ProviderOpenAI
	cfg.APIKey = "test-key"
	cfg.BaseURL = f.baseURL()
	e, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := e.(*OpenAI)
	fc := &fakeClock{}
	fc.install(o)
	return o, fc
}

func texts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("chunk number %d about topic %d", i, i%7)
	}
	return out
}

// checkVectors fails t unless vecs are the fake server's vectors of in, in order.
func checkVectors(t *testing.T, in []string, vecs [][]float32, dims int) {
	t.Helper()
	local, _ := NewLocal(dims)
	want, _ := local.Embed(t.Context(), in)
	if len(vecs) != len(in) {
		t.Fatalf("got %d vectors for %d inputs", len(vecs), len(in))
	}
	for i := range want {
		if !slices.Equal(vecs[i], want[i]) {
			t.Fatalf("vector %d is not the embedding of input %d (%q)", i, i, in[i])
		}
	}
}

func TestOpenAIBatchesByInputCount(t *testing.T) {
	f := newFakeOpenAI(t, 768)
	o, _ := newTestOpenAI(t, f, Config{Model: "text-embedding-3-small", Dimensions: 64, BatchSize: 4})
	in := texts(10)
	vecs, err := o.Embed(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	checkVectors(t, in, vecs, 64)
	reqs := f.recorded()
	var sizes []int
	for _, r := range reqs {
		sizes = append(sizes, len(r.Input))
		if r.Model != "text-embedding-3-small" || !r.HasDimensions || r.Dimensions != 64 {
			t.Errorf("request model %q dimensions %v/%d, want text-embedding-3-small with 64", r.Model, r.HasDimensions, r.Dimensions)
		}
	}
	if !slices.Equal(sizes, []int{4, 4, 2}) {
		t.Fatalf("batch sizes %v, want [4 4 2]", sizes)
	}
	if o.Dimensions() != 64 || o.Model() != "text-embedding-3-small" {
		t.Fatalf("Dimensions %d Model %q", o.Dimensions(), o.Model())
	}
}

func TestOpenAIBatchesByTokens(t *testing.T) {
	f := newFakeOpenAI(t, 32)
	// Byte counter: each input counts len+1 tokens.
	in := []string{
		strings.Repeat("a", 39), strings.Repeat("b", 39), // 40 + 40
		strings.Repeat("c", 29),      // 30: 110 > 100, new batch
		strings.Repeat("d", 59),      // 60: 90
		strings.Repeat("e", 149),     // 150: over the limit alone, own batch
		"f", "g", "h", "i", "j", "k", // 2 each, but at most 5 inputs
	}
	o, _ := newTestOpenAI(t, f, Config{Model: "nomic-embed-text", BatchSize: 5, MaxTokensPerRequest: 100})
	vecs, err := o.Embed(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	checkVectors(t, in, vecs, 32)
	var got [][]string
	for _, r := range f.recorded() {
		got = append(got, r.Input)
		if r.HasDimensions {
			t.Errorf("dimensions sent to a model that does not take it: %d", r.Dimensions)
		}
		tokens := 0
		for _, s := range r.Input {
			tokens += ByteCounter{}.Count(s)
		}
		if len(r.Input) > 5 || (tokens > 100 && len(r.Input) > 1) {
			t.Errorf("request of %d inputs, %d tokens breaks the limits", len(r.Input), tokens)
		}
	}
	want := [][]string{in[0:2], in[2:4], in[4:5], in[5:10], in[10:11]}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %q, want %q", got, want)
	}
	// The native size is learnt from the first response.
	if o.Dimensions() != 32 {
		t.Fatalf("Dimensions = %d, want 32", o.Dimensions())
	}
}

func TestBatchesAreMinimal(t *testing.T) {
	tests := []struct {
		name          string
		sizes         []int // byte lengths; ByteCounter adds one
		maxIn, maxTok int
		want          []int // inputs per batch
	}{
		{"empty", nil, 4, 100, nil},
		{"one batch", []int{9, 9, 9}, 4, 100, []int{3}},
		{"input bound", []int{0, 0, 0, 0, 0}, 2, 100, []int{2, 2, 1}},
		{"token bound exact", []int{49, 49, 49}, 10, 100, []int{2, 1}},
		{"oversized alone", []int{10, 500, 10}, 10, 100, []int{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := make([]string, len(tt.sizes))
			for i, n := range tt.sizes {
				in[i] = strings.Repeat("x", n)
			}
			var got []int
			next := 0
			for _, b := range batches(in, ByteCounter{}, tt.maxIn, tt.maxTok) {
				if b.start != next {
					t.Fatalf("batch starts at %d, want %d", b.start, next)
				}
				next = b.end
				got = append(got, b.end-b.start)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("batches %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOpenAIRetries(t *testing.T) {
	rateLimited := fakeReply{status: 429, errType: "requests", code: "rate_limit_exceeded", message: "Rate limit reached",
		header: map[string]string{"Retry-After": "7"}}
	tests := []struct {
		name         string
		replies      []fakeReply
		maxRetries   int
		wantErr      error // nil: success
		wantRequests int
		wantSleeps   func(t *testing.T, s []time.Duration)
	}{
		{
			name: "429 honours Retry-After", replies: []fakeReply{rateLimited},
			wantRequests: 2,
			wantSleeps: func(t *testing.T, s []time.Duration) {
				// The retrying caller sleeps 7s; the shared pause is then already over.
				if !slices.Equal(s, []time.Duration{7 * time.Second}) {
					t.Fatalf("slept %v, want [7s]", s)
				}
			},
		},
		{
			name: "429 honours retry-after-ms",
			replies: []fakeReply{{status: 429, errType: "requests", message: "slow down",
				header: map[string]string{"Retry-After-Ms": "1500", "Retry-After": "2"}}},
			wantRequests: 2,
			wantSleeps: func(t *testing.T, s []time.Duration) {
				if !slices.Equal(s, []time.Duration{1500 * time.Millisecond}) {
					t.Fatalf("slept %v, want [1.5s]", s)
				}
			},
		},
		{
			name:         "500 and 503 retried with backoff",
			replies:      []fakeReply{{status: 500, errType: "server_error", message: "boom"}, {status: 503, errType: "server_error", message: "overloaded"}},
			wantRequests: 3,
			wantSleeps: func(t *testing.T, s []time.Duration) {
				if len(s) != 2 || s[0] <= 0 || s[0] > time.Second || s[1] <= 0 {
					t.Fatalf("slept %v, want two backoff delays starting near 500ms", s)
				}
			},
		},
		{
			name:       "retries run out",
			replies:    slices.Repeat([]fakeReply{{status: 502, errType: "server_error", message: "bad gateway"}}, 5),
			maxRetries: 2, wantErr: errRetryable, wantRequests: 3,
		},
		{
			name:       "no retries when MaxRetries is negative",
			replies:    []fakeReply{{status: 500, errType: "server_error", message: "boom"}},
			maxRetries: -1, wantErr: errRetryable, wantRequests: 1,
		},
		{
			name:    "400 input too long is permanent",
			replies: []fakeReply{{status: 400, errType: "invalid_request_error", message: "This model's maximum context length is 8192 tokens"}},
			wantErr: ErrPermanent, wantRequests: 1,
		},
		{
			name:    "404 unknown model is permanent",
			replies: []fakeReply{{status: 404, errType: "invalid_request_error", code: "model_not_found", message: "The model does not exist"}},
			wantErr: ErrPermanent, wantRequests: 1,
		},
		{
			name:    "401 fails without retry and is not permanent",
			replies: []fakeReply{{status: 401, errType: "invalid_request_error", message: "bad key"}},
			wantErr: errRetryable, wantRequests: 1,
		},
		{
			name:    "insufficient quota is not waited for",
			replies: []fakeReply{{status: 429, errType: "insufficient_quota", code: "insufficient_quota", message: "quota"}},
			wantErr: errRetryable, wantRequests: 1,
		},
		{
			name: "Retry-After too long fails the call for a later job retry",
			replies: []fakeReply{{status: 429, errType: "requests", message: "later",
				header: map[string]string{"Retry-After": "3600"}}},
			wantErr: errRetryable, wantRequests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeOpenAI(t, 16)
			f.fail(tt.replies...)
			o, fc := newTestOpenAI(t, f, Config{Model: "m", MaxRetries: tt.maxRetries})
			in := texts(3)
			vecs, err := o.Embed(t.Context(), in)
			switch {
			case tt.wantErr == nil:
				if err != nil {
					t.Fatal(err)
				}
				checkVectors(t, in, vecs, 16)
			case tt.wantErr == errRetryable:
				if err == nil || errors.Is(err, ErrPermanent) || errors.Is(err, context.Canceled) {
					t.Fatalf("error %v, want a retryable (non-permanent) error", err)
				}
			default:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
			}
			if n := len(f.recorded()); n != tt.wantRequests {
				t.Fatalf("%d requests, want %d", n, tt.wantRequests)
			}
			if ra, ok := errors.AsType[*RetryLaterError](err); ok != strings.HasPrefix(tt.name, "Retry-After too long") || (ok && ra.After != time.Hour) {
				t.Fatalf("RetryLaterError %v (%v) for case %q", ok, err, tt.name)
			}
			if tt.wantSleeps != nil {
				tt.wantSleeps(t, fc.sleeps())
			}
		})
	}
}

// errRetryable marks test cases that expect an error that is neither permanent nor a
// cancellation.
var errRetryable = errors.New("retryable")

func TestOpenAIRetryAfterPausesOtherCallers(t *testing.T) {
	f := newFakeOpenAI(t, 16)
	o, fc := newTestOpenAI(t, f, Config{Model: "m"})
	f.fail(fakeReply{status: 429, errType: "requests", message: "slow", header: map[string]string{"Retry-After": "5"}})
	if _, err := o.Embed(t.Context(), texts(1)); err != nil {
		t.Fatal(err)
	}
	// Rewind the clock: another caller arriving within the pause waits for its end.
	fc.mu.Lock()
	fc.t = fc.t.Add(-3 * time.Second)
	fc.mu.Unlock()
	if _, err := o.Embed(t.Context(), texts(1)); err != nil {
		t.Fatal(err)
	}
	if s := fc.sleeps(); !slices.Equal(s, []time.Duration{5 * time.Second, 3 * time.Second}) {
		t.Fatalf("slept %v, want [5s 3s]", s)
	}
}

func TestOpenAIWrongDimensionsArePermanent(t *testing.T) {
	f := newFakeOpenAI(t, 48)
	o, _ := newTestOpenAI(t, f, Config{Model: "nomic-embed-text", Dimensions: 32})
	_, err := o.Embed(t.Context(), texts(2))
	if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "48 dimensions") {
		t.Fatalf("error %v, want ErrPermanent naming 48 dimensions", err)
	}
}

func TestOpenAIBase64(t *testing.T) {
	f := newFakeOpenAI(t, 24)
	o, _ := newTestOpenAI(t, f, Config{Model: "m", Base64: true})
	in := texts(5)
	vecs, err := o.Embed(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	checkVectors(t, in, vecs, 24)
	if r := f.recorded(); len(r) != 1 || r[0].EncodingFormat != "base64" {
		t.Fatalf("requests %+v, want one asking for base64", r)
	}
}

func TestOpenAIRateLimits(t *testing.T) {
	t.Run("requests per second", func(t *testing.T) {
		f := newFakeOpenAI(t, 8)
		o, _ := newTestOpenAI(t, f, Config{Model: "m", BatchSize: 1, RateLimitRPS: 20})
		start := time.Now()
		if _, err := o.Embed(t.Context(), texts(6)); err != nil {
			t.Fatal(err)
		}
		// Six requests 50ms apart span at least 250ms.
		if d := time.Since(start); d < 240*time.Millisecond {
			t.Fatalf("6 requests at 20/s took %v", d)
		}
		reqs := f.recorded()
		for i := 1; i < len(reqs); i++ {
			if gap := reqs[i].At.Sub(reqs[i-1].At); gap < 25*time.Millisecond {
				t.Fatalf("requests %d and %d only %v apart", i-1, i, gap)
			}
		}
	})
	t.Run("tokens per minute", func(t *testing.T) {
		f := newFakeOpenAI(t, 8)
		// 6000 tokens/min = 100/s; the first request takes the whole minute's budget.
		o, _ := newTestOpenAI(t, f, Config{Model: "m", BatchSize: 1, RateLimitTPM: 6000})
		start := time.Now()
		if _, err := o.Embed(t.Context(), []string{strings.Repeat("x", 5999), strings.Repeat("y", 49)}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 400*time.Millisecond {
			t.Fatalf("50 tokens over budget at 100 tokens/s went after %v, want about 500ms", d)
		}
	})
	t.Run("shared by concurrent callers", func(t *testing.T) {
		f := newFakeOpenAI(t, 8)
		o, _ := newTestOpenAI(t, f, Config{Model: "m", RateLimitRPS: 20})
		start := time.Now()
		errc := make(chan error, 6)
		for range 6 {
			go func() {
				_, err := o.Embed(t.Context(), texts(1))
				errc <- err
			}()
		}
		for range 6 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d < 240*time.Millisecond {
			t.Fatalf("6 callers at 20 requests/s finished in %v", d)
		}
	})
}

func TestOpenAICancellation(t *testing.T) {
	t.Run("during a request", func(t *testing.T) {
		f := newFakeOpenAI(t, 8)
		f.block = make(chan struct{})
		t.Cleanup(func() { close(f.block) })
		o, _ := newTestOpenAI(t, f, Config{Model: "m"})
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := o.Embed(ctx, texts(2))
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrPermanent) {
			t.Fatalf("error %v, want the context's deadline", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("returned after %v", d)
		}
	})
	t.Run("while waiting to retry", func(t *testing.T) {
		f := newFakeOpenAI(t, 8)
		f.fail(fakeReply{status: 429, errType: "requests", message: "slow", header: map[string]string{"Retry-After": "30"}})
		o, err := NewOpenAI(Config{APIKey: "test-key", BaseURL: f.baseURL(), Model: "m"}) // real clock
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err = o.Embed(ctx, texts(1))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("returned after %v, not at cancellation", d)
		}
		if n := len(f.recorded()); n != 1 {
			t.Fatalf("%d requests after cancellation, want 1", n)
		}
	})
	t.Run("before a rate-limited request", func(t *testing.T) {
		f := newFakeOpenAI(t, 8)
		o, _ := newTestOpenAI(t, f, Config{Model: "m", RateLimitRPS: 0.1, BatchSize: 1})
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := o.Embed(ctx, texts(2))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if n := len(f.recorded()); n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
	})
}

func TestNewSelectsProvider(t *testing.T) {
	f := newFakeOpenAI(t, 8)
	tests := []struct {
		name    string
		cfg     Config
		want    string // model of the embedder
		wantErr error
	}{
		{"default is local", Config{}, LocalModel, nil},
		{"local with dimensions", Config{Provider: "local", Dimensions: 64}, LocalModel, nil},
		{"openai", Config{Provider: "openai", APIKey: "test-key", BaseURL: f.baseURL(), Model: "text-embedding-3-large"}, "text-embedding-3-large", nil},
		{"openai default model", Config{Provider: "openai", APIKey: "k"}, "text-embedding-3-small", nil},
		{"openai without key or url", Config{Provider: "openai"}, "", ErrConfig},
		{"bad base url", Config{Provider: "openai", BaseURL: "localhost:11434"}, "", ErrConfig},
		{"unknown provider", Config{Provider: "magic"}, "", ErrConfig},
		{"negative rate", Config{Provider: "openai", APIKey: "k", RateLimitRPS: -1}, "", ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(t.Context(), tt.cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err == nil && e.Model() != tt.want {
				t.Fatalf("model %q, want %q", e.Model(), tt.want)
			}
		})
	}
	e, err := New(t.Context(), Config{Provider: "openai", APIKey: "k", Model: "text-embedding-3-large"})
	if err != nil || e.Dimensions() != 3072 {
		t.Fatalf("text-embedding-3-large: dimensions %d, %v; want 3072", e.Dimensions(), err)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		header map[string]string
		want   time.Duration
	}{
		{map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{map[string]string{"Retry-After": now.Add(10 * time.Second).Format(http.TimeFormat)}, 10 * time.Second},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"Retry-After": "-4"}, 0},
		{map[string]string{"Retry-After-Ms": "250"}, 250 * time.Millisecond},
		{nil, 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.header {
			h.Set(k, v)
		}
		if got := retryAfter(h, now); got != tt.want {
			t.Errorf("retryAfter(%v) = %v, want %v", tt.header, got, tt.want)
		}
	}
}
