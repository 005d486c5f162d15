package job_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/quirehq/quire/shared/job"
)

// FuzzDecode: Decode never panics, fails only with ErrInvalidJob, and a job it accepts
// encodes and decodes back to itself.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"v":1,"task_id":"t1","kind":"document","tenant_id":"acme","agent_id":"7","document_id":42,"priority":"high","object":"t1","filename":"notes.txt","content_type":"text/plain","enqueued_at":"2026-01-02T03:04:05Z"}`,
		`{"v":1,"task_id":"t2","kind":"webpage","tenant_id":"acme","agent_id":"7","priority":"Low","url":"https://example.com/","enqueued_at":"2026-01-02T03:04:05.123456789+02:00"}`,
		`{"v":1,"task_id":"t4","kind":"toy_kind","tenant_id":"acme","agent_id":"7","priority":"medium","args":{ "n" : [1, 2] }}`,
		`{"v":1,"task_id":"t3","kind":"crawl","tenant_id":"acme","agent_id":"7","priority":"low","url":"https://example.com/","max_pages":50,"max_depth":2,"depth":1,"parent_task_id":"t0","force":true}`,
		`{"v":2,"task_id":"t","kind":"document"}`,
		`{"v":1,"task_id":"\u0000","kind":"webpage","tenant_id":"\ud800","agent_id":"\xff","priority":" HIGH ","url":"x"}`,
		`{"v":1.0,"v":1,"task_id":"a","task_id":"b","kind":"webpage","tenant_id":"t","agent_id":"a","priority":"high","url":"u","enqueued_at":null}`,
		`[]`, `null`, `{`, ``, `{"enqueued_at":"0000-01-01T00:00:00-23:59"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := job.Decode(data)
		if err != nil {
			if !errors.Is(err, job.ErrInvalidJob) {
				t.Fatalf("Decode(%q) error %v is not ErrInvalidJob", data, err)
			}
			if j != nil {
				t.Fatalf("Decode(%q) returned a job with an error", data)
			}
			return
		}
		if err := j.Validate(); err != nil {
			t.Fatalf("Decode(%q) accepted a job that does not validate: %v", data, err)
		}
		enc, err := j.Encode()
		if err != nil {
			t.Fatalf("Encode of decoded %q: %v", data, err)
		}
		back, err := job.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = %v\nencoded: %s", data, err, enc)
		}
		if !back.EnqueuedAt.Equal(j.EnqueuedAt) {
			t.Fatalf("enqueued_at changed in the round trip: %v -> %v", j.EnqueuedAt, back.EnqueuedAt)
		}
		// Equal instants may differ in location, and args may differ in spacing; compare the
		// rest.
		back.EnqueuedAt = j.EnqueuedAt
		if !jsonEqual(back.Args, j.Args) {
			t.Fatalf("args changed in the round trip: %s -> %s", j.Args, back.Args)
		}
		args := back.Args
		back.Args, j.Args = nil, nil
		if !reflect.DeepEqual(back, j) {
			t.Fatalf("round trip changed the job:\n in %+v\nout %+v", j, back)
		}
		// Encoding is stable: a second round gives the same bytes.
		back.Args = args
		again, err := back.Encode()
		if err != nil || string(again) != string(enc) {
			t.Fatalf("second encoding differs:\n%s\n%s (%v)", enc, again, err)
		}
	})
}

// jsonEqual reports whether a and b are the same JSON but for spacing (or both absent).
func jsonEqual(a, b json.RawMessage) bool {
	var ca, cb bytes.Buffer
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}
