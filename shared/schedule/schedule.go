// Package schedule parses the specs of Quire's schedules (a cron expression, an interval or a
// single time, with a time zone), renders them as the Nats-Schedule header that JetStream's
// message schedules fire from, and computes when the server fires them next.
//
// The next-run computation follows nats-server's own (server/cron.go and parseMsgSchedule in
// server/scheduler.go, v2.15): the API shows the run the server will make, including on
// daylight-saving days. With a daily cron at 02:30 in Europe/Berlin:
//
//   - on the spring-forward day (29 March 2026, 02:00 CET becomes 03:00 CEST) 02:30 does not
//     exist and there is no run that day: the next run is 02:30 CEST the following day;
//   - on the fall-back day (25 October 2026, 03:00 CEST becomes 02:00 CET) 02:30 happens twice
//     and the server fires at both, 02:30 CEST and, an hour later, 02:30 CET. The second fire
//     shows the wall-clock time of the first: [Spec.RepeatsWallClock] tells it, and Quire
//     makes no run of it, so the daily run happens once, at the first 02:30.
//
// A cron whose hour field covers every hour runs once per real hour, as the clock shows it
// (02:00 CEST and 02:00 CET are both runs of an hourly schedule).
// Missed runs (the server or its stream leader away) are not made up: the server fires once,
// late, and goes on from the current time.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones on hosts without a zoneinfo database

	"github.com/robfig/cron/v3"
)

// Kind is how a spec says when to run.
type Kind string

// The kinds of spec.
const (
	KindCron  Kind = "cron"  // 5 fields (minute first) or 6 (seconds first), or @daily and the like
	KindEvery Kind = "every" // a Go duration of at least one second, e.g. 90s, 1h30m
	KindAt    Kind = "at"    // one RFC 3339 time
)

// MinEvery is the shortest interval the server fires at.
const MinEvery = time.Second

// ErrInvalid wraps every reason [Parse] rejects a spec for.
var ErrInvalid = errors.New("schedule: invalid spec")

// FieldError says which field of a schedule request is wrong and why.
type FieldError struct {
	Field string // "cron", "every", "at" or "timezone"
	Msg   string
}

func (e *FieldError) Error() string { return "schedule: " + e.Field + ": " + e.Msg }

// Unwrap makes a FieldError match [ErrInvalid].
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Spec is a parsed schedule spec. The zero Spec is not valid; use [Parse].
type Spec struct {
	kind  Kind
	text  string
	zone  string
	loc   *time.Location
	every time.Duration
	at    time.Time
	cron  *cron.SpecSchedule
}

// descriptors are the named cron schedules, as the server expands them.
var descriptors = map[string]string{
	"@yearly":   "0 0 0 1 1 *",
	"@annually": "0 0 0 1 1 *",
	"@monthly":  "0 0 0 1 * *",
	"@weekly":   "0 0 0 * * 0",
	"@daily":    "0 0 0 * * *",
	"@midnight": "0 0 0 * * *",
	"@hourly":   "0 0 * * * *",
}

