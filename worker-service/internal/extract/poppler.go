package extract

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// popplerEngine runs poppler's pdfinfo and pdftotext as sandboxed subprocesses: the PDF goes
// in on stdin and the text comes out on stdout (no file of ours is opened by them), with a
// fixed argv and no shell interpretation of anything from the document, a clean environment,
// resource limits set before exec (address space Options.PDFMemoryLimitMB, CPU time, no file
// writes, no core dumps), its own process group killed as a whole when the document's
// context ends, and SIGKILL if the worker dies. The Extractor runs at most Options.PDFWorkers
// documents through it at once.
type popplerEngine struct {
	pdftotext, pdfinfo, sh string
	opts                   Options
	// sandbox is the bubblewrap argv the tools run under (empty: none).
	sandbox []string
}

func lookPDFToText(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: pdf engine %q needs pdftotext (apt-get install poppler-utils; tools/test-tools.sh installs what the tests need; or use %q): %v", ErrEngine, EnginePDFToText, EnginePDFium, err)
	}
	return p, nil
}

func newPopplerEngine(opts Options) (*popplerEngine, error) {
	text, err := lookPDFToText(opts.PDFToTextPath)
	if err != nil {
		return nil, err
	}
	info := filepath.Join(filepath.Dir(text), "pdfinfo")
	if _, err := exec.LookPath(info); err != nil {
		if info, err = exec.LookPath("pdfinfo"); err != nil {
			return nil, fmt.Errorf("%w: pdfinfo not found beside %s: %v", ErrEngine, text, err)
		}
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		return nil, fmt.Errorf("%w: sh not found (needed to set resource limits): %v", ErrEngine, err)
	}
	p := &popplerEngine{pdftotext: text, pdfinfo: info, sh: sh, opts: opts}
	if opts.PDFToTextSandbox != SandboxOff {
		sb, err := bwrapSandbox(p.pdftotext, p.pdfinfo, p.sh)
		switch {
		case err == nil:
			p.sandbox = sb
		case opts.PDFToTextSandbox == SandboxBwrap:
			return nil, fmt.Errorf("%w: PDFToTextSandbox %q: %v", ErrEngine, SandboxBwrap, err)
		}
	}
	return p, nil
}

// sandboxed reports whether the poppler tools run inside bubblewrap.
func (p *popplerEngine) sandboxed() bool { return len(p.sandbox) > 0 }

// bwrapSandbox builds the bubblewrap command line the tools run under: new user, network,
// IPC, PID, UTS and cgroup namespaces, no capabilities, a read-only /usr (with the usual
// merged-/usr links), fonts and the loader cache, an empty /tmp, and nothing else of the host
// filesystem; the sandbox dies with the worker. bins are the programs that will run in it (the
// shell last: it runs the probe); their directories are bound read-only when outside /usr. It
// runs a probe and fails where bubblewrap is missing or cannot create namespaces (some
// containers).
func bwrapSandbox(bins ...string) ([]string, error) {
	bw, err := exec.LookPath("bwrap")
	if err != nil {
		return nil, fmt.Errorf("bubblewrap not installed: %v", err)
	}
	args := []string{bw, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
		"--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/"}
	for _, d := range []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			if target, err := os.Readlink(d); err == nil {
				args = append(args, "--symlink", target, d)
			}
		case fi.IsDir():
			args = append(args, "--ro-bind", d, d)
		}
	}
	args = append(args, "--ro-bind-try", "/etc/fonts", "/etc/fonts", "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache")
	for _, bin := range bins {
		if dir := filepath.Dir(bin); !strings.HasPrefix(dir, "/usr/") && !slices.Contains(args, dir) {
			args = append(args, "--ro-bind", dir, dir)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	probe := exec.CommandContext(ctx, args[0], append(args[1:], "--", bins[len(bins)-1], "-c", "exit 0")...)
	probe.Env = []string{"PATH=/usr/bin:/bin"}
	if out, err := probe.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bubblewrap cannot run here: %v: %s", err, lastLine(string(out)))
	}
	return append(args, "--"), nil
}

func (p *popplerEngine) close() error { return nil }

func (p *popplerEngine) extract(ctx context.Context, data []byte, pages func(int, string) error, page func(int, string) error) error {
	var info bytes.Buffer
	if err := p.run(ctx, p.pdfinfo, []string{"-enc", "UTF-8", "-"}, data, func(r io.Reader) error {
		_, err := io.Copy(&info, io.LimitReader(r, 1<<20))
		return err
	}); err != nil {
		return err
	}
	n, title := 0, ""
	for line := range strings.Lines(info.String()) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "Pages":
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		case "Title":
			title = strings.TrimSpace(v)
		}
	}
	if err := pages(n, title); err != nil {
		return err
	}

	done := 0
	err := p.run(ctx, p.pdftotext, []string{"-enc", "UTF-8", "-eol", "unix", "-", "-"}, data, func(r io.Reader) error {
		br := bufio.NewReaderSize(r, 64<<10)
		var cur bytes.Buffer
		total := 0
		for {
			chunk, err := br.ReadSlice('\f')
			total += len(chunk)
			if total > p.opts.MaxTextBytes {
				return fmt.Errorf("%w: more than %d bytes of text", ErrTooLarge, p.opts.MaxTextBytes)
			}
			cur.Write(chunk)
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err == nil { // a page ends with a form feed
				done++
				if done > n {
					return fmt.Errorf("%w: pdftotext returned more pages than pdfinfo counted (%d)", ErrCorrupt, n)
				}
				if perr := page(done, cur.String()); perr != nil {
					return perr
				}
				cur.Reset()
				continue
			}
			if errors.Is(err, io.EOF) {
				if strings.TrimSpace(cur.String()) != "" && done < n {
					done++
					return page(done, cur.String())
				}
				return nil
			}
			return err
		}
	})
	if err != nil {
		return err
	}
	for done < n { // pages pdftotext could not read count as empty
		done++
		if err := page(done, ""); err != nil {
			return err
		}
	}
	return nil
}

