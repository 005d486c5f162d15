package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/api-service/internal/api"
	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/pgtest"
	"github.com/quirehq/quire/shared/taskstatus"
)

// schedEnv is one NATS server and one database with any number of API replicas on them.
type schedEnv struct {
	t     *testing.T
	js    jetstream.JetStream
	dbURL string
	docs  *docstore.Store
	nurl  string
}

func newSchedEnv(t *testing.T) *schedEnv {
	t.Helper()
	ns := natstest.Run(t)
	_, js := natstest.Connect(t, ns)
	if _, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{}); err != nil {
		t.Fatal(err)
	}
	url := pgtest.NewDB(t)
	docs, err := docstore.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(docs.Close)
	return &schedEnv{t: t, js: js, dbURL: url, docs: docs, nurl: ns.ClientURL()}
}

// replica is one API server, its HTTP endpoint and its materializer.
type replica struct {
	api  *api.Server
	srv  *httptest.Server
	stop func() // stops the materializer and waits for it
}

// replica starts an API server with its own NATS connection; with materialize, its
// materializer runs until stop or the test's end.
func (e *schedEnv) replica(materialize bool) *replica {
	t := e.t
	t.Helper()
	nc, err := nats.Connect(e.nurl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	top, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a := api.New(api.Config{Tokens: map[string]string{tokenAcme: "acme", tokenOther: "other"}}, api.Deps{
		NATS: nc, JetStream: js, Uploads: top.Uploads, Statuses: taskstatus.New(top.Tasks, js, time.Hour),
		Docs: e.docs, Idempotency: top.Idempotency, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	srv := httptest.NewServer(a.Handler())
	r := &replica{api: a, srv: srv, stop: func() {}}
	if materialize {
		r.start(t)
	}
	t.Cleanup(func() { r.stop(); srv.Close(); a.Close(context.Background()) })
	return r
}

func (r *replica) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.api.RunMaterializer(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("materializer: %v", err)
		}
	})
	r.stop = func() { cancel(); wg.Wait() }
}

func (r *replica) call(t *testing.T, method, token, path, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, r.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return do(t, req)
}

func (r *replica) create(t *testing.T, body string) string {
	t.Helper()
	resp, out := r.call(t, http.MethodPost, tokenAcme, "/api/v1/schedules", body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create schedule: %d %v", resp.StatusCode, out)
	}
	return out["id"].(string)
}

const webpageTask = `"task":{"kind":"webpage","agent_id":"7","url":"https://example.com/news"}`