// cronParser takes 6 fields (seconds first) or 5 (minute first, seconds 0). Descriptors are
// expanded before it sees them; zone prefixes (TZ=) are refused before, as the time zone is a
// field of its own.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Parse parses text as a spec of kind in time zone zone (an IANA name such as Europe/Berlin;
// empty means UTC). A time zone is only for cron specs: an interval and a single time are
// absolute. A bad spec or zone is a [*FieldError] naming the field.
func Parse(kind Kind, text, zone string) (*Spec, error) {
	text = strings.Join(strings.Fields(text), " ")
	s := &Spec{kind: kind, text: text, loc: time.UTC}
	field := string(kind)
	if text == "" {
		return nil, &FieldError{Field: field, Msg: "empty"}
	}
	if zone != "" {
		if kind != KindCron {
			return nil, &FieldError{Field: "timezone", Msg: "only a cron schedule has a time zone (an interval or an RFC 3339 time is absolute)"}
		}
		loc, err := time.LoadLocation(zone)
		if err != nil || zone == "Local" {
			return nil, &FieldError{Field: "timezone", Msg: fmt.Sprintf("unknown time zone %q (want an IANA name such as Europe/Berlin)", zone)}
		}
		s.zone, s.loc = zone, loc
	}
	switch kind {
	case KindCron:
		expr := text
		if d, ok := descriptors[strings.ToLower(text)]; ok {
			s.text, expr = strings.ToLower(text), d
		} else if strings.HasPrefix(text, "@") {
			return nil, &FieldError{Field: field, Msg: fmt.Sprintf("unknown descriptor %q (want @yearly, @monthly, @weekly, @daily or @hourly; intervals go in \"every\")", text)}
		} else if strings.Contains(text, "=") {
			return nil, &FieldError{Field: field, Msg: "a time zone goes in \"timezone\", not in the expression"}
		}
		sched, err := parseCron(expr)
		if err != nil {
			return nil, &FieldError{Field: field, Msg: err.Error()}
		}
		s.cron = sched
		if n := len(strings.Fields(text)); n == 5 {
			s.text = "0 " + text
		}
	case KindEvery:
		d, err := time.ParseDuration(text)
		if err != nil {
			return nil, &FieldError{Field: field, Msg: fmt.Sprintf("%q is not a duration (e.g. 30s, 15m, 1h30m)", text)}
		}
		if d < MinEvery {
			return nil, &FieldError{Field: field, Msg: fmt.Sprintf("%s is shorter than %s", d, MinEvery)}
		}
		if d%time.Second != 0 {
			return nil, &FieldError{Field: field, Msg: fmt.Sprintf("%s is not a whole number of seconds", d)}
		}
		s.every, s.text = d, d.String()
	case KindAt:
		t, err := time.Parse(time.RFC3339, text)
		if err != nil {
			return nil, &FieldError{Field: field, Msg: fmt.Sprintf("%q is not an RFC 3339 time (e.g. 2026-03-29T02:30:00+01:00)", text)}
		}
		s.at = t.UTC().Truncate(time.Second)
		s.text = s.at.Format(time.RFC3339)
	default:
		return nil, &FieldError{Field: "kind", Msg: fmt.Sprintf("unknown kind %q (want cron, every or at)", kind)}
	}
	return s, nil
}

// parseCron parses a 5- or 6-field expression, turning a parser panic into an error.
func parseCron(expr string) (sched *cron.SpecSchedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("cannot parse %q", expr)
		}
	}()
	n := len(strings.Fields(expr))
	if n != 5 && n != 6 {
		return nil, fmt.Errorf("want 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got %d", n)
	}
	parsed, err := cronParser.Parse(expr)
	if err != nil {
		return nil, err
	}
	spec, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("cannot parse %q", expr)
	}
	// The server looks 5 years ahead: an expression that never matches (30 February) is
	// dropped by it, so refuse it here.
	if next := nextCron(spec, time.UTC, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); next.IsZero() {
		return nil, fmt.Errorf("%q never matches a date", expr)
	}
	return spec, nil
}

// Kind is the spec's kind.
func (s *Spec) Kind() Kind { return s.kind }

// Text is the spec in its canonical form: a cron expression with 6 fields (or a descriptor),
// an interval as Go prints it, a time in RFC 3339 UTC.
func (s *Spec) Text() string { return s.text }

// TimeZone is the IANA name of a cron spec's time zone, empty for UTC.
func (s *Spec) TimeZone() string { return s.zone }

// Location is the spec's time zone (UTC unless a cron spec names one).
func (s *Spec) Location() *time.Location { return s.loc }

// Header is the value of the Nats-Schedule header of the spec's definition: "@at <RFC 3339>",
// "@every <duration>", a 6-field cron (a 5-field one gets seconds 0) or a descriptor.
func (s *Spec) Header() string {
	switch s.kind {
	case KindAt:
		return "@at " + s.text
	case KindEvery:
		return "@every " + s.text
	}
	return s.text
}

// Every is an interval spec's interval (0 for other kinds).
func (s *Spec) Every() time.Duration { return s.every }

// At is a single-time spec's time (zero for other kinds).
func (s *Spec) At() time.Time { return s.at }

// After is the first run the spec makes after t, not skipping missed runs: for a cron, the
// first matching second after t in the spec's zone; for an interval, t rounded to the second
// plus the interval (the server counts from the previous fire); for a single time, that time
// if it is after t. It is zero when there is none.
func (s *Spec) After(t time.Time) time.Time {
	switch s.kind {
	case KindCron:
		return nextCron(s.cron, s.loc, t)
	case KindEvery:
		return t.UTC().Round(time.Second).Add(s.every)
	case KindAt:
		if s.at.After(t) {
			return s.at
		}
	}
	return time.Time{}
}

