package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/pgtest"
)

// TestScheduleSurvivesSchedulesLeaderLoss runs an @every 1s schedule through two api-service
// processes on a 3-node cluster (SCHEDULES replicated 3×) and kills the node leading
// SCHEDULES: another node takes over firing, and no fire becomes two tasks, around the kill
// or elsewhere.
func TestScheduleSurvivesSchedulesLeaderLoss(t *testing.T) {
	slow(t)
	c := natstest.RunCluster(t, 3)
	_, js := c.Connect(t)
	db := pgtest.NewDB(t)
	s := &stack{env: map[string]string{
		"NATS_URL":        c.URL(),
		"DATABASE_URL":    db,
		"API_TOKENS":      "acme:" + tenantToken,
		"LOG_LEVEL":       "info",
		"STREAM_REPLICAS": "3",
	}, js: js, dbURL: db}
	api := s.startAPI(t)
	s.startAPI(t) // a second replica pulling the same fires

	status, out := api.do(http.MethodPost, "/api/v1/schedules",
		strings.NewReader(`{"name":"tick","every":"1s","overlap":"allow","task":{"kind":"webpage","agent_id":"7","url":"https://example.com/"}}`),
		"application/json")
	if status != http.StatusCreated {
		t.Fatalf("create schedule: %d %v", status, out)
	}
	id := out["id"].(string)

	conn, err := pgx.Connect(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	runsSince := func(at time.Time) int {
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM schedule_runs WHERE schedule_id = $1 AND fire_time > $2`, id, at).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitRuns := func(what string, since time.Time, n int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for runsSince(since) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d runs, want %d within %s", what, runsSince(since), n, within)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitRuns("before the kill", time.Time{}, 3, 30*time.Second)

	leader := c.WaitStreamLeader(t, job.ScheduleStream)
	killedAt := time.Now()
	c.Kill(leader)
	t.Logf("killed n%d, the leader of %s", leader, job.ScheduleStream)
	// An election takes seconds; then the new leader fires once for what it missed and goes on.
	waitRuns("after the kill", killedAt, 5, 60*time.Second)
	t.Logf("new leader n%d", c.WaitStreamLeader(t, job.ScheduleStream))

	var fires, tasks, maxPerFire int
	err = conn.QueryRow(t.Context(), `SELECT count(*), coalesce(sum(n), 0), coalesce(max(n), 0) FROM (
			SELECT r.fire_time, count(t.task_id) AS n FROM schedule_runs r LEFT JOIN tasks t ON t.task_id = r.task_id
			WHERE r.schedule_id = $1 GROUP BY r.fire_time) f`, id).Scan(&fires, &tasks, &maxPerFire)
	if err != nil {
		t.Fatal(err)
	}
	var scheduled int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM tasks WHERE schedule_id = $1`, id).Scan(&scheduled); err != nil {
		t.Fatal(err)
	}
	if maxPerFire != 1 || tasks != fires || scheduled != fires {
		t.Fatalf("%d fires made %d tasks (%d with the schedule's id), at most %d per fire; want one each", fires, tasks, scheduled, maxPerFire)
	}
	t.Logf("%d fires, one task each", fires)
}
