package embed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	openai "github.com/sashabaranov/go-openai"
)

// OpenAI embeds through an OpenAI-compatible /embeddings endpoint: OpenAI itself, Azure
// OpenAI, Ollama, vLLM, LocalAI, Hugging Face TEI. One call to Embed sends as few requests as
// the input and token limits per request allow, one after another, each paced by a rate
// limiter shared by every caller of this OpenAI value and retried on 408, 409, 429, 5xx and
// network errors. Safe for concurrent use; make one per process so the limits hold for the
// process.
type OpenAI struct {
	client   *openai.Client
	cfg      Config
	sendDims bool
	dims     atomic.Int64 // 0 until known
	lim      *limiter
	clock    clock
}

// clock is time as the retry loop sees it; tests replace it to skip real waiting.
type clock struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

var realClock = clock{now: time.Now, sleep: sleepCtx}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// nativeDimensions are the output sizes of OpenAI's embeddings models.
var nativeDimensions = map[string]int{
	"text-embedding-3-small": 1536,
	"text-embedding-3-large": 3072,
	"text-embedding-ada-002": 1536,
}

// NewOpenAI returns an OpenAI-compatible embedder for cfg (Provider is ignored). It makes no
// request.
func NewOpenAI(cfg Config) (*OpenAI, error) {
	cfg.Provider = ProviderOpenAI
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var cc openai.ClientConfig
	if isAzure(cfg.BaseURL) {
		cc = openai.DefaultAzureConfig(cfg.APIKey, cfg.BaseURL)
		cc.APIVersion = "2024-10-21"
	} else {
		cc = openai.DefaultConfig(cfg.APIKey)
		if cfg.BaseURL != "" {
			cc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
		}
	}
	o := &OpenAI{
		cfg:      cfg,
		sendDims: cfg.Dimensions > 0 && acceptsDimensions(cfg.Model),
		clock:    realClock,
	}
	o.lim = newLimiter(cfg.RateLimitRPS, cfg.RateLimitTPM, &o.clock)
	cc.HTTPClient = headerDoer{next: cfg.HTTPClient, now: func() time.Time { return o.clock.now() }}
	o.client = openai.NewClientWithConfig(cc)
	switch {
	case cfg.Dimensions > 0:
		o.dims.Store(int64(cfg.Dimensions))
	case nativeDimensions[cfg.Model] > 0:
		o.dims.Store(int64(nativeDimensions[cfg.Model]))
	}
	return o, nil
}

func isAzure(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return strings.HasSuffix(h, ".openai.azure.com") || strings.HasSuffix(h, ".cognitiveservices.azure.com")
}

// acceptsDimensions reports whether model takes the `dimensions` request field: OpenAI's
// text-embedding-3 family does; ada-002 and most open models reject or ignore it.
func acceptsDimensions(model string) bool {
	return strings.HasPrefix(strings.ToLower(model), "text-embedding-3")
}

// Model implements [Embedder].
func (o *OpenAI) Model() string { return o.cfg.Model }

// Dimensions implements [Embedder]: EMBEDDINGS_DIMENSIONS if set, else the native size of
// OpenAI's models, else the length of the first vector received (0 before the first
// successful Embed).
func (o *OpenAI) Dimensions() int { return int(o.dims.Load()) }

// Embed implements [Embedder]. It returns an error wrapping [ErrPermanent] when the endpoint
// refuses the input or model (retrying cannot help), the context's error when ctx ends, and
// otherwise a retryable error once MaxRetries retries have failed.
func (o *OpenAI) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for _, b := range batches(texts, o.cfg.Counter, o.cfg.BatchSize, o.cfg.MaxTokensPerRequest) {
		vecs, err := o.embedBatch(ctx, texts[b.start:b.end], b.tokens)
		if err != nil {
			return nil, fmt.Errorf("embed: inputs %d-%d of %d: %w", b.start, b.end-1, len(texts), err)
		}
		copy(out[b.start:b.end], vecs)
	}
	return out, nil
}

