package deploycheck_test

import (
	"flag"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/quirehq/quire/shared/job"
)

type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	// Extension fields (x-...) hold the anchors the services merge in.
	QuireEnv map[string]string `yaml:"x-quire-env"`
	Worker   composeService    `yaml:"x-worker"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Expose      []string          `yaml:"expose"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	Restart         string `yaml:"restart"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	decodeYAMLFile(t, repoPath("docker-compose.yml"), &c)
	return c
}

// quireServices are the compose services that run Quire binaries, with the module each builds.
var quireServices = map[string]string{
	"api":         "api-service",
	"worker-high": "worker-service",
	"worker-bulk": "worker-service",
}

func TestComposeHasTheFiveServices(t *testing.T) {
	c := loadCompose(t)
	want := []string{"api", "nats", "postgres", "worker-bulk", "worker-high"}
	if got := slices.Sorted(maps.Keys(c.Services)); !slices.Equal(got, want) {
		t.Fatalf("compose services = %v, want %v", got, want)
	}
}

func TestComposeWorkerPools(t *testing.T) {
	c := loadCompose(t)
	want := map[string]string{"worker-high": "high", "worker-bulk": "medium,low"}
	pools := map[string][]job.Priority{}
	for name, queues := range want {
		env := c.Services[name].Environment
		if env["WORKER_QUEUES"] != queues {
			t.Errorf("%s: WORKER_QUEUES = %q, want %q", name, env["WORKER_QUEUES"], queues)
		}
		pools[name] = parseQueues(t, name, env["WORKER_QUEUES"])
		for _, p := range pools[name] {
			if env[concurrencyVar(p)] == "" {
				t.Errorf("%s serves %s but sets no %s", name, p, concurrencyVar(p))
			}
		}
		if _, port := hostPort(t, name+" METRICS_ADDR", env["METRICS_ADDR"]); !slices.Contains(c.Services[name].Expose, strconv.Itoa(port)) {
			t.Errorf("%s: METRICS_ADDR port %d is not exposed (expose %v)", name, port, c.Services[name].Expose)
		}
		if len(c.Services[name].Ports) > 0 {
			t.Errorf("%s publishes host ports %v: `--scale` would make replicas collide", name, c.Services[name].Ports)
		}
	}
	checkPoolsCoverPriorities(t, "docker-compose.yml", pools)
}

func TestComposeStartupOrderAndHealth(t *testing.T) {
	c := loadCompose(t)
	for _, dep := range []string{"nats", "postgres"} {
		hc := c.Services[dep].Healthcheck
		if hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
			t.Errorf("%s: want an exec-form healthcheck (service_healthy depends on it), have %+v", dep, hc)
		}
	}
	if hc := c.Services["nats"].Healthcheck; hc != nil && !strings.Contains(strings.Join(hc.Test, " "), "js-enabled-only=true") {
		t.Errorf("nats healthcheck %v does not wait for JetStream (/healthz?js-enabled-only=true)", hc.Test)
	}
	for name := range quireServices {
		s := c.Services[name]
		for _, dep := range []string{"nats", "postgres"} {
			if got := s.DependsOn[dep].Condition; got != "service_healthy" {
				t.Errorf("%s depends_on %s: condition %q, want service_healthy", name, dep, got)
			}
		}
		if s.Restart == "" {
			t.Errorf("%s: no restart policy; with no in-container healthcheck it is what revives a crashed process", name)
		}
	}
}

func TestComposeGracePeriodCoversShutdownTimeout(t *testing.T) {
	c := loadCompose(t)
	for name := range quireServices {
		s := c.Services[name]
		if s.StopGracePeriod == "" {
			t.Errorf("%s: no stop_grace_period (Docker's default 10s cuts SHUTDOWN_TIMEOUT short)", name)
			continue
		}
		shutdown := parseDuration(t, name+" SHUTDOWN_TIMEOUT", s.Environment["SHUTDOWN_TIMEOUT"])
		grace := parseDuration(t, name+" stop_grace_period", s.StopGracePeriod)
		if grace <= shutdown {
			t.Errorf("%s: stop_grace_period %v must exceed SHUTDOWN_TIMEOUT %v", name, grace, shutdown)
		}
	}
}

func TestComposeEnvironment(t *testing.T) {
	c := loadCompose(t)
	pg := c.Services["postgres"].Environment
	natsPort := 4222
	if i := slices.Index(c.Services["nats"].Command, "--port"); i >= 0 {
		_, natsPort = hostPort(t, "nats --port", ":"+c.Services["nats"].Command[i+1])
	}
	for name := range quireServices {
		env := c.Services[name].Environment
		for k := range env {
			if !designEnv[k] {
				t.Errorf("%s sets %s, which is not a variable of DESIGN §8", name, k)
			}
		}
		host, port := hostPort(t, name+" NATS_URL", env["NATS_URL"])
		if _, ok := c.Services[host]; !ok || port != natsPort {
			t.Errorf("%s: NATS_URL %q does not point at the nats service on port %d", name, env["NATS_URL"], natsPort)
		}
		u, err := url.Parse(env["DATABASE_URL"])
		if err != nil {
			t.Fatalf("%s: DATABASE_URL: %v", name, err)
		}
		pass, _ := u.User.Password()
		if u.Hostname() != "postgres" || u.User.Username() != pg["POSTGRES_USER"] || pass != pg["POSTGRES_PASSWORD"] ||
			strings.TrimPrefix(u.Path, "/") != pg["POSTGRES_DB"] {
			t.Errorf("%s: DATABASE_URL %q does not match the postgres service's user, password and database", name, env["DATABASE_URL"])
		}
	}
	api := c.Services["api"]
	_, port := hostPort(t, "api HTTP_ADDR", api.Environment["HTTP_ADDR"])
	if !slices.ContainsFunc(api.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+strconv.Itoa(port)) }) {
		t.Errorf("api: HTTP_ADDR port %d is not published (ports %v)", port, api.Ports)
	}
}

func TestComposeBuildsEachServiceFromItsDockerfile(t *testing.T) {
	c := loadCompose(t)
	for name, module := range quireServices {
		b := c.Services[name].Build
		if b == nil {
			t.Errorf("%s: no build section", name)
			continue
		}
		if b.Context != "." {
			t.Errorf("%s: build context %q, want the repository root \".\" (the image needs shared/ too)", name, b.Context)
		}
		if want := "deploy/docker/" + module + ".Dockerfile"; b.Dockerfile != want {
			t.Errorf("%s: dockerfile %q, want %q", name, b.Dockerfile, want)
		}
		if _, err := os.Stat(repoPath(b.Dockerfile)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, s := range c.Services {
		for _, v := range s.Volumes {
			if vol, _, ok := strings.Cut(v, ":"); ok && !strings.HasPrefix(vol, ".") && !strings.HasPrefix(vol, "/") {
				if _, declared := c.Volumes[vol]; !declared {
					t.Errorf("named volume %q is not declared under volumes:", vol)
				}
			}
		}
	}
}

// TestComposeNATSCommand parses the nats service's command line with nats-server's own flag
// parser and checks it against the service's volume, ports and healthcheck.
func TestComposeNATSCommand(t *testing.T) {
	c := loadCompose(t)
	s := c.Services["nats"]
	if len(s.Command) == 0 || s.Command[0] != "nats-server" {
		t.Fatalf("nats command %v does not run nats-server", s.Command)
	}
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	opts, err := server.ConfigureOptions(fs, s.Command[1:], func() {}, func() {}, func() {})
	if err != nil {
		t.Fatalf("nats-server rejects the command line %v: %v", s.Command, err)
	}
	if !opts.JetStream {
		t.Error("nats: JetStream is not enabled")
	}
	if !slices.ContainsFunc(s.Volumes, func(v string) bool {
		_, mount, _ := strings.Cut(v, ":")
		return mount == opts.StoreDir
	}) {
		t.Errorf("nats: JetStream store_dir %q is not on a volume (%v): jobs would not survive a restart", opts.StoreDir, s.Volumes)
	}
	port := opts.Port
	if port == 0 {
		port = server.DEFAULT_PORT
	}
	for what, p := range map[string]int{"client": port, "monitoring": opts.HTTPPort} {
		if p == 0 || !slices.Contains(s.Ports, strconv.Itoa(p)+":"+strconv.Itoa(p)) {
			t.Errorf("nats: %s port %d is not published (ports %v)", what, p, s.Ports)
		}
	}
	if hc := s.Healthcheck; hc != nil && !strings.Contains(strings.Join(hc.Test, " "), ":"+strconv.Itoa(opts.HTTPPort)+"/healthz") {
		t.Errorf("nats healthcheck %v does not probe the monitoring port %d", hc.Test, opts.HTTPPort)
	}
}
