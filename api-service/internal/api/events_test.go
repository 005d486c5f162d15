package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/api-service/internal/api"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/taskstatus"
)

// sseEvent is one Server-Sent Event as a client parses it; a comment has only Comment set.
type sseEvent struct {
	ID, Event, Data, Comment string
}

// sseStream reads the events of a text/event-stream response.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent // closed when the response body ends
}

// openEvents opens an event stream at path as token; lastID, if set, is sent as Last-Event-ID.
func (e *env) openEvents(t *testing.T, ctx context.Context, token, path, lastID string) *sseStream {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	s := &sseStream{resp: resp, events: make(chan sseEvent, 64)}
	if resp.StatusCode != http.StatusOK {
		close(s.events)
		return s
	}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev != (sseEvent{}) {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ev.Comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		}
	}()
	return s
}

// next returns the next status event (skipping comments and the retry field), or ok false
// once the stream has ended.
func (s *sseStream) next(t *testing.T) (ev sseEvent, st map[string]any, ok bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok = <-s.events:
			if !ok {
				return ev, nil, false
			}
			if ev.Event == "" {
				continue
			}
			if ev.Event != "status" {
				t.Fatalf("event %q, want status", ev.Event)
			}
			if err := json.Unmarshal([]byte(ev.Data), &st); err != nil {
				t.Fatalf("event data %q: %v", ev.Data, err)
			}
			return ev, st, true
		case <-timeout:
			t.Fatal("no event within 10s")
		}
	}
}

// wantEnd fails unless the stream ends without another status event.
func (s *sseStream) wantEnd(t *testing.T) {
	t.Helper()
	if ev, st, ok := s.next(t); ok {
		t.Fatalf("stream goes on after the terminal state: %+v %v", ev, st)
	}
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("event id %q: %v", s, err)
	}
	return n
}

func statusStore(t *testing.T, e *env) *taskstatus.Store {
	t.Helper()
	kv, err := e.js.KeyValue(t.Context(), job.TasksBucket)
	if err != nil {
		t.Fatal(err)
	}
	return taskstatus.New(kv, e.js, time.Hour)
}

func (e *env) queuedTask(t *testing.T) string {
	t.Helper()
	resp, body := e.upload(t, tokenAcme, "7", "notes.txt", []byte("hello quire\n"), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload = %d %v", resp.StatusCode, body)
	}
	return body["task_id"].(string)
}

func TestTaskEventsStreamEveryChangeInOrderAndEndAfterTheTerminalState(t *testing.T) {
	e := newEnv(t, 0)
	statuses := statusStore(t, e)
	taskID := e.queuedTask(t)

	s := e.openEvents(t, t.Context(), tokenAcme, "/api/v1/tasks/"+taskID+"/events", "")
	if s.resp.StatusCode != http.StatusOK || s.resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events = %d %q", s.resp.StatusCode, s.resp.Header.Get("Content-Type"))
	}
	ev, st, ok := s.next(t)
	if !ok || st["state"] != "PENDING" || st["task_id"] != taskID || ev.ID == "" {
		t.Fatalf("first event = %+v %v, want the current PENDING status with an id", ev, st)
	}
	steps := []struct {
		state   job.State
		current int
	}{{job.StateProgress, 20}, {job.StateProgress, 50}, {job.StateProgress, 80}, {job.StateSuccess, 100}}
	for _, step := range steps {
		if _, err := statuses.Update(t.Context(), taskID, func(st *job.Status) error {
			st.State, st.Current = step.state, step.current
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	lastID := ev.ID
	for _, step := range steps {
		ev, st, ok := s.next(t)
		if !ok || st["state"] != string(step.state) || st["current"] != float64(step.current) {
			t.Fatalf("event = %+v %v, want %s at %d", ev, st, step.state, step.current)
		}
		if id, prev := mustUint(t, ev.ID), mustUint(t, lastID); id <= prev {
			t.Fatalf("event id %q does not follow %q", ev.ID, lastID)
		}
		lastID = ev.ID
	}
	s.wantEnd(t)

	// A client reconnecting after the end gets the current, terminal state, then the end.
	again := e.openEvents(t, t.Context(), tokenAcme, "/api/v1/tasks/"+taskID+"/events", lastID)
	if _, st, ok := again.next(t); !ok || st["state"] != "SUCCESS" {
		t.Fatalf("event after reconnecting = %v, want SUCCESS", st)
	}
	again.wantEnd(t)
}

func TestTaskEventsAreTenantScoped(t *testing.T) {
	e := newEnv(t, 0)
	taskID := e.queuedTask(t)
	for _, path := range []string{"/api/v1/tasks/" + taskID + "/events", "/api/v1/tasks/no-such-task/events"} {
		s := e.openEvents(t, t.Context(), tokenOther, path, "")
		raw, _ := io.ReadAll(s.resp.Body)
		if s.resp.StatusCode != http.StatusNotFound || !strings.Contains(string(raw), `"code"`) {
			t.Fatalf("GET %s as another tenant = %d %s, want a 404 error", path, s.resp.StatusCode, raw)
		}
	}
	s := e.openEvents(t, t.Context(), "wrong-token-0123456789", "/api/v1/tasks/"+taskID+"/events", "")
	if s.resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("events with a wrong token = %d, want 401", s.resp.StatusCode)
	}
}

func TestTaskEventsAnswerFromTheRecordOnceTheLiveStatusIsGone(t *testing.T) {
	e := newEnv(t, 0)
	taskID := e.queuedTask(t)
	if resp, body := e.call(t, http.MethodDelete, tokenAcme, "/api/v1/tasks/"+taskID); resp.StatusCode != http.StatusOK {
		t.Fatalf("cancel = %d %v", resp.StatusCode, body)
	}
	// The live status expires (RESULT_TTL); the record stays.
	if err := statusStore(t, e).Delete(t.Context(), taskID); err != nil {
		t.Fatal(err)
	}
	s := e.openEvents(t, t.Context(), tokenAcme, "/api/v1/tasks/"+taskID+"/events", "")
	if _, st, ok := s.next(t); !ok || st["state"] != "REVOKED" {
		t.Fatalf("event = %v, want REVOKED from the record", st)
	}
	s.wantEnd(t)
}

func TestTaskEventsSendKeepAlivesAndStopAtShutdown(t *testing.T) {
	e := newEnvWith(t, api.Config{EventKeepAlive: 50 * time.Millisecond})
	taskID := e.queuedTask(t)
	s := e.openEvents(t, t.Context(), tokenAcme, "/api/v1/tasks/"+taskID+"/events", "")
	if _, st, ok := s.next(t); !ok || st["state"] != "PENDING" {
		t.Fatalf("first event = %v", st)
	}
	timeout := time.After(10 * time.Second)
	for comments := 0; comments < 2; {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatal("stream ended before its keep-alives")
			}
			if ev.Comment == "keep-alive" {
				comments++
			}
		case <-timeout:
			t.Fatal("no keep-alive comments within 10s")
		}
	}
	e.api.StopStreams()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return
			}
			if ev.Event != "" {
				t.Fatalf("event after StopStreams: %+v", ev)
			}
		case <-timeout:
			t.Fatal("stream still open 10s after StopStreams")
		}
	}
}
