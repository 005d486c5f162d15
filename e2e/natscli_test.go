package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// natsCLI finds the nats CLI binary: on PATH, else in $(go env GOPATH)/bin where
// `go install github.com/nats-io/natscli/nats@v0.5.0` puts it. Without it the test is skipped
// on a developer's machine and fails in CI (CI set), where .ci/run installs it.
func natsCLI(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	var tried []string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", "nats")
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p
			}
			tried = append(tried, p)
		}
	}
	msg := "nats CLI not found on PATH nor at " + strings.Join(tried, ", ") +
		"; install it with: go install github.com/nats-io/natscli/nats@v0.5.0"
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatal(msg + " (CI is set: .ci/run must install it)")
	}
	t.Skip(msg)
	return ""
}

// TestNatsCLICommandsOfTheREADME runs the operator commands the README documents with the
// real nats CLI against a server that has run one job to success and dead-lettered another.
func TestNatsCLICommandsOfTheREADME(t *testing.T) {
	slow(t)
	bin := natsCLI(t)
	s := newStack(t, map[string]string{"MAX_RETRIES": "0"})
	api := s.startAPI(t)
	s.startWorker(t, map[string]string{"QUIRE_FAULT_FAIL_ON_FILENAME": "broken.txt"})

	code, up := api.upload("7", "notes.txt", []byte(strings.Repeat("Operators read queues with the nats CLI. ", 20)))
	if code != http.StatusAccepted {
		t.Fatalf("upload = %d %v", code, up)
	}
	okID := up["task_id"].(string)
	code, up = api.upload("7", "broken.txt", []byte("this one fails and is dead-lettered"))
	if code != http.StatusAccepted {
		t.Fatalf("upload = %d %v", code, up)
	}
	badID := up["task_id"].(string)
	api.waitTask(okID, 30*time.Second, "SUCCESS")
	api.waitTask(badID, 30*time.Second, "FAILURE")

	// Isolated from the machine's saved nats contexts: only --server counts.
	home := t.TempDir()
	run := func(terminal bool, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"--server", s.env["NATS_URL"], "--no-context"}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "NATS_URL=", "NO_COLOR=1")
		var out []byte
		var err error
		if terminal {
			out, err = runInTerminal(cmd)
		} else {
			out, err = cmd.CombinedOutput()
		}
		if err != nil {
			t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("$ nats %s\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	nats := func(args ...string) string { t.Helper(); return run(false, args...) }
	has := func(cmd, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("nats %s: output lacks %q", cmd, w)
			}
		}
	}
	matches := func(cmd, out string, re string) {
		t.Helper()
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("nats %s: output does not match %s", cmd, re)
		}
	}

	out := nats("stream", "ls")
	has("stream ls", out, "JOBS_HIGH", "JOBS_MEDIUM", "JOBS_LOW", "JOBS_DLQ")

	out = nats("consumer", "info", "JOBS_HIGH", "workers")
	has("consumer info JOBS_HIGH workers", out, "workers", "JOBS_HIGH", "Explicit")
	// The queue is drained: nothing pending, nothing waiting for an ack.
	matches("consumer info JOBS_HIGH workers", out, `(?m)Outstanding Acks: 0\b`)
	matches("consumer info JOBS_HIGH workers", out, `(?m)Unprocessed Messages: 0\b`)

	out = nats("kv", "get", "TASKS", okID)
	has("kv get TASKS", out, okID, `"state":"SUCCESS"`)
	out = nats("kv", "get", "TASKS", badID)
	has("kv get TASKS", out, badID, `"state":"FAILURE"`)

	out = nats("kv", "get", "TASKS", okID, "--raw")
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil || st["state"] != "SUCCESS" || st["task_id"] != okID {
		t.Errorf("nats kv get TASKS %s --raw = %q (%v), want the task's status JSON", okID, out, err)
	}

	// stream view pages interactively: it insists on a terminal, as an operator's is.
	out = run(true, "stream", "view", "JOBS_DLQ")
	has("stream view JOBS_DLQ", out, "dlq.high.document", "Quire-Error", "Quire-Attempts", "Quire-Original-Subject", "jobs.high.document", "Quire-Task-Id", badID)
}

// runInTerminal runs cmd with a new pseudo-terminal as its controlling terminal, stdin,
// stdout and stderr, and returns what it wrote there.
func runInTerminal(cmd *exec.Cmd) ([]byte, error) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	defer ptmx.Close()
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		return nil, fmt.Errorf("unlock pseudo-terminal: %w", errno)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		return nil, fmt.Errorf("pseudo-terminal number: %w", errno)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = cmd.Start()
	pts.Close()
	if err != nil {
		return nil, err
	}
	var out []byte
	buf := make([]byte, 4096)
	for {
		k, rerr := ptmx.Read(buf)
		out = append(out, buf[:k]...)
		if rerr != nil { // EIO once the command has exited and closed the terminal
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		return out, err
	}
	return bytesWithoutCR(out), nil
}

func bytesWithoutCR(b []byte) []byte {
	return []byte(strings.ReplaceAll(string(b), "\r\n", "\n"))
}
