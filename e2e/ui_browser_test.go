package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const uiAdminToken = "e2e-admin-token-0123456789"

// chromiumPath is the browser the dashboard test drives: $QUIRE_CHROMIUM, else Debian's
// chromium package.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("QUIRE_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("no Chromium at %s (%v): install Debian's chromium package (apt-get install -y chromium) or set QUIRE_CHROMIUM", path, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg) // CI must run the browser test, never skip it
		}
		t.Skip(msg)
	}
	return path
}

// artifactDir is where the test saves its screenshots: $QUIRE_TEST_ARTIFACTS/<test>, kept
// after the run, else a temporary directory removed with the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("QUIRE_TEST_ARTIFACTS")
	if root == "" {
		return t.TempDir()
	}
	dir := filepath.Join(root, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// dashboard is a headless Chromium tab on the operator dashboard.
type dashboard struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

func newDashboard(t *testing.T, base string) *dashboard {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first run starts the browser; it must not carry a timeout (it would end the browser).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	d := &dashboard{t: t, ctx: ctx, base: base, shots: artifactDir(t)}
	t.Logf("dashboard screenshots in %s", d.shots)
	return d
}

// do runs steps with a timeout.
func (d *dashboard) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		d.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		d.t.Fatalf("browser: %s: %v", what, err)
	}
}

func eval[T any](d *dashboard, expr string) T {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		d.t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}

func (d *dashboard) location() string {
	d.t.Helper()
	return eval[string](d, `window.location.pathname + window.location.search`)
}

// screenshot saves the whole page as <name>.png.
func (d *dashboard) screenshot(name string) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		d.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(d.shots, name+".png"), png, 0o644); err != nil {
		d.t.Errorf("save screenshot %s: %v", name, err)
	}
}

// taskView is what the task page shows in its live region.
type taskView struct {
	State    string `json:"state"`
	Progress int    `json:"progress"`
	Message  string `json:"message"`
}

const readTaskView = `({
	state: (document.querySelector('[data-live] .summary [data-field=state]') || {}).textContent || '',
	progress: Number((document.getElementById('task-progress') || {}).value || 0),
	message: (document.querySelector('[data-live] .summary') || {}).textContent || ''
})`

