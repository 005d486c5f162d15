package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/pgcluster"
)

// env is what every figure runs against: a scratch directory, one PostgreSQL cluster for the
// whole run and, per figure, a fresh in-process JetStream server with file storage.
type env struct {
	dir    string
	binDir string
	pg     *pgcluster.Cluster
	dbs    int
	// metering, if set, is the USAGE_METERING of every binary started (on or off).
	metering string
}

func newEnv(ctx context.Context, binDir string) (*env, error) {
	dir, err := os.MkdirTemp("", "quire-bench-")
	if err != nil {
		return nil, err
	}
	// PostgreSQL runs as `postgres` when we are root: it must reach the data directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "pg"), LogFile: filepath.Join(dir, "postgres.log")})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &env{dir: dir, binDir: binDir, pg: pg}, nil
}

func (e *env) close() {
	if err := e.pg.Stop(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
	_ = os.RemoveAll(e.dir)
}

// newDB creates an empty database and returns its URL.
func (e *env) newDB(ctx context.Context) (string, error) {
	e.dbs++
	name := "quire_bench_" + strconv.Itoa(e.dbs)
	if err := e.pg.CreateDatabase(ctx, name); err != nil {
		return "", err
	}
	return e.pg.URL(name), nil
}

// natsServer is an in-process JetStream server with file storage in a fresh directory.
type natsServer struct {
	s *server.Server
}

func (e *env) startNATS(name string) (*natsServer, error) {
	dir, err := os.MkdirTemp(e.dir, "nats-"+name+"-")
	if err != nil {
		return nil, err
	}
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		return nil, fmt.Errorf("nats server not ready")
	}
	return &natsServer{s: s}, nil
}

func (n *natsServer) url() string { return n.s.ClientURL() }

func (n *natsServer) stop() {
	n.s.Shutdown()
	n.s.WaitForShutdown()
}

// connect opens a connection and ensures Quire's topology on it, as the services do.
func (n *natsServer) connect(ctx context.Context) (*nats.Conn, jetstream.JetStream, *jobqueue.Topology, error) {
	nc, err := nats.Connect(n.url())
	if err != nil {
		return nil, nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	top, err := jobqueue.Ensure(ctx, js, jobqueue.Config{UpdateConsumers: true})
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	return nc, js, top, nil
}

// proc is a running service binary.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	out  bytes.Buffer
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Keep the tail only: an info-level service logs a line or two per job.
	if p.out.Len() > 1<<20 {
		tail := append([]byte(nil), p.out.Bytes()[p.out.Len()-64<<10:]...)
		p.out.Reset()
		p.out.Write(tail)
	}
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.out.String()
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// startBinary runs bin/<name> with env, its output kept in memory for error reports.
func (e *env) startBinary(name string, vars map[string]string) (*proc, error) {
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(e.binDir, name))
	p.cmd.Env = os.Environ()
	if e.metering != "" {
		p.cmd.Env = append(p.cmd.Env, "USAGE_METERING="+e.metering)
	}
	for k, v := range vars {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (run make build first): %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 30s).
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitReady polls url until it answers 200.
func (p *proc) waitReady(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start-up:\n%s", p.name, p.output())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready at %s within %v:\n%s", p.name, url, within, p.output())
}

// rssMB reads the current (VmRSS) and peak (VmHWM) resident set size of the process.
func (p *proc) rssMB() (cur, peak float64) {
	return procRSS(p.cmd.Process.Pid)
}

func procRSS(pid int) (cur, peak float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			cur = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return cur, peak
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// cpu is the user+system CPU time the process has used so far.
func (p *proc) cpu() time.Duration {
	f := procStat(p.cmd.Process.Pid)
	if len(f) < 13 {
		return 0
	}
	return ticks(f[11]) + ticks(f[12])
}

// pgCPU is the CPU time used by the PostgreSQL cluster: the postmaster, its exited children
// (cutime/cstime) and its live backends.
func (e *env) pgCPU() time.Duration {
	b, err := os.ReadFile(filepath.Join(e.dir, "pg", "postmaster.pid"))
	if err != nil {
		return 0
	}
	master, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		return 0
	}
	total := time.Duration(0)
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		f := procStat(pid)
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		switch {
		case pid == master:
			total += ticks(f[11]) + ticks(f[12]) + ticks(f[13]) + ticks(f[14])
		case ppid == master:
			total += ticks(f[11]) + ticks(f[12])
		}
	}
	return total
}

// procStat returns the fields of /proc/<pid>/stat after the command name (state first).
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

func ticks(s string) time.Duration {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Duration(n) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// jsInfo returns the number of messages in stream.
func (e *env) jsInfo(srv *natsServer, stream string) (uint64, error) {
	nc, err := nats.Connect(srv.url())
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(context.Background())
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}
