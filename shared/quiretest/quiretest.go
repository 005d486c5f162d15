// Package quiretest gives tests of every module a Quire environment on real servers: an
// in-process JetStream server with Quire's topology ([Queue]), a PostgreSQL store ([Store]),
// and the steps those tests repeat (queue a job as the API does, wait for a task's state, count
// a stream's messages, read a metric). It is for tests only.
package quiretest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/pgtest"
	"github.com/quirehq/quire/shared/taskstatus"
)

// Env is a JetStream server with Quire's topology, and clients of it.
type Env struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Top      *jobqueue.Topology
	Statuses *taskstatus.Store
	Pub      *jobqueue.Publisher
}

// Queue starts an in-process JetStream server for t, connects to it and ensures Quire's
// topology with cfg. Statuses keep terminal states for an hour.
func Queue(t testing.TB, cfg jobqueue.Config) *Env {
	t.Helper()
	ns := natstest.Run(t)
	nc, js := natstest.Connect(t, ns)
	top, err := jobqueue.Ensure(t.Context(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Env{NC: nc, JS: js, Top: top, Statuses: taskstatus.New(top.Tasks, js, time.Hour), Pub: jobqueue.NewPublisher(js)}
}

// Store opens a docstore on a new database of t's PostgreSQL (see [pgtest.NewDB]), closed when
// t ends.
func Store(t testing.TB) *docstore.Store {
	t.Helper()
	docs, err := docstore.Open(t.Context(), pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(docs.Close)
	return docs
}

// Publish creates j's PENDING status and publishes j with its task id as Nats-Msg-Id: the job
// as the API queues it, without a tasks row (for tests of the runtime alone).
func (e *Env) Publish(t testing.TB, j *job.Job) {
	t.Helper()
	if err := e.Statuses.Create(t.Context(), job.PendingStatus(j, "")); err != nil {
		t.Fatal(err)
	}
	if err := e.Pub.Publish(t.Context(), j, j.TaskID); err != nil {
		t.Fatal(err)
	}
}

// WaitStatus polls the status of task id until cond holds and returns it; t fails after within,
// saying it wanted what.
func WaitStatus(t testing.TB, statuses *taskstatus.Store, id string, within time.Duration, what string, cond func(*job.Status) bool) *job.Status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, _, err := statuses.Get(t.Context(), id)
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: status %+v (err %v), want %s within %v", id, st, err, what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitState waits up to within for task id to reach state.
func WaitState(t testing.TB, statuses *taskstatus.Store, id string, state job.State, within time.Duration) *job.Status {
	t.Helper()
	return WaitStatus(t, statuses, id, within, string(state), func(st *job.Status) bool { return st.State == state })
}

// StreamMsgs returns how many messages stream name holds.
func StreamMsgs(t testing.TB, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	st, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// WaitPending waits up to within until the consumer `workers` of p counts n pending jobs: a
// consumer's pending count trails the stream by a moment after a publish.
func WaitPending(t testing.TB, js jetstream.JetStream, p job.Priority, n uint64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := js.Consumer(t.Context(), p.Stream(), job.ConsumerName)
		if err == nil {
			var info *jetstream.ConsumerInfo
			if info, err = c.Info(t.Context()); err == nil && info.NumPending == n {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: num_pending never reached %d (%v)", p.Stream(), n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// MetricValue returns the value of the counter or gauge series of name with exactly labels
// ("k=v,..." sorted by name), or the sample count of a histogram series; ok is false if there
// is none.
func MetricValue(mfs map[string]*dto.MetricFamily, name, labels string) (v float64, ok bool) {
	for _, m := range mfs[name].GetMetric() {
		var parts []string
		for _, l := range m.GetLabel() {
			parts = append(parts, l.GetName()+"="+l.GetValue())
		}
		slices.Sort(parts)
		if strings.Join(parts, ",") != labels {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// PDF returns a PDF of real syntax (objects, an xref table, Helvetica text) with one page per
// element of pages, each page's text on its lines, as a text layer every PDF engine reads.
func PDF(pages ...[]string) []byte {
	var objs []string // object n is objs[n-1]
	objs = append(objs, "<</Type/Catalog/Pages 2 0 R>>", "", "<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>")
	var kids []string
	for _, lines := range pages {
		var cs strings.Builder
		cs.WriteString("BT /F1 12 Tf 14 TL 72 720 Td\n")
		for _, l := range lines {
			fmt.Fprintf(&cs, "(%s) Tj T*\n", l)
		}
		cs.WriteString("ET")
		objs = append(objs, fmt.Sprintf("<</Length %d>>\nstream\n%s\nendstream", cs.Len(), cs.String()))
		objs = append(objs, fmt.Sprintf("<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Resources<</Font<</F1 3 0 R>>>>/Contents %d 0 R>>", len(objs)))
		kids = append(kids, fmt.Sprintf("%d 0 R", len(objs)))
	}
	objs[1] = fmt.Sprintf("<</Type/Pages/Kids[%s]/Count %d>>", strings.Join(kids, " "), len(kids))
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}