// Next is when the server fires the spec next, given its previous fire (or, before the first,
// when its definition was stored) and the current time now: the run after prev, or, when
// that run is already past (missed while the server was away), the run after now, as the
// server skips ahead and fires once. A single time fires at that time, or at once when it
// is past; after its fire, Next is zero.
func (s *Spec) Next(prev, now time.Time) time.Time {
	switch s.kind {
	case KindAt:
		if prev.Before(s.at) || prev.IsZero() {
			return s.at
		}
		return time.Time{}
	case KindEvery:
		next := s.After(prev)
		if now := now.UTC(); next.Before(now) {
			next = now.Round(time.Second).Add(s.every)
		}
		return next
	}
	next := s.After(prev)
	if !next.IsZero() && next.Before(now) {
		next = s.After(now.Round(time.Second))
	}
	return next
}

// RepeatsWallClock reports whether fire, a fire of a cron spec, shows in the spec's zone the
// same wall-clock time as earlier, a fire before it by at most two hours: the clock set back at
// the end of daylight saving shows a fixed time twice, and the second is the same run again.
// A spec whose hour field covers all 24 hours runs per real hour and repeats nothing; an
// interval or a single time never repeats.
func (s *Spec) RepeatsWallClock(earlier, fire time.Time) bool {
	const allHours = 1<<24 - 1
	if s.kind != KindCron || s.cron.Hour&allHours == allHours || !fire.After(earlier) || fire.Sub(earlier) > 2*time.Hour {
		return false
	}
	const wall = "2006-01-02 15:04:05"
	return earlier.In(s.loc).Format(wall) == fire.In(s.loc).Format(wall)
}

// starBit marks a field given as * or ?: day-of-month and day-of-week then both have to
// match; when both are restricted, either does.
const starBit = 1 << 63

// nextCron is the first time after t matching sched in loc, or zero if there is none within
// five years: the algorithm of nats-server's server/cron.go (after robfig/cron), which walks
// the calendar in loc with AddDate and Add(time.Hour). Keeping to it step by step is what
// makes the API's next run the server's on daylight-saving days.
func nextCron(sched *cron.SpecSchedule, loc *time.Location, t time.Time) time.Time {
	next := t.In(loc).Truncate(time.Second).Add(time.Second)
	truncated := false
	yearLimit := next.Year() + 5

WRAP:
	if next.Year() > yearLimit {
		return time.Time{}
	}
	for 1<<uint(next.Month())&sched.Month == 0 {
		if !truncated {
			truncated = true
			next = time.Date(next.Year(), next.Month(), 1, 0, 0, 0, 0, loc)
		}
		if next = next.AddDate(0, 1, 0); next.Month() == time.January {
			goto WRAP
		}
	}
	for !dayMatches(sched, next) {
		if !truncated {
			truncated = true
			next = time.Date(next.Year(), next.Month(), next.Day(), 0, 0, 0, 0, loc)
		}
		if next = next.AddDate(0, 0, 1); next.Day() == 1 {
			goto WRAP
		}
	}
	for 1<<uint(next.Hour())&sched.Hour == 0 {
		if !truncated {
			truncated = true
			next = time.Date(next.Year(), next.Month(), next.Day(), next.Hour(), 0, 0, 0, loc)
		}
		if next = next.Add(time.Hour); next.Hour() == 0 {
			goto WRAP
		}
	}
	for 1<<uint(next.Minute())&sched.Minute == 0 {
		if !truncated {
			truncated = true
			next = next.Truncate(time.Minute)
		}
		if next = next.Add(time.Minute); next.Minute() == 0 {
			goto WRAP
		}
	}
	for 1<<uint(next.Second())&sched.Second == 0 {
		if !truncated {
			truncated = true
			next = next.Truncate(time.Second)
		}
		if next = next.Add(time.Second); next.Second() == 0 {
			goto WRAP
		}
	}
	return next
}

func dayMatches(sched *cron.SpecSchedule, t time.Time) bool {
	domMatch := 1<<uint(t.Day())&sched.Dom > 0
	dowMatch := 1<<uint(t.Weekday())&sched.Dow > 0
	if sched.Dom&starBit > 0 || sched.Dow&starBit > 0 {
		return domMatch && dowMatch
	}
	return domMatch || dowMatch
}
