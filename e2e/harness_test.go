// Package e2e drives the real api-service and worker-service binaries, started as separate
// processes against one NATS server and one PostgreSQL database, over HTTP like a user.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/pgtest"
)

// binDir holds the binaries built once for the test binary.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test here is slow: with -short they all skip, so nothing is built.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "quire-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "./api-service/cmd/api-service", "./worker-service/cmd/worker-service")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOWORK=") // build in the workspace of the repository
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build binaries: %v\n%s", err, out)
		os.Exit(1)
	}
	binDir = dir
	code := pgtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// slow skips an end-to-end test under -short (make test-short); make test runs it.
func slow(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: make test runs it (not -short)")
	}
}

const tenantToken = "e2e-tenant-token-0123456789"

// service is a running binary.
type service struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	out  bytes.Buffer
}

func (s *service) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(p)
}

func (s *service) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// start runs bin with env until the test ends; its log is shown if the test fails.
func start(t *testing.T, bin string, env map[string]string) *service {
	t.Helper()
	s := &service{name: bin, done: make(chan struct{})}
	s.cmd = exec.Command(filepath.Join(binDir, bin))
	s.cmd.Env = os.Environ()
	for k, v := range env {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	s.cmd.Stdout, s.cmd.Stderr = s, s
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		if t.Failed() {
			// A goroutine dump of a stuck service says where it is stuck.
			s.stop(syscall.SIGQUIT)
		}
		s.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("--- %s output ---\n%s", bin, s.output())
		}
	})
	return s
}

// stop sends sig and waits for the process to exit.
func (s *service) stop(sig syscall.Signal) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitHTTP(t *testing.T, url string, svc *service) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-svc.done:
			t.Fatalf("%s exited during start-up:\n%s", svc.name, svc.output())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready at %s:\n%s", svc.name, url, svc.output())
}

// client talks to the API as a user would.
type client struct {
	t     *testing.T
	base  string
	token string
}

func (c *client) do(method, path string, body io.Reader, contentType string) (int, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s %s: %d non-JSON body %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func (c *client) upload(agent, filename string, content []byte) (int, map[string]any) {
	c.t.Helper()
	return c.uploadFields(agent, filename, content, nil)
}

// uploadFields uploads with extra form fields. These tests are about delivery, and several
// upload the same bytes more than once: force=true keeps a re-upload from being answered as a
// duplicate of a completed document (the API tests cover duplicates), unless fields set force.
func (c *client) uploadFields(agent, filename string, content []byte, fields map[string]string) (int, map[string]any) {
	c.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if _, ok := fields["force"]; !ok {
		_ = mw.WriteField("force", "true")
	}
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", filename)
	_, _ = fw.Write(content)
	_ = mw.Close()
	return c.do(http.MethodPost, "/api/v1/documents/agent/"+agent+"/upload", &body, mw.FormDataContentType())
}

func (c *client) task(id string) map[string]any {
	c.t.Helper()
	code, st := c.do(http.MethodGet, "/api/v1/tasks/"+id, nil, "")
	if code != http.StatusOK {
		c.t.Fatalf("GET task %s = %d %v", id, code, st)
	}
	return st
}

// waitTask polls the task until its state is one of states.
func (c *client) waitTask(id string, within time.Duration, states ...string) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := c.task(id)
		for _, s := range states {
			if st["state"] == s {
				return st
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("task %s is %v after %v, want %s", id, st, within, strings.Join(states, " or "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