// embedBatch sends one request, retrying it as the package doc says.
func (o *OpenAI) embedBatch(ctx context.Context, texts []string, tokens int) ([][]float32, error) {
	req := openai.EmbeddingRequestStrings{Input: texts, Model: openai.EmbeddingModel(o.cfg.Model)}
	if o.sendDims {
		req.Dimensions = o.cfg.Dimensions
	}
	if o.cfg.Base64 {
		req.EncodingFormat = openai.EmbeddingEncodingFormatBase64
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 500*time.Millisecond, 30*time.Second
	bo.Reset()
	for attempt := 1; ; attempt++ {
		if err := o.lim.wait(ctx, tokens); err != nil {
			return nil, err
		}
		info := &responseInfo{}
		resp, err := o.client.CreateEmbeddings(context.WithValue(ctx, responseInfoKey{}, info), req)
		if err == nil {
			return o.vectors(resp, len(texts))
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("embed: request: %w", context.Cause(ctx))
		}
		switch classify(err) {
		case outcomePermanent:
			return nil, fmt.Errorf("%w: %w", ErrPermanent, err)
		case outcomeFail:
			return nil, fmt.Errorf("embed: request: %w", err)
		}
		if attempt > max(o.cfg.MaxRetries, 0) || info.retryAfter > o.cfg.MaxRetryAfter {
			err = fmt.Errorf("embed: request failed after %d attempts: %w", attempt, err)
			if info.retryAfter > 0 {
				// The caller should not come back before the server said.
				return nil, &RetryLaterError{After: info.retryAfter, Err: err}
			}
			return nil, err
		}
		delay := bo.NextBackOff()
		if info.retryAfter > 0 {
			delay = info.retryAfter
			// Every caller sharing this embedder holds back, not only this one.
			o.lim.pause(o.clock.now().Add(delay))
		}
		o.cfg.Logger.Warn("embeddings request failed; retrying", "status", info.status, "attempt", attempt, "delay", delay, "err", err)
		if err := o.clock.sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("embed: waiting to retry: %w", err)
		}
	}
}

// vectors checks that resp holds one vector per input, of the expected length, and returns
// them in input order.
func (o *OpenAI) vectors(resp openai.EmbeddingResponse, n int) ([][]float32, error) {
	if len(resp.Data) != n {
		return nil, fmt.Errorf("%w: endpoint returned %d vectors for %d inputs", ErrPermanent, len(resp.Data), n)
	}
	out := make([][]float32, n)
	for _, d := range resp.Data {
		if d.Index < 0 || d.Index >= n || out[d.Index] != nil {
			return nil, fmt.Errorf("%w: endpoint returned a bad or repeated index %d", ErrPermanent, d.Index)
		}
		want := int(o.dims.Load())
		if want == 0 && len(d.Embedding) > 0 {
			o.dims.CompareAndSwap(0, int64(len(d.Embedding)))
			want = int(o.dims.Load())
		}
		if len(d.Embedding) != want {
			return nil, fmt.Errorf("%w: model %s returned %d dimensions, want %d (check EMBEDDINGS_DIMENSIONS)",
				ErrPermanent, o.cfg.Model, len(d.Embedding), want)
		}
		out[d.Index] = d.Embedding
	}
	return out, nil
}

// RetryLaterError reports a failed request whose last answer asked (with Retry-After) for a
// pause that retrying here could not honour, longer than Config.MaxRetryAfter or after the
// last retry: the caller should try again no sooner than After.
type RetryLaterError struct {
	After time.Duration
	Err   error
}

func (e *RetryLaterError) Error() string { return e.Err.Error() }

func (e *RetryLaterError) Unwrap() error { return e.Err }

type outcome int

const (
	outcomeRetry     outcome = iota // retry in-process after a delay
	outcomePermanent                // the request itself is wrong
	outcomeFail                     // return a retryable error without retrying here
)

// classify decides what a failed request means from its HTTP status. Errors without one
// (connection refused, timeouts, a truncated body) are retried.
func classify(err error) outcome {
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	status := 0
	switch {
	case errors.As(err, &apiErr):
		status = apiErr.HTTPStatusCode
		if apiErr.Code == "insufficient_quota" {
			return outcomeFail // a 429 that waiting does not fix
		}
	case errors.As(err, &reqErr):
		status = reqErr.HTTPStatusCode
	}
	switch {
	case status == 0, status == http.StatusRequestTimeout, status == http.StatusConflict,
		status == http.StatusTooManyRequests, status >= 500:
		return outcomeRetry
	case status == http.StatusBadRequest, status == http.StatusNotFound,
		status == http.StatusRequestEntityTooLarge, status == http.StatusUnprocessableEntity:
		return outcomePermanent
	}
	return outcomeFail // 401, 403 and the like: configuration, not this input
}

// responseInfo carries what go-openai does not expose from a failed response.
type responseInfo struct {
	status     int
	retryAfter time.Duration
}

type responseInfoKey struct{}

// headerDoer records the status and Retry-After of each response into the request context's
// responseInfo.
type headerDoer struct {
	next openai.HTTPDoer
	now  func() time.Time
}

func (d headerDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.next.Do(req)
	if resp != nil {
		if info, ok := req.Context().Value(responseInfoKey{}).(*responseInfo); ok {
			info.status = resp.StatusCode
			info.retryAfter = retryAfter(resp.Header, d.now())
		}
	}
	return resp, err
}

// retryAfter reads retry-after-ms (OpenAI) or Retry-After (seconds or an HTTP date); 0 if
// neither is usable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
