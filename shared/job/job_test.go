package job_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/job"
)

func validJob() *job.Job {
	return &job.Job{
		TaskID: "t1", Kind: job.KindDocument, TenantID: "acme", AgentID: "7", DocumentID: 42,
		Priority: job.PriorityHigh, Object: "t1", Filename: "notes.txt", ContentType: "text/plain",
		EnqueuedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := validJob()
	data, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"v":1`) {
		t.Fatalf("encoded job lacks version field: %s", data)
	}
	out, err := job.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip changed the job:\n in %+v\nout %+v", in, out)
	}
	if got := out.Subject(); got != "jobs.high.document" {
		t.Fatalf("subject = %q", got)
	}
}

func TestLegacyReindexDocumentJobDecodesAsReindex(t *testing.T) {
	j, err := job.Decode([]byte(`{"v":1,"task_id":"t","kind":"document","tenant_id":"a","agent_id":"1","priority":"high","document_id":9,"reindex":true}`))
	if err != nil || j.Kind != job.KindReindex || j.DocumentID != 9 || j.Subject() != "jobs.high.reindex" {
		t.Fatalf("legacy reindex job = %+v, %v; want kind reindex", j, err)
	}
}

func TestKindValidChecksSyntaxOnly(t *testing.T) {
	for _, k := range []job.Kind{job.KindDocument, job.KindWebpage, job.KindCrawl, job.KindReindex, "usage_rollup", "webhook", "toy2", job.Kind(strings.Repeat("a", job.MaxKindLen))} {
		if !k.Valid() {
			t.Errorf("%q: not valid, want valid", k)
		}
	}
	for _, k := range []job.Kind{"", "Document", "2fa", "_x", "a.b", "a*", "a>", "a b", "dé", job.Kind(strings.Repeat("a", job.MaxKindLen+1))} {
		if k.Valid() {
			t.Errorf("%q: valid, want invalid", k)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"not json", `{`},
		{"future version", `{"v":2,"task_id":"t","kind":"document","tenant_id":"a","agent_id":"1","priority":"high","object":"t","document_id":1}`},
		{"no version", `{"task_id":"t","kind":"document","tenant_id":"a","agent_id":"1","priority":"high","object":"t","document_id":1}`},
		{"malformed kind", `{"v":1,"task_id":"t","kind":"video.mp4","tenant_id":"a","agent_id":"1","priority":"high"}`},
		{"upper-case kind", `{"v":1,"task_id":"t","kind":"Video","tenant_id":"a","agent_id":"1","priority":"high"}`},
		{"reindex without document", `{"v":1,"task_id":"t","kind":"reindex","tenant_id":"a","agent_id":"1","priority":"high"}`},
		{"bad priority", `{"v":1,"task_id":"t","kind":"webpage","tenant_id":"a","agent_id":"1","priority":"urgent","url":"http://x"}`},
		{"priority not in canonical form", `{"v":1,"task_id":"t","kind":"webpage","tenant_id":"a","agent_id":"1","priority":" HIGH ","url":"http://x"}`},
		{"document without object", `{"v":1,"task_id":"t","kind":"document","tenant_id":"a","agent_id":"1","priority":"high","document_id":1}`},
		{"webpage without url", `{"v":1,"task_id":"t","kind":"webpage","tenant_id":"a","agent_id":"1","priority":"low"}`},
		{"no tenant", `{"v":1,"task_id":"t","kind":"webpage","agent_id":"1","priority":"low","url":"http://x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := job.Decode([]byte(tt.body))
			if !errors.Is(err, job.ErrInvalidJob) {
				t.Fatalf("Decode(%s) error = %v, want ErrInvalidJob", tt.body, err)
			}
		})
	}
}

func TestPriorityNames(t *testing.T) {
	for _, tt := range []struct {
		in     string
		stream string
		want   job.Priority
	}{
		{"high", "JOBS_HIGH", job.PriorityHigh},
		{" Medium ", "JOBS_MEDIUM", job.PriorityMedium},
		{"LOW", "JOBS_LOW", job.PriorityLow},
	} {
		p, err := job.ParsePriority(tt.in)
		if err != nil || p != tt.want || p.Stream() != tt.stream {
			t.Errorf("ParsePriority(%q) = %q, %v (stream %q)", tt.in, p, err, p.Stream())
		}
	}
	if _, err := job.ParsePriority("urgent"); !errors.Is(err, job.ErrInvalidPriority) {
		t.Errorf("ParsePriority(urgent) error = %v", err)
	}
	if got := job.DLQSubject(job.PriorityLow, job.KindCrawl); got != "dlq.low.crawl" {
		t.Errorf("DLQSubject = %q", got)
	}
}

func TestStateOfDocument(t *testing.T) {
	for status, want := range map[string]job.State{
		job.DocQueued: job.StatePending, job.DocProcessing: job.StateProgress, job.DocCompleted: job.StateSuccess,
		job.DocFailed: job.StateFailure, job.DocCancelled: job.StateRevoked,
	} {
		if got := job.StateOfDocument(status); got != want {
			t.Errorf("StateOfDocument(%s) = %s, want %s", status, got, want)
		}
	}
}
