package jobqueue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/natstest"
)

func TestEnsureIsIdempotentAndConcurrent(t *testing.T) {
	s := natstest.Run(t)
	cfg := jobqueue.Config{AckWait: 20 * time.Second, UpdateConsumers: true}
	// Several services starting at once.
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		_, js := natstest.Connect(t, s)
		wg.Go(func() {
			_, err := jobqueue.Ensure(t.Context(), js, cfg)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Ensure: %v", err)
		}
	}
	_, js := natstest.Connect(t, s)
	// And again, sequentially, with a changed AckWait that the worker applies.
	cfg.AckWait = 45 * time.Second
	if _, err := jobqueue.Ensure(t.Context(), js, cfg); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	for _, p := range job.Priorities {
		st, err := js.Stream(t.Context(), p.Stream())
		if err != nil {
			t.Fatalf("stream %s: %v", p.Stream(), err)
		}
		info := st.CachedInfo()
		if info.Config.Subjects[0] != "jobs."+string(p)+".>" || info.Config.Duplicates < 2*time.Minute {
			t.Errorf("stream %s config = %+v", p.Stream(), info.Config)
		}
		c, err := st.Consumer(t.Context(), job.ConsumerName)
		if err != nil {
			t.Fatalf("consumer on %s: %v", p.Stream(), err)
		}
		if got := c.CachedInfo().Config.AckWait; got != 45*time.Second {
			t.Errorf("consumer AckWait on %s = %v, want 45s", p.Stream(), got)
		}
	}
	// The API's Ensure (UpdateConsumers false) must not undo the worker's consumer settings.
	if _, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{AckWait: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	c, err := js.Consumer(t.Context(), "JOBS_HIGH", job.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CachedInfo().Config.AckWait; got != 45*time.Second {
		t.Errorf("API Ensure changed AckWait to %v", got)
	}
	names := js.StreamNames(t.Context())
	var got []string
	for n := range names.Name() {
		got = append(got, n)
	}
	want := map[string]bool{"JOBS_HIGH": true, "JOBS_MEDIUM": true, "JOBS_LOW": true, "JOBS_DLQ": true, "SCHEDULES": true, "KV_TASKS": true, "OBJ_UPLOADS": true}
	for _, n := range got {
		delete(want, n)
	}
	if len(want) != 0 {
		t.Errorf("missing streams %v (have %v)", want, got)
	}
}

func TestPublishDeduplicatesByMsgID(t *testing.T) {
	s := natstest.Run(t)
	_, js := natstest.Connect(t, s)
	if _, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{}); err != nil {
		t.Fatal(err)
	}
	pub := jobqueue.NewPublisher(js)
	j := &job.Job{TaskID: "task-1", Kind: job.KindWebpage, TenantID: "a", AgentID: "1", Priority: job.PriorityLow, URL: "https://example.com"}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for _, id := range []string{"task-1", "task-1", "task-1:1"} {
		if err := pub.Publish(ctx, j, id); err != nil {
			t.Fatal(err)
		}
	}
	st, err := js.Stream(ctx, "JOBS_LOW")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("JOBS_LOW holds %d messages, want 2 (a duplicate and a deliberate re-publish)", info.State.Msgs)
	}
}

func TestSchedulesStreamFiresWithTTLAndRollup(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Run(t))
	ctx := t.Context()
	top, err := jobqueue.Ensure(ctx, js, jobqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := top.Schedules.CachedInfo().Config
	if !cfg.AllowMsgSchedules || !cfg.AllowMsgTTL || cfg.Retention != jetstream.LimitsPolicy || cfg.Storage != jetstream.FileStorage {
		t.Fatalf("SCHEDULES config = %+v", cfg)
	}
	c, err := js.Consumer(ctx, job.ScheduleStream, job.MaterializerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if cc := c.CachedInfo().Config; cc.FilterSubject != "schedules.fire.>" || cc.AckPolicy != jetstream.AckExplicitPolicy || cc.MaxDeliver <= 0 {
		t.Fatalf("materializer config = %+v", cc)
	}
	if _, err := jobqueue.Ensure(ctx, js, jobqueue.Config{}); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	_, err = js.Publish(ctx, job.ScheduleDefSubject("s1"), []byte("{}"), jetstream.WithScheduleEvery(time.Second),
		jetstream.WithScheduleTarget(job.ScheduleFireSubject("s1")), jetstream.WithScheduleTTL(jobqueue.ScheduleFireTTL),
		jetstream.WithScheduleRollup())
	if err != nil {
		t.Fatalf("publish definition: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := top.Schedules.Info(ctx, jetstream.WithSubjectFilter("schedules.>"))
		if err != nil {
			t.Fatal(err)
		}
		if info.State.LastSeq >= 4 {
			// Three fires or more so far: the definition and the latest fire remain, earlier
			// fires rolled up.
			if info.State.Subjects[job.ScheduleFireSubject("s1")] != 1 || info.State.Msgs != 2 {
				t.Fatalf("SCHEDULES holds %d messages on %v, want a definition and one fire", info.State.Msgs, info.State.Subjects)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SCHEDULES subjects = %v after 10s, want three fires", info.State.Subjects)
		}
		time.Sleep(200 * time.Millisecond)
	}
	msg, err := top.Schedules.GetLastMsgForSubject(ctx, job.ScheduleFireSubject("s1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get("Nats-TTL"); got != jobqueue.ScheduleFireTTL.String() {
		t.Errorf("fire Nats-TTL = %q, want %s", got, jobqueue.ScheduleFireTTL)
	}
	for _, p := range job.Priorities {
		info, err := js.Stream(ctx, p.Stream())
		if err != nil {
			t.Fatal(err)
		}
		if n := info.CachedInfo().State.Msgs; n != 0 {
			t.Errorf("%s holds %d messages; schedules must stay out of the job streams", p.Stream(), n)
		}
	}
}
