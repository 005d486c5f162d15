// Command quire-dev runs all of Quire on one machine for development (`make run`): an
// embedded NATS server with JetStream, a private PostgreSQL (unless DATABASE_URL is set), the
// api-service and one worker-service serving every priority. Ctrl-C stops everything it started.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/quirehq/quire/shared/pgcluster"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quire-dev:", err)
		os.Exit(1)
	}
}

func run() error {
	dataDir := flag.String("data", ".data", "directory for the NATS store, the PostgreSQL cluster and the dev tokens")
	binDir := flag.String("bin", "bin", "directory holding api-service and worker-service")
	natsPort := flag.Int("nats-port", 4222, "NATS client port")
	pgPort := flag.Int("pg-port", 54329, "port of the private PostgreSQL cluster")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	ns, err := server.NewServer(&server.Options{
		ServerName: "quire-dev", Host: "127.0.0.1", Port: *natsPort, HTTPHost: "127.0.0.1", HTTPPort: 8222,
		JetStream: true, StoreDir: filepath.Join(abs, "nats"), NoSigs: true,
	})
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("nats server did not start on port %d (in use?)", *natsPort)
	}
	fmt.Printf("quire-dev: NATS with JetStream on %s (monitoring http://127.0.0.1:8222, store %s)\n", ns.ClientURL(), filepath.Join(*dataDir, "nats"))

	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		c, err := startPostgres(ctx, abs, *pgPort)
		if err != nil {
			return err
		}
		defer func() {
			if err := c.Stop(context.Background()); err != nil {
				fmt.Fprintln(os.Stderr, "quire-dev:", err)
			}
		}()
		dbURL = c.URL("quire")
		fmt.Printf("quire-dev: PostgreSQL on 127.0.0.1:%d (data %s)\n", c.Port(), filepath.Join(*dataDir, "postgres"))
	} else {
		fmt.Println("quire-dev: using the PostgreSQL at DATABASE_URL")
	}

	token, err := persistentToken(filepath.Join(abs, "dev-token"))
	if err != nil {
		return err
	}
	admin, err := persistentToken(filepath.Join(abs, "admin-token"))
	if err != nil {
		return err
	}
	httpAddr := envOr("HTTP_ADDR", ":8080")
	env := append(os.Environ(),
		"NATS_URL="+ns.ClientURL(),
		"DATABASE_URL="+dbURL,
		"API_TOKENS="+envOr("API_TOKENS", "dev:"+token),
		"API_ADMIN_TOKEN="+envOr("API_ADMIN_TOKEN", admin),
		"HTTP_ADDR="+httpAddr,
		"METRICS_ADDR="+envOr("METRICS_ADDR", ":9090"),
	)
	procs := []*proc{
		newProc(filepath.Join(*binDir, "api-service"), env),
		newProc(filepath.Join(*binDir, "worker-service"), env),
	}
	exited := make(chan error, len(procs))
	for _, p := range procs {
		if err := p.start(exited); err != nil {
			stopAll(procs)
			return fmt.Errorf("start %s: %w (run `make build` first)", p.cmd.Path, err)
		}
	}
	base := "http://127.0.0.1" + httpAddr[strings.LastIndex(httpAddr, ":"):]
	if err := waitReady(ctx, base+"/readyz", exited); err != nil {
		stopAll(procs)
		return err
	}
	fmt.Printf(`
Quire is running.
  API:            %s   (worker health on %s)
  dev token:      %s   (tenant "dev"; admin token in %s)

Try it:
  export TOKEN=%s
  echo "Quire turns documents into searchable chunks." > notes.txt
  curl -H "Authorization: Bearer $TOKEN" -F file=@notes.txt %s/api/v1/documents/agent/7/upload
  curl -H "Authorization: Bearer $TOKEN" %s/api/v1/tasks/<task_id>

Press Ctrl-C to stop everything.
`, base, envOr("METRICS_ADDR", ":9090"), token, filepath.Join(*dataDir, "admin-token"), token, base, base)

	select {
	case <-ctx.Done():
		fmt.Println("\nquire-dev: stopping")
		stopAll(procs)
		return nil
	case err := <-exited:
		stopAll(procs)
		return err
	}
}

func startPostgres(ctx context.Context, dataDir string, port int) (*pgcluster.Cluster, error) {
	dir := filepath.Join(dataDir, "postgres")
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Port: port, Durable: true, LogFile: filepath.Join(dataDir, "postgres.log")})
	if errors.Is(err, pgcluster.ErrNoPostgres) {
		return nil, fmt.Errorf("%w\n  e.g.: DATABASE_URL=postgres://user:pass@localhost:5432/quire make run", err)
	}
	if err != nil {
		return nil, err
	}
	if err := c.CreateDatabase(ctx, "quire"); err != nil {
		_ = c.Stop(ctx)
		return nil, err
	}
	return c, nil
}

// proc is a service process started by quire-dev.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// newProc prepares a service process in its own process group (the terminal's Ctrl-C goes to
// quire-dev, which stops the services in order) that dies with quire-dev.
func newProc(path string, env []string) *proc {
	cmd := exec.Command(path)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return &proc{cmd: cmd, done: make(chan struct{})}
}

// start starts the process; its exit is reported on exited.
func (p *proc) start(exited chan<- error) error {
	if err := p.cmd.Start(); err != nil {
		close(p.done)
		return err
	}
	go func() {
		err := p.cmd.Wait()
		close(p.done)
		exited <- fmt.Errorf("%s exited: %v", filepath.Base(p.cmd.Path), err)
	}()
	return nil
}

// stopAll sends SIGTERM to every started process and waits for them, killing any still
// running after 40 seconds.
func stopAll(procs []*proc) {
	for _, p := range procs {
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(40 * time.Second)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(time.Until(deadline)):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

func waitReady(ctx context.Context, url string, exited <-chan error) error {
	deadline := time.After(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-exited:
			return err
		case <-deadline:
			return fmt.Errorf("api-service not ready at %s after 60s", url)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// persistentToken returns the token stored in path, creating a random one the first time.
func persistentToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return tok, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
