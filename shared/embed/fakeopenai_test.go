package embed

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeOpenAI is an httptest server speaking the OpenAI embeddings wire format (POST
// /v1/embeddings). It records every request and answers with scripted failures first, then
// with vectors computed by a Local embedder, so tests can check each vector belongs to its
// input.
type fakeOpenAI struct {
	t      *testing.T
	srv    *httptest.Server
	native int // dimensions when the request names none

	mu       sync.Mutex
	requests []fakeRequest
	script   []fakeReply
	block    chan struct{} // when set, requests wait for it (or for the client to go away)
}

type fakeRequest struct {
	Input          []string `json:"input"`
	Model          string   `json:"model"`
	Dimensions     int      `json:"dimensions"`
	EncodingFormat string   `json:"encoding_format"`
	At             time.Time
	HasDimensions  bool
}

// fakeReply is a scripted failure.
type fakeReply struct {
	status  int
	header  map[string]string
	errType string
	code    string
	message string
}

func newFakeOpenAI(t *testing.T, native int) *fakeOpenAI {
	f := &fakeOpenAI{t: t, native: native}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/embeddings", f.embeddings)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOpenAI) baseURL() string { return f.srv.URL + "/v1" }

func (f *fakeOpenAI) fail(replies ...fakeReply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = append(f.script, replies...)
}

func (f *fakeOpenAI) recorded() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

func (f *fakeOpenAI) embeddings(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer test-key" {
		writeError(w, fakeReply{status: 401, errType: "invalid_request_error", code: "invalid_api_key", message: "Incorrect API key provided"})
		return
	}
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		writeError(w, fakeReply{status: 400, errType: "invalid_request_error", message: "bad JSON: " + err.Error()})
		return
	}
	var req fakeRequest
	var one string
	if err := json.Unmarshal(raw["input"], &one); err == nil {
		req.Input = []string{one}
	} else if err := json.Unmarshal(raw["input"], &req.Input); err != nil {
		writeError(w, fakeReply{status: 400, errType: "invalid_request_error", message: "input must be a string or array of strings"})
		return
	}
	_ = json.Unmarshal(raw["model"], &req.Model)
	_ = json.Unmarshal(raw["encoding_format"], &req.EncodingFormat)
	if d, ok := raw["dimensions"]; ok {
		req.HasDimensions = true
		_ = json.Unmarshal(d, &req.Dimensions)
	}
	req.At = time.Now()
	f.mu.Lock()
	f.requests = append(f.requests, req)
	var reply *fakeReply
	if len(f.script) > 0 {
		reply = &f.script[0]
		f.script = f.script[1:]
	}
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-r.Context().Done():
			return
		}
	}
	if reply != nil {
		writeError(w, *reply)
		return
	}
	dims := f.native
	if req.HasDimensions {
		dims = req.Dimensions
	}
	local, err := NewLocal(dims)
	if err != nil {
		writeError(w, fakeReply{status: 400, errType: "invalid_request_error", message: err.Error()})
		return
	}
	vecs, _ := local.Embed(r.Context(), req.Input)
	data := make([]map[string]any, len(vecs))
	tokens := 0
	for i, v := range vecs {
		tokens += len(strings.Fields(req.Input[i]))
		var emb any = v
		if req.EncodingFormat == "base64" {
			buf := make([]byte, 4*len(v))
			for j, x := range v {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(x))
			}
			emb = base64.StdEncoding.EncodeToString(buf)
		}
		// Answer out of order: clients must place vectors by index.
		data[len(vecs)-1-i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	})
}

func writeError(w http.ResponseWriter, r fakeReply) {
	for k, v := range r.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.status)
	var code any
	if r.code != "" {
		code = r.code
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": r.message, "type": r.errType, "param": nil, "code": code,
	}})
}

// fakeClock stands in for time in the retry loop: sleeping advances it at once and is recorded.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func (c *fakeClock) install(o *OpenAI) {
	c.t = time.Now()
	o.clock = clock{now: c.now, sleep: c.sleep}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

func (c *fakeClock) sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}
