package schedule_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/schedule"
)

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestParse(t *testing.T) {
	tests := []struct {
		kind      schedule.Kind
		text      string
		zone      string
		header    string
		wantField string // the field a *FieldError names; "" for a valid spec
	}{
		{kind: schedule.KindCron, text: "30 2 * * *", header: "0 30 2 * * *"},
		{kind: schedule.KindCron, text: " 15  30 2 * * MON-FRI ", zone: "Europe/Berlin", header: "15 30 2 * * MON-FRI"},
		{kind: schedule.KindCron, text: "*/5 9-17 1,15 jan-jun *", header: "0 */5 9-17 1,15 jan-jun *"},
		{kind: schedule.KindCron, text: "@Daily", zone: "America/New_York", header: "@daily"},
		{kind: schedule.KindCron, text: "@hourly", header: "@hourly"},
		{kind: schedule.KindEvery, text: "90s", header: "@every 1m30s"},
		{kind: schedule.KindEvery, text: "1s", header: "@every 1s"},
		{kind: schedule.KindAt, text: "2026-03-29T02:30:00+01:00", header: "@at 2026-03-29T01:30:00Z"},

		{kind: schedule.KindCron, text: "", wantField: "cron"},
		{kind: schedule.KindCron, text: "* * * *", wantField: "cron"},
		{kind: schedule.KindCron, text: "1 2 3 4 5 6 7", wantField: "cron"},
		{kind: schedule.KindCron, text: "61 * * * *", wantField: "cron"},
		{kind: schedule.KindCron, text: "0 0 30 2 *", wantField: "cron"}, // 30 February
		{kind: schedule.KindCron, text: "@every 1s", wantField: "cron"},
		{kind: schedule.KindCron, text: "TZ=UTC", wantField: "cron"},
		{kind: schedule.KindCron, text: "TZ=Europe/Berlin 0 * * * *", wantField: "cron"},
		{kind: schedule.KindCron, text: "0 * * * *", zone: "Mars/Olympus", wantField: "timezone"},
		{kind: schedule.KindCron, text: "0 * * * *", zone: "Local", wantField: "timezone"},
		{kind: schedule.KindEvery, text: "500ms", wantField: "every"},
		{kind: schedule.KindEvery, text: "1.5s", wantField: "every"},
		{kind: schedule.KindEvery, text: "daily", wantField: "every"},
		{kind: schedule.KindEvery, text: "1m", zone: "Europe/Berlin", wantField: "timezone"},
		{kind: schedule.KindAt, text: "tomorrow", wantField: "at"},
		{kind: schedule.KindAt, text: "2026-03-29 02:30:00", wantField: "at"},
		{kind: "weekly", text: "x", wantField: "kind"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %q %s", tt.kind, tt.text, tt.zone), func(t *testing.T) {
			s, err := schedule.Parse(tt.kind, tt.text, tt.zone)
			if tt.wantField != "" {
				var fe *schedule.FieldError
				if !errors.As(err, &fe) || fe.Field != tt.wantField || !errors.Is(err, schedule.ErrInvalid) {
					t.Fatalf("Parse = %v, want a FieldError on %q", err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := s.Header(); got != tt.header {
				t.Errorf("Header = %q, want %q", got, tt.header)
			}
			if s.TimeZone() != tt.zone {
				t.Errorf("TimeZone = %q, want %q", s.TimeZone(), tt.zone)
			}
		})
	}
}

// TestAfterAcrossBerlinDST walks cron specs over both 2026 daylight-saving changes in
// Europe/Berlin: 29 March (02:00 CET becomes 03:00 CEST) and 25 October (03:00 CEST becomes
// 02:00 CET). The expectations are the runs nats-server makes (server/cron.go).
func TestAfterAcrossBerlinDST(t *testing.T) {
	ber := berlin(t)
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		name  string
		cron  string
		from  time.Time
		wants []string // successive runs, RFC 3339 with Berlin's offset
	}{
		{
			// 02:30 does not exist on 29 March: no run that day.
			name: "daily 02:30, spring forward", cron: "30 2 * * *", from: time.Date(2026, 3, 27, 12, 0, 0, 0, ber),
			wants: []string{"2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"},
		},
		{
			// 02:30 happens twice on 25 October: the server fires at each (the API drops the
			// second, see TestRepeatsWallClockOnFallBack).
			name: "daily 02:30, fall back", cron: "30 2 * * *", from: time.Date(2026, 10, 24, 12, 0, 0, 0, ber),
			wants: []string{"2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00", "2026-10-26T02:30:00+01:00"},
		},
		{
			name: "daily 03:30, spring forward", cron: "30 3 * * *", from: time.Date(2026, 3, 28, 12, 0, 0, 0, ber),
			wants: []string{"2026-03-29T03:30:00+02:00", "2026-03-30T03:30:00+02:00"},
		},
		{
			name: "daily 01:30, fall back", cron: "30 1 * * *", from: time.Date(2026, 10, 24, 12, 0, 0, 0, ber),
			wants: []string{"2026-10-25T01:30:00+02:00", "2026-10-26T01:30:00+01:00"},
		},
		{
			// Hourly runs once per real hour: 02:00 is skipped in spring.
			name: "hourly, spring forward", cron: "0 * * * *", from: time.Date(2026, 3, 29, 0, 30, 0, 0, ber),
			wants: []string{"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"},
		},
		{
			name: "hourly, fall back", cron: "0 * * * *", from: time.Date(2026, 10, 25, 0, 30, 0, 0, ber),
			wants: []string{"2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"},
		},
		{
			name: "@daily, spring forward", cron: "@daily", from: time.Date(2026, 3, 28, 12, 0, 0, 0, ber),
			wants: []string{"2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"},
		},
		{
			name: "6-field every 20 minutes at second 10, fall back", cron: "10 */20 2 * * *", from: at("2026-10-25T02:45:00+02:00"),
			wants: []string{"2026-10-25T02:00:10+01:00", "2026-10-25T02:20:10+01:00", "2026-10-25T02:40:10+01:00", "2026-10-26T02:00:10+01:00"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := schedule.Parse(schedule.KindCron, tt.cron, "Europe/Berlin")
			if err != nil {
				t.Fatal(err)
			}
			prev := tt.from
			for i, want := range tt.wants {
				got := s.After(prev)
				if !got.Equal(at(want)) || got.Format(time.RFC3339) != want {
					t.Fatalf("run %d after %s = %s, want %s", i+1, prev.Format(time.RFC3339), got.Format(time.RFC3339), want)
				}
				prev = got
			}
		})
	}
}

func TestNextSkipsMissedRuns(t *testing.T) {
	now := time.Date(2026, 12, 8, 10, 17, 42, 300e6, time.UTC)
	every, _ := schedule.Parse(schedule.KindEvery, "1m", "")
	if got, want := every.Next(now.Add(-30*time.Second), now), now.Add(30*time.Second).Truncate(time.Second); !got.Equal(want) {
		t.Errorf("every: Next = %s, want %s (a minute after the previous fire)", got, want)
	}
	if got, want := every.Next(now.Add(-time.Hour), now), time.Date(2026, 12, 8, 10, 18, 42, 0, time.UTC); !got.Equal(want) {
		t.Errorf("every after an hour away: Next = %s, want %s (one run, counted from now)", got, want)
	}
	hourly, _ := schedule.Parse(schedule.KindCron, "@hourly", "Europe/Berlin")
	if got, want := hourly.Next(now.Add(-5*time.Hour), now), time.Date(2026, 12, 8, 11, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("hourly after 5 hours away: Next = %s, want %s", got, want)
	}
	at, _ := schedule.Parse(schedule.KindAt, "2026-12-08T10:00:00Z", "")
	if got := at.Next(time.Time{}, now); !got.Equal(at.At()) {
		t.Errorf("at, past and not fired: Next = %s, want %s (fires at once)", got, at.At())
	}
	if got := at.Next(at.At(), now); !got.IsZero() {
		t.Errorf("at, fired: Next = %s, want none", got)
	}
}

// TestServerFiresWhereAfterSays publishes a zoned cron definition to a real server and checks
// each fire lands on the second After computes. The hour field names Berlin's current hour
// (and the next): read as UTC, the expression would not fire at all now.
func TestServerFiresWhereAfterSays(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Run(t))
	ctx := t.Context()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "CRONTEST", Subjects: []string{"crontest.>"}, AllowMsgSchedules: true, AllowMsgTTL: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(berlin(t))
	expr := fmt.Sprintf("*/2 * %d,%d * * *", now.Hour(), (now.Hour()+1)%24)
	spec, err := schedule.Parse(schedule.KindCron, expr, "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "crontest.def", []byte("fire"),
		jetstream.WithScheduleCron(spec.Header()), jetstream.WithScheduleTimeZone(spec.TimeZone()),
		jetstream.WithScheduleTarget("crontest.fire"))
	if err != nil {
		t.Fatalf("publish definition: %v", err)
	}
	def, err := st.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"crontest.fire"}})
	if err != nil {
		t.Fatal(err)
	}
	prev := def.Time
	for i := range 3 {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("fire %d: %v", i+1, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		fired := md.Timestamp.Truncate(time.Second)
		want := spec.After(prev)
		if !fired.Equal(want) {
			t.Fatalf("fire %d at %s, want %s (After %s)", i+1, md.Timestamp.Format(time.RFC3339Nano), want.Format(time.RFC3339), prev.Format(time.RFC3339Nano))
		}
		if got := msg.Headers().Get("Nats-Schedule-Next"); got != spec.After(want).Format(time.RFC3339Nano) {
			t.Errorf("fire %d: Nats-Schedule-Next = %q, want %s", i+1, got, spec.After(want).Format(time.RFC3339Nano))
		}
		prev = want
	}
}

