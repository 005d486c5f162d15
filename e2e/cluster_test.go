package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/pgtest"
)

// clusterJobs is how many documents go through the cluster while one of its nodes dies.
const clusterJobs = 500

// TestClusterNodeLoss runs clusterJobs documents through the real services on a 3-node
// NATS cluster with every stream and bucket replicated 3× (STREAM_REPLICAS=3), and kills one
// node mid-run: its routes are cut before it shuts down, so its peers see a crash and elect
// new leaders after their election timeout. Every job must complete once: no task lost, no
// chunk duplicated, no job left in a queue.
func TestClusterNodeLoss(t *testing.T) {
	slow(t)
	t.Run("follower", func(t *testing.T) { runClusterNodeLoss(t, false) })
	t.Run("leader", func(t *testing.T) { runClusterNodeLoss(t, true) })
}

func runClusterNodeLoss(t *testing.T, killLeader bool) {
	c := natstest.RunCluster(t, 3)
	nc, js := c.Connect(t)
	db := pgtest.NewDB(t)
	s := &stack{env: map[string]string{
		"NATS_URL":        c.URL(),
		"DATABASE_URL":    db,
		"API_TOKENS":      "acme:" + tenantToken,
		"LOG_LEVEL":       "info",
		"STREAM_REPLICAS": "3",
		// Longer than an election (4-9s), so a job stalled by one is not redelivered while it
		// runs; a lost ack is redelivered (and recognised as done) within seconds, not 30s.
		"ACK_WAIT":         "10s",
		"RETRY_BASE_DELAY": "200ms",
		"RETRY_MAX_DELAY":  "1s",
	}, js: js, dbURL: db}
	api := s.startAPI(t)

	// The leaders of the high-priority queue, its consumer, the task statuses and the uploads
	// gathered on one node; then kill that node, or one that leads none of them.
	clusterTracked := []string{"JOBS_HIGH", "KV_" + job.TasksBucket, "OBJ_" + job.UploadsBucket}
	lead := c.WaitStreamLeader(t, "JOBS_HIGH")
	for _, name := range clusterTracked {
		c.MoveStreamLeader(t, nc, name, lead)
	}
	c.MoveConsumerLeader(t, nc, "JOBS_HIGH", job.ConsumerName, lead)
	victim := lead
	if !killLeader {
		victim = (lead + 1) % 3
	}
	for _, name := range clusterTracked {
		st, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("%s: replicas %d, cluster %+v; want R3", name, info.Config.Replicas, info.Cluster)
		}
	}
	t.Logf("leaders of %v and consumer %s on n%d; meta leader n%d; killing n%d",
		clusterTracked, job.ConsumerName, lead, c.MetaLeader(), victim)

	s.startWorker(t, map[string]string{"QUIRE_FAULT_SLOW_JOB": "20ms", "WORKER_CONCURRENCY_HIGH": "8"})

	sizes := []int{40, 400, 1500} // words: one, a few and several chunks
	content := func(i int) []byte {
		return []byte(strings.Repeat(fmt.Sprintf("cluster%d alpha beta gamma. ", i%3), sizes[i%3]))
	}
	var (
		accepted atomic.Int64
		killedAt time.Time
		killOnce sync.Once
		killed   = make(chan struct{})
	)
	kill := func() {
		killOnce.Do(func() {
			killedAt = time.Now()
			c.Kill(victim)
			close(killed)
		})
	}
	started := time.Now()
	up := &uploader{c: api}
	ids := make([]string, clusterJobs)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range clusterJobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ids[i] = up.uploadRetrying(fmt.Sprintf("c-%d.txt", i), content(i), 60*time.Second)
			if accepted.Add(1) == clusterJobs/2 {
				kill() // mid-run: half the uploads in, jobs being processed
			}
		})
	}
	wg.Wait()
	uploaded := time.Now()
	<-killed
	if err := up.err(); err != nil {
		t.Fatal(err)
	}

	redelivered := 0
	for _, id := range ids {
		if st := api.waitTask(id, 90*time.Second, "SUCCESS"); st["attempts"].(float64) > 1 {
			redelivered++
		}
	}
	finished := time.Now()
	t.Logf("%d of %d tasks took more than one delivery", redelivered, clusterJobs)

	conn, err := pgx.Connect(t.Context(), s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	checkClusterRun(t, conn, ids, sizes)

	// The queues drain: every job acknowledged (a lost ack is redelivered after ACK_WAIT and
	// acknowledged as already done); nothing was dead-lettered.
	// A stream info request can time out while the cluster still settles after the kill (a
	// new meta leader, this client reconnecting): such errors are retried until the deadline.
	deadline := time.Now().Add(30 * time.Second)
	msgs := func(name string) uint64 {
		for {
			n, err := s.streamMsgsErr(t.Context(), name)
			if err == nil {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("stream %s: %v", name, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	for _, name := range []string{"JOBS_HIGH", "JOBS_MEDIUM", "JOBS_LOW"} {
		for n := msgs(name); n != 0; n = msgs(name) {
			if time.Now().After(deadline) {
				t.Fatalf("%s holds %d messages at the end", name, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if n := msgs(job.DLQStream); n != 0 {
		t.Errorf("JOBS_DLQ holds %d dead letters", n)
	}

	// Figures: the pause around the kill, seen by the workers (completions) and the API
	// (acknowledged publishes), and the throughput.
	var done []time.Time
	rows, err := conn.Query(t.Context(), `SELECT completed_at FROM documents WHERE completed_at IS NOT NULL ORDER BY completed_at`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var at time.Time
		if err := rows.Scan(&at); err != nil {
			t.Fatal(err)
		}
		done = append(done, at)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	gap, gapStart := longestGapAfter(done, killedAt.Add(-time.Second))
	normal, _ := longestGapAfter(done[:max(0, slices.IndexFunc(done, func(at time.Time) bool { return !at.Before(killedAt) }))], time.Time{})
	t.Logf("node n%d killed %v after the first upload; %d/%d uploads accepted by then",
		victim, killedAt.Sub(started).Round(time.Millisecond), clusterJobs/2, clusterJobs)
	t.Logf("workers: longest gap between completions around the kill %v (starting %v after it); longest before the kill %v",
		gap.Round(time.Millisecond), gapStart.Sub(killedAt).Round(time.Millisecond), normal.Round(time.Millisecond))
	t.Logf("API: slowest accepted upload %v, first acknowledged publish after the kill %v later, %d uploads answered 503 and were retried",
		up.slowest().Round(time.Millisecond), up.firstAckAfter(killedAt).Round(time.Millisecond), up.retried.Load())
	t.Logf("%d jobs in %v (uploads done after %v): %.0f jobs/min",
		clusterJobs, finished.Sub(started).Round(time.Millisecond), uploaded.Sub(started).Round(time.Millisecond),
		float64(clusterJobs)/finished.Sub(started).Minutes())
}

// checkClusterRun checks that every task's document completed once, with the chunk count
// of its size and no duplicate chunk.
func checkClusterRun(t *testing.T, conn *pgx.Conn, ids []string, sizes []int) {
	t.Helper()
	var docs, completed int
	if err := conn.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE status = 'completed') FROM documents`).Scan(&docs, &completed); err != nil {
		t.Fatal(err)
	}
	if docs != len(ids) || completed != len(ids) {
		t.Errorf("documents: %d rows, %d completed; want %d and %d", docs, completed, len(ids), len(ids))
	}
	perSize := map[int]map[int]int{} // size class → chunk count → documents
	lost, inconsistent := 0, 0
	for i, id := range ids {
		var status string
		var count, rows int
		err := conn.QueryRow(t.Context(), `SELECT d.status, d.chunk_count, (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)
			FROM documents d WHERE d.task_id = $1`, id).Scan(&status, &count, &rows)
		if err != nil || status != "completed" {
			lost++
			continue
		}
		if rows != count || count == 0 {
			inconsistent++
		}
		if perSize[i%len(sizes)] == nil {
			perSize[i%len(sizes)] = map[int]int{}
		}
		perSize[i%len(sizes)][count]++
	}
	var dupes int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM (SELECT document_id, ordinal FROM chunks GROUP BY 1, 2 HAVING count(*) > 1) d`).Scan(&dupes); err != nil {
		t.Fatal(err)
	}
	for k, counts := range perSize {
		if len(counts) != 1 {
			inconsistent++
			t.Errorf("documents of %d words have different chunk counts: %v", sizes[k], counts)
		}
	}
	t.Logf("documents lost: %d, with a chunk count unlike their rows: %d, duplicate (document_id, ordinal) chunk rows: %d; chunk counts by size: %v",
		lost, inconsistent, dupes, perSize)
	if lost != 0 || inconsistent != 0 || dupes != 0 {
		t.Fatalf("lost %d, inconsistent %d, duplicate chunk rows %d; want 0/0/0", lost, inconsistent, dupes)
	}
}

// longestGapAfter returns the longest interval between consecutive times that ends after
// from, and where it starts.
func longestGapAfter(times []time.Time, from time.Time) (time.Duration, time.Time) {
	var gap time.Duration
	var at time.Time
	for i := 1; i < len(times); i++ {
		if times[i].After(from) {
			if d := times[i].Sub(times[i-1]); d > gap {
				gap, at = d, times[i-1]
			}
		}
	}
	return gap, at
}

// uploader uploads documents from many goroutines the way a careful client does: a 503 is
// retried after a short pause. It records when each upload was acknowledged and how long it
// took.
type uploader struct {
	c       *client
	retried atomic.Int64

	mu    sync.Mutex
	acks  []time.Time
	worst time.Duration
	fail  error
}

func (u *uploader) uploadRetrying(name string, content []byte, within time.Duration) string {
	deadline := time.Now().Add(within)
	for {
		start := time.Now()
		code, body, err := u.post(name, content)
		if code == http.StatusAccepted {
			u.mu.Lock()
			u.acks = append(u.acks, time.Now())
			u.worst = max(u.worst, time.Since(start))
			u.mu.Unlock()
			return body["task_id"].(string)
		}
		if (code != http.StatusServiceUnavailable && err == nil) || time.Now().After(deadline) {
			u.mu.Lock()
			if u.fail == nil {
				u.fail = fmt.Errorf("upload %s = %d %v %v", name, code, body, err)
			}
			u.mu.Unlock()
			return ""
		}
		u.retried.Add(1)
		time.Sleep(200 * time.Millisecond)
	}
}

func (u *uploader) post(name string, content []byte) (int, map[string]any, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	// Several uploads share bytes; each must be processed (not answered as a duplicate).
	_ = mw.WriteField("force", "true")
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(content)
	_ = mw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.c.base+"/api/v1/documents/agent/7/upload", &body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+u.c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("non-JSON body %q", raw)
	}
	return resp.StatusCode, out, nil
}

func (u *uploader) err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.fail
}

func (u *uploader) slowest() time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.worst
}

// firstAckAfter returns how long after at the first upload was acknowledged.
func (u *uploader) firstAckAfter(at time.Time) time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	var first time.Duration = -1
	for _, a := range u.acks {
		if d := a.Sub(at); d >= 0 && (first < 0 || d < first) {
			first = d
		}
	}
	return first
}
