// Package pgtest gives tests a real PostgreSQL database: the server at DATABASE_URL when it is
// set, otherwise a throwaway cluster started from the machine's PostgreSQL binaries for the test
// binary's lifetime. It never skips: without a PostgreSQL the tests fail, saying what to install.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quirehq/quire/shared/pgcluster"
)

// adminEnv carries the admin connection string from Main to NewDB within one test binary.
const adminEnv = "QUIRE_PGTEST_ADMIN_URL"

// Main runs m with a PostgreSQL server available to [NewDB] and exits. Call it from TestMain.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit: it returns m's exit code (1 if no PostgreSQL is available).
func Run(m interface{ Run() int }) int {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		os.Setenv(adminEnv, u)
		return m.Run()
	}
	if os.Getenv(adminEnv) != "" {
		// A `go test -fuzz` worker: a child of the test process whose server is still running.
		// A server of its own would inherit the worker's pipes to the fuzzing coordinator and,
		// outliving the worker, keep the coordinator waiting for ever.
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "quire-pgtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir + "/data", LogFile: dir + "/postgres.log"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: no PostgreSQL for the tests (set DATABASE_URL or install PostgreSQL):", err)
		return 1
	}
	defer func() {
		if err := c.Stop(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}()
	os.Setenv(adminEnv, c.URL("postgres"))
	return m.Run()
}

// AdminURL is the connection string of the test server's maintenance database.
func AdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(adminEnv)
	if u == "" {
		t.Fatal("pgtest: no PostgreSQL: call pgtest.Main(m) from TestMain")
	}
	return u
}

// NewDB creates an empty database for t, dropped when t ends, and returns its URL.
func NewDB(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "quire_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if err := pgcluster.CreateDatabase(ctx, admin, name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("pgtest: admin url: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
