package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Usage is recorded in the transaction that commits a document: killing the worker (kill -9)
// mid-job, and the redeliveries that follow, neither lose nor double any of it. The usage API
// reports exactly the documents, chunks and bytes the database holds.
func TestUsageCountsOnceThroughWorkerKills(t *testing.T) {
	slow(t)
	s := newStack(t, map[string]string{"ACK_WAIT": "2s", "MAX_RETRIES": "10", "RETRY_BASE_DELAY": "100ms", "RETRY_MAX_DELAY": "1s", "LOG_LEVEL": "info"})
	api := s.startAPI(t)
	const docs = 40
	content := func(i int) []byte {
		return []byte(strings.Repeat(fmt.Sprintf("metered%d pump valve gauge. ", i), 60+200*(i%3)))
	}
	ids := uploadMany(t, api, docs, func(i int) string { return fmt.Sprintf("metered-%d.txt", i) }, content, nil)
	sv := s.supervise(t, map[string]string{"QUIRE_FAULT_SLOW_JOB": "200ms", "WORKER_CONCURRENCY_HIGH": "4", "PROGRESS_INTERVAL": "0"})
	for range 4 {
		time.Sleep(700 * time.Millisecond)
		sv.kill()
	}
	for _, id := range ids {
		api.waitTask(id, 120*time.Second, "SUCCESS")
	}
	t.Logf("worker killed 4 times (kill -9), started %d times", sv.starts())

	conn, err := pgx.Connect(t.Context(), s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var completed, chunks, bytes int64
	if err := conn.QueryRow(t.Context(), `SELECT count(*), sum(chunk_count), sum(size_bytes) FROM documents WHERE status = 'completed'`).Scan(&completed, &chunks, &bytes); err != nil {
		t.Fatal(err)
	}
	var doubled int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM (SELECT document_id FROM usage_events GROUP BY 1 HAVING count(*) > 1) d`).Scan(&doubled); err != nil {
		t.Fatal(err)
	}
	code, rep := api.do(http.MethodGet, "/api/v1/usage?granularity=day", nil, "")
	if code != http.StatusOK {
		t.Fatalf("usage = %d %v", code, rep)
	}
	totals := rep["totals"].(map[string]any)
	got := fmt.Sprint(totals["documents"], totals["chunks"], totals["bytes_ingested"])
	want := fmt.Sprint(float64(completed), float64(chunks), float64(bytes))
	t.Logf("usage: documents, chunks, bytes = %s; database: %s; documents metered twice: %d", got, want, doubled)
	if completed != docs || got != want || doubled != 0 {
		t.Fatalf("usage %s, want %s for %d of %d completed documents; %d doubled", got, want, completed, docs, doubled)
	}
	// The API enqueued the hour's usage_rollup job at start; a worker ran it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var state string
		err := conn.QueryRow(t.Context(), `SELECT state FROM tasks WHERE kind = 'usage_rollup' ORDER BY created_at DESC LIMIT 1`).Scan(&state)
		if err == nil && state == "SUCCESS" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage_rollup task: state %q, err %v; want SUCCESS", state, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var watermarks int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM usage_rollup_state`).Scan(&watermarks); err != nil || watermarks != 1 {
		t.Fatalf("usage_rollup_state rows = %d (%v), want the watermark", watermarks, err)
	}
}
