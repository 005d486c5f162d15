// Package pgcluster runs a private PostgreSQL cluster from the machine's server binaries
// (initdb, pg_ctl), for `make run` and for tests. PostgreSQL refuses to run as root, so when the
// caller is root the cluster runs as the `postgres` system user.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// ErrNoPostgres means no PostgreSQL server binaries were found.
var ErrNoPostgres = errors.New("pgcluster: PostgreSQL server binaries (initdb, pg_ctl) not found: " +
	"install them (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL to a running server")

// Options configures [Start].
type Options struct {
	// Dir is the data directory; it is created and initialised when empty.
	Dir string
	// Port to listen on at 127.0.0.1; 0 picks a free one.
	Port int
	// Durable keeps fsync on. Off (the default) suits throwaway test clusters.
	Durable bool
	// LogFile receives the server log (default Dir/../postgres.log).
	LogFile string
}

// Cluster is a running PostgreSQL cluster.
type Cluster struct {
	dir    string
	port   int
	bindir string
	runAs  string
}

// BinDir finds the directory of initdb and pg_ctl: `pg_config --bindir`, then PATH, then the
// Debian layout /usr/lib/postgresql/<version>/bin.
func BinDir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	return "", ErrNoPostgres
}

// Start initialises (if needed) and starts a cluster in opts.Dir listening on 127.0.0.1 only,
// with trust authentication for the superuser `postgres`. Stop stops it.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bindir, err := BinDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: opts.Dir, port: opts.Port, bindir: bindir}
	if os.Geteuid() == 0 {
		c.runAs = "postgres"
		if _, err := user.Lookup(c.runAs); err != nil {
			return nil, fmt.Errorf("pgcluster: running as root needs the %q system user to run PostgreSQL: %w", c.runAs, err)
		}
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return nil, fmt.Errorf("pgcluster: data dir: %w", err)
	}
	if c.runAs != "" {
		if err := exec.CommandContext(ctx, "chown", "-R", c.runAs+":", c.dir).Run(); err != nil {
			return nil, fmt.Errorf("pgcluster: chown %s: %w", c.dir, err)
		}
		if err := c.cmd(ctx, "test", "-w", c.dir).Run(); err != nil {
			return nil, fmt.Errorf("pgcluster: user %s cannot reach %s (a parent directory is not searchable): %w", c.runAs, c.dir, err)
		}
	}
	if _, err := os.Stat(filepath.Join(c.dir, "PG_VERSION")); err != nil {
		out, err := c.cmd(ctx, filepath.Join(bindir, "initdb"), "-D", c.dir, "-U", "postgres",
			"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("pgcluster: initdb: %w: %s", err, out)
		}
	}
	if c.port == 0 {
		if c.port, err = freePort(); err != nil {
			return nil, err
		}
	}
	logFile := opts.LogFile
	if logFile == "" {
		logFile = filepath.Join(c.dir, "postgres.log")
	}
	if c.runAs != "" {
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("pgcluster: log file: %w", err)
		}
		_ = f.Close()
		_ = exec.CommandContext(ctx, "chown", c.runAs+":", logFile).Run()
	}
	serverOpts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=200", c.port)
	if !opts.Durable {
		serverOpts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	out, err := c.cmd(ctx, filepath.Join(bindir, "pg_ctl"), "-D", c.dir, "-l", logFile, "-w", "-t", "60", "-o", serverOpts, "start").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("pgcluster: pg_ctl start: %w: %s (log: %s)", err, out, logFile)
	}
	return c, nil
}

// cmd runs name as the cluster's user, in a process group of its own so that a Ctrl-C in the
// terminal reaches only the caller, which then stops the cluster in order.
func (c *Cluster) cmd(ctx context.Context, name string, args ...string) *exec.Cmd {
	if c.runAs != "" {
		args = append([]string{"-u", c.runAs, "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// URL is the connection string of database db on the cluster.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// Port is the TCP port the cluster listens on.
func (c *Cluster) Port() int { return c.port }

// CreateDatabase creates database name if it does not exist.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	return CreateDatabase(ctx, c.URL("postgres"), name)
}

// CreateDatabase creates database name on the server of adminURL if it does not exist.
func CreateDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("pgcluster: connect: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("pgcluster: look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("pgcluster: create database %s: %w", name, err)
	}
	return nil
}

// Stop shuts the cluster down (fast mode: open transactions are rolled back) and waits.
func (c *Cluster) Stop(ctx context.Context) error {
	out, err := c.cmd(ctx, filepath.Join(c.bindir, "pg_ctl"), "-D", c.dir, "-m", "fast", "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: pick a port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