// watchTask follows the task page, without reloading it (the page's own polling updates it),
// until the state is final, and returns every distinct view it saw.
func (d *dashboard) watchTask(final string, within time.Duration, onChange func(taskView)) []taskView {
	d.t.Helper()
	var seen []taskView
	deadline := time.Now().Add(within)
	for {
		v := eval[taskView](d, readTaskView)
		if len(seen) == 0 || v.State != seen[len(seen)-1].State || v.Progress != seen[len(seen)-1].Progress {
			seen = append(seen, v)
			if onChange != nil {
				onChange(v)
			}
		}
		if v.State == final {
			return seen
		}
		if time.Now().After(deadline) {
			d.screenshot("timeout-" + final)
			d.t.Fatalf("task page never showed %s within %v; it showed %+v", final, within, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestUIBrowserUploadCancelAndDeadLetter drives the operator dashboard in headless Chromium
// against the real binaries: sign in with the admin token, watch an upload go from PENDING to
// SUCCESS with its progress bar, cancel a queued task, and retry a dead letter once the fault
// that killed it is gone.
func TestUIBrowserUploadCancelAndDeadLetter(t *testing.T) {
	slow(t)
	chromiumPath(t) // fail or skip before starting anything
	s := newStack(t, map[string]string{"API_ADMIN_TOKEN": uiAdminToken, "MAX_RETRIES": "0"})
	api := s.startAPI(t)
	admin := &client{t: t, base: api.base, token: uiAdminToken}
	w := s.startWorker(t, map[string]string{
		"QUIRE_FAULT_SLOW_JOB": "3s", "QUIRE_FAULT_FAIL_ON_FILENAME": "poison.txt", "WORKER_CONCURRENCY_HIGH": "1",
	})
	d := newDashboard(t, api.base)

	// Sign in: a page of the dashboard sends the browser to the sign-in form, then back.
	d.do("open the tasks page", chromedp.Navigate(api.base+"/ui/tasks"), chromedp.WaitVisible(chromedp.ID("token")))
	if loc := d.location(); !strings.HasPrefix(loc, "/ui/login?next=") {
		t.Fatalf("without a session the dashboard is at %s, want the sign-in page", loc)
	}
	d.screenshot("01-sign-in")
	d.do("sign in with a wrong token",
		chromedp.SendKeys(chromedp.ID("token"), "not-the-token"),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("login-error")),
	)
	d.do("sign in",
		chromedp.SendKeys(chromedp.ID("token"), uiAdminToken),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("tasks")),
	)
	if loc := d.location(); loc != "/ui/tasks" {
		t.Fatalf("after sign-in the dashboard is at %s, want /ui/tasks", loc)
	}
	// The session lives in an HttpOnly cookie: nothing readable by scripts, nothing stored.
	if v := eval[string](d, `document.cookie + '|' + localStorage.length + '|' + sessionStorage.length`); v != "|0|0" {
		t.Fatalf("script-visible cookies and storage = %q, want none", v)
	}

	// An upload goes from PENDING to SUCCESS on its task page, the progress bar with it. The
	// queue is paused first so that PENDING is seen for sure.
	if code, out := admin.do(http.MethodPost, "/api/v1/queues/high/pause", nil, ""); code != http.StatusOK {
		t.Fatalf("pause high = %d %v", code, out)
	}
	_, up := api.upload("7", "watched.txt", []byte("A document watched from the operator dashboard.\n\nIt goes from PENDING to SUCCESS."))
	watched := up["task_id"].(string)
	d.do("open the task page", chromedp.Navigate(api.base+"/ui/tasks/"+watched), chromedp.WaitVisible(chromedp.ID("task-progress")))
	if v := eval[taskView](d, readTaskView); v.State != "PENDING" || v.Progress != 0 {
		t.Fatalf("task page of a queued upload shows %+v, want PENDING at 0", v)
	}
	d.screenshot("02-task-pending")
	if code, out := admin.do(http.MethodPost, "/api/v1/queues/high/resume", nil, ""); code != http.StatusOK {
		t.Fatalf("resume high = %d %v", code, out)
	}
	shotProgress := false
	seen := d.watchTask("SUCCESS", 60*time.Second, func(v taskView) {
		if v.State == "PROGRESS" && !shotProgress {
			d.screenshot("03-task-progress")
			shotProgress = true
		}
	})
	t.Logf("task page went through %+v", seen)
	midway := false
	for _, v := range seen {
		midway = midway || (v.State == "PROGRESS" && v.Progress > 0 && v.Progress < 100)
	}
	if last := seen[len(seen)-1]; !midway || last.Progress != 100 {
		t.Fatalf("task page went through %+v; want PROGRESS with a partial progress bar, then SUCCESS at 100", seen)
	}
	// Screen readers hear the change through the page's polite live region.
	if said := eval[string](d, `document.getElementById('live-announcer').textContent`); !strings.Contains(said, "SUCCESS") {
		t.Fatalf("live region announced %q, want the SUCCESS summary", said)
	}
	d.screenshot("04-task-success")
	d.do("open the task list", chromedp.Navigate(api.base+"/ui/tasks"), chromedp.WaitVisible(chromedp.CSS(`tr[data-task="`+watched+`"]`)))
	d.screenshot("05-tasks")

	// Cancel a queued task from its page.
	if code, out := admin.do(http.MethodPost, "/api/v1/queues/high/pause", nil, ""); code != http.StatusOK {
		t.Fatalf("pause high = %d %v", code, out)
	}
	_, up = api.upload("7", "cancel-me.txt", []byte("This upload is cancelled before it starts."))
	doomed := up["task_id"].(string)
	d.do("cancel a task",
		chromedp.Navigate(api.base+"/ui/tasks/"+doomed),
		chromedp.WaitVisible(chromedp.ID("cancel-form")),
		chromedp.Click(chromedp.CSS(`#cancel-form button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
	)
	if v := eval[taskView](d, readTaskView); v.State != "REVOKED" {
		t.Fatalf("task page after cancel shows %+v, want REVOKED", v)
	}
	if st := api.task(doomed); st["state"] != "REVOKED" {
		t.Fatalf("task after the dashboard's cancel = %v, want REVOKED", st)
	}
	d.screenshot("06-task-cancelled")
	if code, out := admin.do(http.MethodPost, "/api/v1/queues/high/resume", nil, ""); code != http.StatusOK {
		t.Fatalf("resume high = %d %v", code, out)
	}

	// A document the worker cannot process is dead-lettered (MAX_RETRIES=0); once a worker
	// without the fault runs, it is retried from the dead-letter page and succeeds.
	_, up = api.upload("7", "poison.txt", []byte("This document fails until the fault is gone."))
	poison := up["task_id"].(string)
	api.waitTask(poison, 30*time.Second, "FAILURE")
	w.stop(syscall.SIGTERM)
	s.startWorker(t, nil)
	row := `tr[data-task="` + poison + `"]`
	d.do("open the dead letters", chromedp.Navigate(api.base+"/ui/dlq"), chromedp.WaitVisible(chromedp.CSS(row)))
	if txt := eval[string](d, `document.querySelector('`+row+`').textContent`); !strings.Contains(txt, "fault injection") || !strings.Contains(txt, "poison.txt") {
		t.Fatalf("dead-letter row = %q, want the file and its error", txt)
	}
	d.screenshot("07-dead-letters")
	d.do("retry the dead letter",
		chromedp.Click(chromedp.CSS(row+` form[action$="/retry"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
	)
	if n := eval[int](d, `document.querySelectorAll('`+row+`').length`); n != 0 {
		t.Fatal("the retried dead letter is still listed")
	}
	d.do("open the retried task", chromedp.Navigate(api.base+"/ui/tasks/"+poison), chromedp.WaitVisible(chromedp.ID("task-progress")))
	d.watchTask("SUCCESS", 60*time.Second, nil)
	d.screenshot("08-retried-task-success")

	d.do("open the queues", chromedp.Navigate(api.base+"/ui/queues"), chromedp.WaitVisible(chromedp.ID("queues")))
	time.Sleep(2500 * time.Millisecond) // one refresh by the page's own polling
	d.screenshot("09-queues")
	d.do("open the documents of agent 7", chromedp.Navigate(api.base+"/ui/documents?tenant=acme&agent=7"), chromedp.WaitVisible(chromedp.ID("documents")))
	d.screenshot("10-documents")

	// Sign out: the dashboard asks to sign in again.
	d.do("sign out",
		chromedp.Click(chromedp.CSS(`form.signout button`)),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.Navigate(api.base+"/ui/queues"),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
}
