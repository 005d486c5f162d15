package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/quirehq/quire/api-service/internal/api"
)

// loadSpec parses and validates the embedded OpenAPI document, examples included.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if err := doc.Validate(t.Context(), openapi3.EnableExamplesValidation(), openapi3.EnableSchemaFormatValidation(), openapi3.EnableSchemaPatternValidation()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

var ginParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// TestOpenAPICoversEveryRoute fails when a route is registered without being documented, or
// documented without being registered.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	e := newEnv(t, 0)
	doc := loadSpec(t)
	registered := map[string]bool{}
	for _, r := range e.api.Engine().Routes() {
		if r.Path == "/ui" || strings.HasPrefix(r.Path, "/ui/") {
			continue // the operator dashboard's HTML pages (ui.go), not part of the JSON API
		}
		registered[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for r := range registered {
		if !documented[r] {
			t.Errorf("route %s is registered but not in openapi.json", r)
		}
	}
	for r := range documented {
		if !registered[r] {
			t.Errorf("openapi.json documents %s, which is not registered", r)
		}
	}
	if len(registered) < 20 {
		t.Errorf("only %d routes registered; the route listing looks wrong", len(registered))
	}
}

// TestOpenAPIOperationsAreComplete checks what every client relies on: each /api/v1 operation
// but the document itself names its security scheme and documents 401 with the error shape,
// every operation has an id and a success response with an example.
func TestOpenAPIOperationsAreComplete(t *testing.T) {
	doc := loadSpec(t)
	errSchema := doc.Components.Schemas["Error"]
	if errSchema == nil {
		t.Fatal("no Error schema")
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", name)
			}
			public := !strings.HasPrefix(path, "/api/v1/") || path == "/api/v1/openapi.json"
			if public != (op.Security == nil || len(*op.Security) == 0) {
				t.Errorf("%s: security %v, public %v", name, op.Security, public)
			}
			if !public {
				unauth := op.Responses.Status(http.StatusUnauthorized)
				if unauth == nil || unauth.Value.Headers["WWW-Authenticate"] == nil {
					t.Errorf("%s: 401 with WWW-Authenticate is not documented", name)
				} else if s := unauth.Value.Content.Get("application/json"); s == nil || s.Schema.Value != errSchema.Value {
					t.Errorf("%s: 401 does not use the Error schema", name)
				}
			}
			hasSuccess := false
			for code, resp := range op.Responses.Map() {
				n, _ := strconv.Atoi(code)
				for mime, mt := range resp.Value.Content {
					if mt.Example == nil && len(mt.Examples) == 0 && path != "/api/v1/openapi.json" {
						t.Errorf("%s %s %s: no example", name, code, mime)
					}
				}
				if n >= 200 && n < 300 {
					hasSuccess = true
				}
				if n >= 400 && path != "/readyz" { // readyz answers 503 with its checks
					if mt := resp.Value.Content.Get("application/json"); mt == nil || mt.Schema.Value != errSchema.Value {
						t.Errorf("%s %s: error response without the Error schema", name, code)
					}
				}
			}
			if !hasSuccess {
				t.Errorf("%s: no success response", name)
			}
		}
	}
}

// TestOpenAPIExamplesMatchTheirSchemas validates every example of every media type against
// its schema (doc.Validate does too; this names the one that fails).
func TestOpenAPIExamplesMatchTheirSchemas(t *testing.T) {
	doc := loadSpec(t)
	n := 0
	check := func(where string, mt *openapi3.MediaType) {
		if mt.Schema == nil {
			return
		}
		examples := map[string]any{}
		if mt.Example != nil {
			examples["example"] = mt.Example
		}
		for k, ex := range mt.Examples {
			examples[k] = ex.Value.Value
		}
		for k, v := range examples {
			n++
			if err := doc.ValidateSchemaJSON(mt.Schema.Value, v, openapi3.VisitAsResponse(), openapi3.MultiErrors()); err != nil {
				t.Errorf("%s example %s does not match its schema: %v", where, k, err)
			}
		}
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code, resp := range op.Responses.Map() {
				for mime, mt := range resp.Value.Content {
					check(fmt.Sprintf("%s %s %s %s", method, path, code, mime), mt)
				}
			}
			if op.RequestBody != nil {
				for mime, mt := range op.RequestBody.Value.Content {
					check(fmt.Sprintf("%s %s request %s", method, path, mime), mt)
				}
			}
		}
	}
	if n < 30 {
		t.Errorf("only %d examples validated", n)
	}
	// The check can fail: an example breaking its schema is caught.
	bad := &openapi3.MediaType{Schema: doc.Components.Schemas["Accepted"], Example: map[string]any{"id": "not a number"}}
	if err := doc.ValidateSchemaJSON(bad.Schema.Value, bad.Example); err == nil {
		t.Error("an invalid example validated")
	}
}

