package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/quiretest"
)

// TestTaskEventsFollowAPDFFromQueuedToStored opens the event stream of a queued multi-page
// PDF, then starts a worker: the stream shows PENDING, the worker's PROGRESS stages in order,
// SUCCESS, and then ends.
func TestTaskEventsFollowAPDFFromQueuedToStored(t *testing.T) {
	slow(t)
	s := newStack(t, nil)
	api := s.startAPI(t)
	var pages [][]string
	for p := 1; p <= 4; p++ {
		pages = append(pages, []string{fmt.Sprintf("Page %d of the pump manual.", p), "The cooling pump must be inspected every week."})
	}
	code, up := api.uploadFields("7", "manual.pdf", quiretest.PDF(pages...), nil)
	if code != http.StatusAccepted {
		t.Fatalf("upload = %d %v", code, up)
	}
	taskID := up["task_id"].(string)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.base+"/api/v1/tasks/"+taskID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+api.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	type status struct {
		State   string `json:"state"`
		Current int    `json:"current"`
		Status  string `json:"status"`
	}
	events := make(chan status)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var st status
				if json.Unmarshal([]byte(data), &st) == nil {
					events <- st
				}
			}
		}
	}()
	first, ok := <-events
	if !ok || first.State != "PENDING" {
		t.Fatalf("first event = %+v, want PENDING", first)
	}
	// Every stage written at once, so that each is an event.
	s.startWorker(t, map[string]string{"PROGRESS_INTERVAL": "0"})
	seen := []status{first}
	for st := range events {
		seen = append(seen, st)
	}
	if ctx.Err() != nil {
		t.Fatalf("the stream did not end within 60s; saw %+v", seen)
	}
	last := seen[len(seen)-1]
	if last.State != "SUCCESS" || last.Current != 100 {
		t.Fatalf("last event = %+v, want SUCCESS at 100; saw %+v", last, seen)
	}
	progress := 0
	for i, st := range seen[1 : len(seen)-1] {
		if st.State != "PROGRESS" {
			t.Fatalf("event %d = %+v between PENDING and SUCCESS, want PROGRESS; saw %+v", i+1, st, seen)
		}
		if st.Current < progress {
			t.Fatalf("progress goes back from %d to %d; saw %+v", progress, st.Current, seen)
		}
		progress = st.Current
	}
	if len(seen) < 4 {
		t.Fatalf("saw %+v, want several PROGRESS stages between PENDING and SUCCESS", seen)
	}
	t.Logf("events: %+v", seen)
}