// definition returns the last message on schedule id's definition subject, nil if none.
func (e *schedEnv) definition(id string) *jetstream.RawStreamMsg {
	e.t.Helper()
	st, err := e.js.Stream(e.t.Context(), job.ScheduleStream)
	if err != nil {
		e.t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(e.t.Context(), job.ScheduleDefSubject(id))
	if err != nil {
		return nil
	}
	return msg
}

// tasksPerFire counts schedule id's tasks by their run's fire time, straight from the tables.
func (e *schedEnv) tasksPerFire(id string) (map[time.Time]int, int) {
	e.t.Helper()
	conn, err := pgx.Connect(e.t.Context(), e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(e.t.Context(), `SELECT r.fire_time, count(t.task_id) FROM tasks t
		JOIN schedule_runs r ON r.task_id = t.task_id WHERE t.schedule_id = $1 GROUP BY r.fire_time`, id)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[time.Time]int{}
	for rows.Next() {
		var at time.Time
		var n int
		if err := rows.Scan(&at, &n); err != nil {
			e.t.Fatal(err)
		}
		out[at] = n
	}
	var total int
	if err := conn.QueryRow(e.t.Context(), `SELECT count(*) FROM tasks WHERE schedule_id = $1`, id).Scan(&total); err != nil {
		e.t.Fatal(err)
	}
	return out, total
}

// runs lists schedule id's runs through the API.
func (r *replica) runs(t *testing.T, id string) []map[string]any {
	t.Helper()
	resp, out := r.call(t, http.MethodGet, tokenAcme, "/api/v1/schedules/"+id+"/runs?limit=500", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("runs: %d %v", resp.StatusCode, out)
	}
	var runs []map[string]any
	for _, r := range out["runs"].([]any) {
		runs = append(runs, r.(map[string]any))
	}
	return runs
}

func enqueuedRuns(runs []map[string]any) int {
	n := 0
	for _, r := range runs {
		if r["state"] != "skipped" {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestScheduleValidation(t *testing.T) {
	e := newSchedEnv(t)
	r := e.replica(false)
	tests := []struct {
		body, field string
	}{
		{`{"name":"x","cron":"61 * * * *",` + webpageTask + `}`, "cron"},
		{`{"name":"x","cron":"* * *",` + webpageTask + `}`, "cron"},
		{`{"name":"x","cron":"0 3 * * *","timezone":"Europe/Atlantis",` + webpageTask + `}`, "timezone"},
		{`{"name":"x","every":"500ms",` + webpageTask + `}`, "every"},
		{`{"name":"x","every":"often",` + webpageTask + `}`, "every"},
		{`{"name":"x","at":"next tuesday",` + webpageTask + `}`, "at"},
		{`{"name":"x","every":"1m","at":"2030-01-01T00:00:00Z",` + webpageTask + `}`, "one of"},
		{`{"name":"x",` + webpageTask + `}`, "one of"},
		{`{"every":"1m",` + webpageTask + `}`, "name"},
		{`{"name":"x","every":"1m","overlap":"queue",` + webpageTask + `}`, "overlap"},
		{`{"name":"x","every":"1m"}`, "task"},
		{`{"name":"x","every":"1m","task":{"kind":"document","agent_id":"7","url":"https://example.com/"}}`, "task.kind"},
		{`{"name":"x","every":"1m","task":{"kind":"webpage","agent_id":"7","url":"ftp://example.com/"}}`, "task.url"},
		{`{"name":"x","every":"1m","task":{"kind":"crawl","agent_id":"7","url":"https://example.com/","max_pages":0}}`, "task.max_pages"},
		{`{"name":"x","every":"1m","task":{"kind":"webpage","agent_id":"no spaces","url":"https://example.com/"}}`, "task.agent_id"},
	}
	for _, tt := range tests {
		resp, out := r.call(t, http.MethodPost, tokenAcme, "/api/v1/schedules", tt.body)
		msg, _ := out["error"].(map[string]any)["message"].(string)
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(msg, tt.field) {
			t.Errorf("POST %s = %d %q, want 400 naming %q", tt.body, resp.StatusCode, msg, tt.field)
		}
	}
	if st, err := e.js.Stream(t.Context(), job.ScheduleStream); err != nil || st.CachedInfo().State.Msgs != 0 {
		t.Fatalf("refused schedules left messages in SCHEDULES: %v", err)
	}
}

// The routes of one schedule: create (definition published with version 1), another
// tenant's 404, PATCH (version 2 re-published), pause (definition purged), resume (back),
// DELETE (gone from SCHEDULES and PostgreSQL).
func TestScheduleLifecycle(t *testing.T) {
	e := newSchedEnv(t)
	r := e.replica(false)
	resp, out := r.call(t, http.MethodPost, tokenAcme, "/api/v1/schedules",
		`{"name":"nightly news","cron":"30 2 * * *","timezone":"Europe/Berlin",`+webpageTask+`}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %v", resp.StatusCode, out)
	}
	id := out["id"].(string)
	if out["cron"] != "0 30 2 * * *" || out["timezone"] != "Europe/Berlin" || out["overlap"] != "skip" || out["next_run_at"] == nil {
		t.Fatalf("created = %v", out)
	}
	next, err := time.Parse(time.RFC3339, out["next_run_at"].(string))
	if err != nil || next.Before(time.Now()) || next.After(time.Now().Add(25*time.Hour)) || !strings.HasSuffix(out["next_run_at"].(string), "+01:00") {
		t.Fatalf("next_run_at = %v, want the next 02:30 in Berlin (CET in December)", out["next_run_at"])
	}
	def := e.definition(id)
	if def == nil || def.Header.Get("Nats-Schedule") != "0 30 2 * * *" || def.Header.Get("Nats-Schedule-Time-Zone") != "Europe/Berlin" ||
		def.Header.Get("Nats-Schedule-Target") != job.ScheduleFireSubject(id) || def.Header.Get(job.HeaderScheduleVersion) != "1" {
		t.Fatalf("definition = %+v", def)
	}
	for _, path := range []string{"", "/runs"} {
		if resp, _ := r.call(t, http.MethodGet, tokenOther, "/api/v1/schedules/"+id+path, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("another tenant's GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
	for _, action := range []string{"pause", "resume", "trigger"} {
		if resp, _ := r.call(t, http.MethodPost, tokenOther, "/api/v1/schedules/"+id+"/"+action, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("another tenant's %s = %d, want 404", action, resp.StatusCode)
		}
	}
	if resp, _ := r.call(t, http.MethodDelete, tokenOther, "/api/v1/schedules/"+id, ""); resp.StatusCode != http.StatusNotFound || e.definition(id) == nil {
		t.Fatalf("another tenant's DELETE = %d", resp.StatusCode)
	}
	if _, out := r.call(t, http.MethodGet, tokenOther, "/api/v1/schedules", ""); len(out["schedules"].([]any)) != 0 {
		t.Fatalf("another tenant lists %v", out)
	}

	resp, out = r.call(t, http.MethodPatch, tokenAcme, "/api/v1/schedules/"+id, `{"every":"1h","timezone":"Mars/Base"}`)
	if resp.StatusCode != http.StatusBadRequest || e.definition(id).Header.Get(job.HeaderScheduleVersion) != "1" {
		t.Fatalf("bad PATCH = %d %v", resp.StatusCode, out)
	}
	resp, out = r.call(t, http.MethodPatch, tokenAcme, "/api/v1/schedules/"+id, `{"every":"1h","name":"hourly news"}`)
	if resp.StatusCode != http.StatusOK || out["every"] != "1h0m0s" || out["timezone"] != nil || out["version"] != float64(2) || out["name"] != "hourly news" {
		t.Fatalf("PATCH = %d %v", resp.StatusCode, out)
	}
	if def := e.definition(id); def.Header.Get("Nats-Schedule") != "@every 1h0m0s" || def.Header.Get(job.HeaderScheduleVersion) != "2" || def.Header.Get("Nats-Schedule-Time-Zone") != "" {
		t.Fatalf("definition after PATCH = %v", def.Header)
	}
	resp, out = r.call(t, http.MethodPost, tokenAcme, "/api/v1/schedules/"+id+"/pause", "")
	if resp.StatusCode != http.StatusOK || out["enabled"] != false || out["next_run_at"] != nil || e.definition(id) != nil {
		t.Fatalf("pause = %d %v; definition %v", resp.StatusCode, out, e.definition(id))
	}
	if resp, out := r.call(t, http.MethodPost, tokenAcme, "/api/v1/schedules/"+id+"/trigger", ""); resp.StatusCode != http.StatusConflict {
		t.Fatalf("trigger while paused = %d %v, want 409", resp.StatusCode, out)
	}
	resp, out = r.call(t, http.MethodPost, tokenAcme, "/api/v1/schedules/"+id+"/resume", "")
	if resp.StatusCode != http.StatusOK || out["enabled"] != true || e.definition(id) == nil || e.definition(id).Header.Get(job.HeaderScheduleVersion) != "4" {
		t.Fatalf("resume = %d %v", resp.StatusCode, out)
	}
	if _, out := r.call(t, http.MethodGet, tokenAcme, "/api/v1/schedules", ""); len(out["schedules"].([]any)) != 1 {
		t.Fatalf("list = %v", out)
	}
	if resp, out := r.call(t, http.MethodDelete, tokenAcme, "/api/v1/schedules/"+id, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("delete = %d %v", resp.StatusCode, out)
	}
	if e.definition(id) != nil {
		t.Fatal("the deleted schedule's definition is still in SCHEDULES")
	}
	if resp, _ := r.call(t, http.MethodGet, tokenAcme, "/api/v1/schedules/"+id, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET deleted = %d", resp.StatusCode)
	}
}

// An @every 1s schedule makes a distinct task per fire; paused, none; resumed, it goes on;
// deleted, its definition is gone from SCHEDULES.
func TestScheduleEverySecond(t *testing.T) {
	e := newSchedEnv(t)
	r := e.replica(true)
	id := r.create(t, `{"name":"tick","every":"1s","overlap":"allow",`+webpageTask+`}`)
	waitFor(t, "3 runs", 15*time.Second, func() bool { return enqueuedRuns(r.runs(t, id)) >= 3 })
	seen := map[string]bool{}
	for _, run := range r.runs(t, id) {
		taskID, _ := run["task_id"].(string)
		if taskID == "" || seen[taskID] {
			t.Fatalf("runs %v: a run without a task or two runs with one", r.runs(t, id))
		}
		seen[taskID] = true
		resp, st := r.call(t, http.MethodGet, tokenAcme, "/api/v1/tasks/"+taskID, "")
		if resp.StatusCode != http.StatusOK || st["state"] != "PENDING" {
			t.Fatalf("task %s = %d %v", taskID, resp.StatusCode, st)
		}
	}
	if perFire, total := e.tasksPerFire(id); len(perFire) != total {
		t.Fatalf("%d tasks for %d fire times", total, len(perFire))
	}

	if resp, _ := r.call(t, http.MethodPost, tokenAcme, "/api/v1/schedules/"+id+"/pause", ""); resp.StatusCode != http.StatusOK {
		t.Fatal("pause failed")
	}
	time.Sleep(500 * time.Millisecond) // a fire already made before the pause may land
	_, paused := e.tasksPerFire(id)
	time.Sleep(2500 * time.Millisecond)
	if _, total := e.tasksPerFire(id); total != paused {
		t.Fatalf("paused, the schedule made %d more tasks", total-paused)
	}
	if resp, _ := r.call(t, http.MethodPost, tokenAcme, "/api/v1/schedules/"+id+"/resume", ""); resp.StatusCode != http.StatusOK {
		t.Fatal("resume failed")
	}
	waitFor(t, "a run after resuming", 10*time.Second, func() bool { _, n := e.tasksPerFire(id); return n >= paused+2 })

	if resp, _ := r.call(t, http.MethodDelete, tokenAcme, "/api/v1/schedules/"+id, ""); resp.StatusCode != http.StatusOK {
		t.Fatal("delete failed")
	}
	st, err := e.js.Stream(t.Context(), job.ScheduleStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter("schedules.>"))
	if err != nil {
		t.Fatal(err)
	}
	for subj := range info.State.Subjects {
		if strings.HasSuffix(subj, "."+id) {
			t.Fatalf("SCHEDULES still holds %s after the schedule's deletion (%v)", subj, info.State.Subjects)
		}
	}
}

// Two API replicas materialise the same fires: none becomes two tasks, not even a fire
// delivered twice.
func TestScheduleTwoReplicasNoDuplicates(t *testing.T) {
	e := newSchedEnv(t)
	a, b := e.replica(true), e.replica(true)
	id := a.create(t, `{"name":"tick","every":"1s","overlap":"allow",`+webpageTask+`}`)
	// The same fire published twice more, as a redelivery or a second fire after a leader
	// change would bring it.
	at := time.Now().UTC().Add(time.Hour).Truncate(time.Second).Format(time.RFC3339)
	for range 2 {
		msg := nats.NewMsg(job.ScheduleFireSubject(id))
		msg.Header.Set(job.HeaderFireTime, at)
		if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "6 runs", 20*time.Second, func() bool { return enqueuedRuns(b.runs(t, id)) >= 6 })
	perFire, total := e.tasksPerFire(id)
	for at, n := range perFire {
		if n != 1 {
			t.Errorf("fire %s made %d tasks", at, n)
		}
	}
	if total != len(perFire) {
		t.Fatalf("%d tasks for %d fires", total, len(perFire))
	}
}

// With the API down for 5 fires, the restarted materializer makes one catch-up run, not five:
// each fire rolls up the one before it.
func TestScheduleCatchUpAfterDowntime(t *testing.T) {
	e := newSchedEnv(t)
	r := e.replica(true)
	id := r.create(t, `{"name":"tick","every":"1s","overlap":"allow",`+webpageTask+`}`)
	waitFor(t, "a first run", 10*time.Second, func() bool { _, n := e.tasksPerFire(id); return n >= 1 })
	r.stop()
	_, before := e.tasksPerFire(id)
	time.Sleep(5500 * time.Millisecond)
	// Restarted just after a fire, before the next.
	r.start(t)
	waitFor(t, "the catch-up run", 5*time.Second, func() bool { _, n := e.tasksPerFire(id); return n > before })
	time.Sleep(300 * time.Millisecond)
	_, after := e.tasksPerFire(id)
	if after-before > 2 { // the catch-up run, and at most the next regular fire
		t.Fatalf("after 5 missed fires the restart made %d runs, want one catch-up run", after-before)
	}
	runs := r.runs(t, id)
	if len(runs) < 2 {
		t.Fatalf("runs = %v", runs)
	}
}

// Overlap skip: a schedule firing every second on a job that takes 3 seconds never has two
// runs at once. The job stream's consumer here takes every job as it comes, each in its own
// goroutine (as a worker with free slots would), and finishes it 3 seconds later.
func TestScheduleOverlapSkip(t *testing.T) {
	e := newSchedEnv(t)
	r := e.replica(true)
	cons, err := e.js.Consumer(t.Context(), job.PriorityHigh.Stream(), job.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	type span struct{ start, end time.Time }
	var mu sync.Mutex
	var spans []span
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	run := func(m jetstream.Msg) {
		j, err := job.Decode(m.Data())
		if err != nil {
			t.Errorf("job: %v", err)
			return
		}
		start := time.Now()
		select {
		case <-time.After(3 * time.Second):
		case <-ctx.Done():
		}
		end := time.Now() // the run ends as its outcome is recorded
		if err := e.docs.FinishTask(context.WithoutCancel(ctx), j.TaskID, job.StateSuccess, 1, ""); err != nil {
			t.Errorf("finish: %v", err)
		}
		mu.Lock()
		spans = append(spans, span{start, end})
		mu.Unlock()
		_ = m.Ack()
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			msgs, err := cons.Fetch(4, jetstream.FetchMaxWait(200*time.Millisecond))
			if err != nil {
				continue
			}
			for m := range msgs.Messages() {
				wg.Go(func() { run(m) })
			}
		}
	})
	id := r.create(t, `{"name":"slow","every":"1s",`+webpageTask+`}`)
	waitFor(t, "3 finished runs", 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(spans) >= 3 })
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(spans, func(a, b span) int { return a.start.Compare(b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start.Before(spans[i-1].end) {
			t.Fatalf("run %d started at %s, before run %d ended at %s", i+1, spans[i].start, i, spans[i-1].end)
		}
	}
	skipped := 0
	for _, run := range r.runs(t, id) {
		if run["state"] == "skipped" {
			skipped++
		}
	}
	if skipped < 2*(len(spans)-1) {
		t.Fatalf("%d runs of 3 s each firing every second, but only %d fires skipped", len(spans), skipped)
	}
}

// Trigger makes a run now; start-up reconciliation restores a lost definition at its version
// and removes a definition no schedule calls for.
func TestScheduleTriggerAndReconcile(t *testing.T) {
	e := newSchedEnv(t)
	r := e.replica(true)
	id := r.create(t, `{"name":"weekly","cron":"@weekly",`+webpageTask+`}`)
	resp, out := r.call(t, http.MethodPost, tokenAcme, "/api/v1/schedules/"+id+"/trigger", "")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("trigger = %d %v", resp.StatusCode, out)
	}
	waitFor(t, "the triggered run", 10*time.Second, func() bool { return enqueuedRuns(r.runs(t, id)) == 1 })
	if runs := r.runs(t, id); runs[0]["fire_time"] != out["fire_time"] {
		t.Fatalf("run %v, trigger %v", runs[0], out)
	}
	_, got := r.call(t, http.MethodGet, tokenAcme, "/api/v1/schedules/"+id, "")
	if got["last_run_at"] == nil {
		t.Fatalf("last_run_at not set: %v", got)
	}

	// A single time, run once, is run again when PATCH gives it a new time.
	once := r.create(t, `{"name":"once","overlap":"allow","at":"`+time.Now().Add(time.Second).UTC().Format(time.RFC3339)+`",`+webpageTask+`}`)
	waitFor(t, "the single run", 10*time.Second, func() bool { return enqueuedRuns(r.runs(t, once)) == 1 })
	if _, got := r.call(t, http.MethodGet, tokenAcme, "/api/v1/schedules/"+once, ""); got["next_run_at"] != nil || got["last_run_at"] == nil {
		t.Fatalf("a single time that has run: %v", got)
	}
	if resp, got := r.call(t, http.MethodPatch, tokenAcme, "/api/v1/schedules/"+once,
		`{"at":"`+time.Now().Add(time.Second).UTC().Format(time.RFC3339)+`"}`); resp.StatusCode != http.StatusOK || got["next_run_at"] == nil {
		t.Fatalf("PATCH at = %d %v", resp.StatusCode, got)
	}
	waitFor(t, "the second single run", 10*time.Second, func() bool { return enqueuedRuns(r.runs(t, once)) == 2 })

	st, err := e.js.Stream(t.Context(), job.ScheduleStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(t.Context(), jetstream.WithPurgeSubject(job.ScheduleDefSubject(id))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.Publish(t.Context(), job.ScheduleDefSubject("stray"), nil, jetstream.WithScheduleEvery(time.Hour),
		jetstream.WithScheduleTarget(job.ScheduleFireSubject("stray"))); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a second pass finds nothing to do
		if err := r.api.Reconcile(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if def := e.definition(id); def == nil || def.Header.Get(job.HeaderScheduleVersion) != "1" || def.Header.Get("Nats-Schedule") != "@weekly" {
		t.Fatalf("reconciled definition = %v", def)
	}
	if e.definition("stray") != nil {
		t.Fatal("a definition without a schedule survived reconciliation")
	}
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(job.ScheduleDefSubjects))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != 1 {
		t.Fatalf("definitions after reconciliation: %v", info.State.Subjects)
	}
	raw, _ := json.Marshal(info.State.Subjects)
	if !strings.Contains(string(raw), id) {
		t.Fatalf("definitions after reconciliation: %s", raw)
	}
}

// callJSON sends body as JSON to path with token.
func (e *env) callJSON(t *testing.T, method, token, path, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// On the fall-back day a daily 02:30 in Berlin gets two fires from the server, at 02:30 CEST
// and at 02:30 CET; it runs once. An hourly schedule runs at both 02:00s. The fires are
// published as the server would make them, with their times.
func TestScheduleFallBackRunsOnce(t *testing.T) {
	e := newSchedEnv(t)
	r := e.replica(true)
	daily := r.create(t, `{"name":"daily","cron":"30 2 * * *","timezone":"Europe/Berlin","overlap":"allow",`+webpageTask+`}`)
	hourly := r.create(t, `{"name":"hourly","cron":"0 * * * *","timezone":"Europe/Berlin","overlap":"allow",`+webpageTask+`}`)
	fire := func(id, at string) {
		t.Helper()
		msg := nats.NewMsg(job.ScheduleFireSubject(id))
		msg.Header.Set(job.HeaderFireTime, at)
		if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	fire(daily, "2026-10-25T00:30:00Z")  // 02:30 CEST
	fire(daily, "2026-10-25T01:30:00Z")  // 02:30 CET
	fire(daily, "2026-10-26T01:30:00Z")  // the next day
	fire(hourly, "2026-10-25T00:00:00Z") // 02:00 CEST
	fire(hourly, "2026-10-25T01:00:00Z") // 02:00 CET
	waitFor(t, "the runs", 10*time.Second, func() bool {
		return enqueuedRuns(r.runs(t, daily)) >= 2 && enqueuedRuns(r.runs(t, hourly)) >= 2
	})
	time.Sleep(500 * time.Millisecond)
	var times []string
	for _, run := range r.runs(t, daily) {
		times = append(times, run["fire_time"].(string))
	}
	if strings.Join(times, " ") != "2026-10-26T01:30:00Z 2026-10-25T00:30:00Z" {
		t.Fatalf("daily runs at %v, want the first 02:30 of 25 October and 26 October's", times)
	}
	if n := len(r.runs(t, hourly)); n != 2 {
		t.Fatalf("hourly made %d runs, want both 02:00s", n)
	}
}

// A scheduled crawl's job syncs (removes the pages gone from the site); its bounds are the
// template's.
func TestScheduledCrawlSyncs(t *testing.T) {
	e := newSchedEnv(t)
	r := e.replica(true)
	id := r.create(t, `{"name":"re-crawl","cron":"@daily","task":{"kind":"crawl","agent_id":"7","url":"https://docs.example.com/","max_pages":20}}`)
	if resp, out := r.call(t, http.MethodPost, tokenAcme, "/api/v1/schedules/"+id+"/trigger", ""); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("trigger = %d %v", resp.StatusCode, out)
	}
	waitFor(t, "the run", 10*time.Second, func() bool { return enqueuedRuns(r.runs(t, id)) == 1 })
	task, _, err := e.docs.GetTask(t.Context(), "acme", r.runs(t, id)[0]["task_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	j, err := task.Job()
	if err != nil || j.Kind != job.KindCrawl || !j.Sync || j.MaxPages != 20 || j.MaxDepth != 2 || j.Priority != job.PriorityLow || task.ScheduleID != id {
		t.Fatalf("scheduled crawl = %+v, %v (task %+v)", j, err, task)
	}
}