func TestRepeatsWallClockOnFallBack(t *testing.T) {
	ber := berlin(t)
	daily, _ := schedule.Parse(schedule.KindCron, "30 2 * * *", "Europe/Berlin")
	cest := time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC) // 02:30 CEST
	cet := cest.Add(time.Hour)                             // 02:30 CET
	if got := daily.After(cest); !got.Equal(cet) {
		t.Fatalf("the server fires at %s after %s; this test expects the second 02:30", got.In(ber), cest.In(ber))
	}
	if !daily.RepeatsWallClock(cest, cet) {
		t.Error("the second 02:30 of 25 October is not recognised as a repeat")
	}
	if daily.RepeatsWallClock(cest.Add(-24*time.Hour), cest) {
		t.Error("yesterday's 02:30 counts as a repeat")
	}
	tenMin, _ := schedule.Parse(schedule.KindCron, "*/10 2 * * *", "Europe/Berlin")
	if !tenMin.RepeatsWallClock(cest.Add(-30*time.Minute), cet.Add(-30*time.Minute)) {
		t.Error("02:00 CET repeats 02:00 CEST for a schedule of the 02:00 hour")
	}
	hourly, _ := schedule.Parse(schedule.KindCron, "0 * * * *", "Europe/Berlin")
	if hourly.RepeatsWallClock(cest.Add(-30*time.Minute), cet.Add(-30*time.Minute)) {
		t.Error("an hourly schedule's 02:00 CET is a run of its own, not a repeat")
	}
	every, _ := schedule.Parse(schedule.KindEvery, "1h", "")
	if every.RepeatsWallClock(cest, cet) {
		t.Error("an interval repeats")
	}
}