// TestOpenAPIServedWithoutToken: GET /api/v1/openapi.json needs no token and serves the
// embedded document.
func TestOpenAPIServedWithoutToken(t *testing.T) {
	e := newEnv(t, 0)
	resp, err := http.Get(e.srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/v1/openapi.json = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if string(raw) != string(api.OpenAPI()) {
		t.Fatal("served document differs from the embedded one")
	}
	var v struct {
		OpenAPI string `json:"openapi"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || !strings.HasPrefix(v.OpenAPI, "3.") {
		t.Fatalf("served document: openapi %q, %v", v.OpenAPI, err)
	}
}

// specChecker validates live responses against the document.
type specChecker struct {
	doc *openapi3.T
}

// check validates body, the answer with status to method on the route template (gin syntax),
// against the response schema documented for it; an undocumented status fails.
func (sc specChecker) check(t *testing.T, method, template string, status int, contentType string, body []byte) {
	t.Helper()
	path := ginParam.ReplaceAllString(template, "{$1}")
	item := sc.doc.Paths.Value(path)
	if item == nil {
		t.Errorf("%s is not documented", path)
		return
	}
	op := item.GetOperation(strings.ToUpper(method))
	if op == nil {
		t.Errorf("%s %s is not documented", method, path)
		return
	}
	resp := op.Responses.Status(status)
	if resp == nil {
		t.Errorf("%s %s answered %d, which is not documented (documented: %v)", method, path, status, slices.Sorted(func(yield func(string) bool) {
			for k := range op.Responses.Map() {
				if !yield(k) {
					return
				}
			}
		}))
		return
	}
	mt := resp.Value.Content.Get(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	if mt == nil {
		t.Errorf("%s %s %d: content type %q is not documented", method, path, status, contentType)
		return
	}
	if strings.HasPrefix(contentType, "text/event-stream") {
		sc.checkEvents(t, method, path, status, body)
		return
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("%s %s %d: body is not JSON: %q", method, path, status, body)
		return
	}
	if err := sc.doc.ValidateSchemaJSON(mt.Schema.Value, v, openapi3.VisitAsResponse(), openapi3.MultiErrors()); err != nil {
		t.Errorf("%s %s %d: body does not match the documented schema: %v\nbody: %s", method, path, status, err, body)
	}
}

// checkEvents validates the data of every event of an event stream against the status schema
// its events carry: a Batch for a batch's stream, a Task otherwise.
func (sc specChecker) checkEvents(t *testing.T, method, path string, status int, body []byte) {
	t.Helper()
	task := sc.doc.Components.Schemas["Task"]
	if strings.HasPrefix(path, "/api/v1/batches/") {
		task = sc.doc.Components.Schemas["Batch"]
	}
	n := 0
	for line := range strings.Lines(string(body)) {
		data, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "data: ")
		if !ok {
			continue
		}
		n++
		var v any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Errorf("%s %s %d: event data is not JSON: %q", method, path, status, data)
			continue
		}
		if err := sc.doc.ValidateSchemaJSON(task.Value, v, openapi3.VisitAsResponse(), openapi3.MultiErrors()); err != nil {
			t.Errorf("%s %s %d: event data does not match the Task schema: %v\ndata: %s", method, path, status, err, data)
		}
	}
	if n == 0 {
		t.Errorf("%s %s %d: event stream without an event: %q", method, path, status, body)
	}
}