// run runs one poppler tool on data under the sandbox limits, streaming its stdout to out.
func (p *popplerEngine) run(ctx context.Context, bin string, args []string, data []byte, out func(io.Reader) error) error {
	t := tool{sh: p.sh, sandbox: p.sandbox, memoryMB: p.opts.PDFMemoryLimitMB, cpu: p.opts.Timeout}
	stderr, err := t.run(ctx, bin, args, bytes.NewReader(data), out)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return err
	}
	tool := filepath.Base(bin)
	msg := strings.TrimSpace(stderr)
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Errorf("%w: %s killed by %v past its limits (%d MiB, %d s CPU): %s", ErrTooLarge, tool, ws.Signal(), p.opts.PDFMemoryLimitMB, t.cpuSeconds(), lastLine(msg))
	}
	switch code := ee.ExitCode(); {
	case code == 1 && strings.Contains(msg, "Incorrect password"):
		return fmt.Errorf("%w: pdf is encrypted with a user password", ErrEncrypted)
	case code == 3:
		return fmt.Errorf("%w: %s: permission error: %s", ErrEncrypted, tool, lastLine(msg))
	case code == 127 || code == 126:
		return fmt.Errorf("%w: %s could not be executed: %s", ErrEngine, tool, lastLine(msg))
	case strings.Contains(msg, "bad_alloc") || strings.Contains(msg, "Out of memory"):
		return fmt.Errorf("%w: %s ran out of its %d MiB: %s", ErrTooLarge, tool, p.opts.PDFMemoryLimitMB, lastLine(msg))
	default:
		return fmt.Errorf("%w: %s exit %d: %s", ErrCorrupt, tool, code, lastLine(msg))
	}
}

// tool runs a helper program (a poppler tool, tesseract) as a sandboxed subprocess: a fixed
// argv with no shell interpretation of anything from the document, a clean environment,
// resource limits set before exec (address space memoryMB, CPU time cpu, no file writes, no
// core dumps), its own process group killed as a whole when ctx ends, SIGKILL if the worker
// dies, and bubblewrap around it when sandbox is set.
type tool struct {
	sh       string
	sandbox  []string
	memoryMB int
	cpu      time.Duration
	// env is added to the fixed environment (PATH, LANG, HOME).
	env []string
}

func (t tool) cpuSeconds() int { return int(t.cpu/time.Second) + 1 }

// run runs bin with args, stdin as its standard input, streaming its stdout to out. It
// returns the start of the tool's stderr and: nil on success, ctx's error once ctx is done,
// out's error, an ErrEngine error when the tool cannot be started, or the *exec.ExitError of
// a failed tool for the caller to interpret.
func (t tool) run(ctx context.Context, bin string, args []string, stdin io.Reader, out func(io.Reader) error) (string, error) {
	// Limits are applied by the shell before it execs the tool, so no byte of the document is
	// read without them; the script is fixed and the tool's argv is passed as "$0" "$@".
	script := fmt.Sprintf(`ulimit -v %d && ulimit -t %d && ulimit -f 0 && ulimit -c 0 && exec "$0" "$@"`,
		t.memoryMB<<10, t.cpuSeconds())
	argv := append(append(slices.Clone(t.sandbox), t.sh, "-c", script, bin), args...)
	// The parent-death signal fires when the thread that started the tool exits, not the
	// process: keep this goroutine on that thread until the tool has been waited for.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/nonexistent"}, t.env...)
	cmd.Dir = "/"
	cmd.Stdin = stdin
	var stderr limitedBuffer
	stderr.max = 4 << 10
	cmd.Stderr = &stderr
	cmd.SysProcAttr = groupAttrs()
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	cmd.WaitDelay = 2 * time.Second
	name := filepath.Base(bin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrEngine, name, err)
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("%w: start %s: %v", ErrEngine, name, err)
	}
	outErr := out(stdout)
	if outErr != nil {
		// Stop reading: kill the whole group rather than leave it blocked on a full pipe.
		_ = killGroup(cmd.Process)
		_, _ = io.Copy(io.Discard, stdout)
	}
	waitErr := cmd.Wait()
	if ctx.Err() != nil {
		return stderr.String(), ctx.Err()
	}
	if outErr != nil {
		return stderr.String(), outErr
	}
	var ee *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &ee) {
		return stderr.String(), fmt.Errorf("%w: %s: %v", ErrEngine, name, waitErr)
	}
	return stderr.String(), waitErr
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// limitedBuffer keeps the first max bytes written to it and discards the rest.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
