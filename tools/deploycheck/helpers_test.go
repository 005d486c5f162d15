package deploycheck_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/quirehq/quire/shared/job"
)

// repoRoot is the repository root seen from this package's directory, where tests run.
const repoRoot = "../.."

func repoPath(parts ...string) string {
	return filepath.Join(append([]string{repoRoot}, parts...)...)
}

// designEnv is the environment of DESIGN §8 (and §14's OCR variables): the only variables a deployment may set on the
// api-service and worker-service containers.
var designEnv = map[string]bool{
	"NATS_URL": true, "NATS_CREDS": true, "DATABASE_URL": true, "HTTP_ADDR": true,
	"METRICS_ADDR": true, "API_TOKENS": true, "API_ADMIN_TOKEN": true, "MAX_UPLOAD_BYTES": true,
	"RESULT_TTL": true, "STREAM_REPLICAS": true, "WORKER_QUEUES": true,
	"WORKER_CONCURRENCY_HIGH": true, "WORKER_CONCURRENCY_MEDIUM": true, "WORKER_CONCURRENCY_LOW": true,
	"MAX_RETRIES": true, "RETRY_BASE_DELAY": true, "RETRY_MAX_DELAY": true, "ACK_WAIT": true,
	"JOB_TIMEOUT": true, "SHUTDOWN_TIMEOUT": true, "DLQ_MAX_AGE": true, "EMBEDDINGS_PROVIDER": true,
	"OPENAI_API_KEY": true, "OPENAI_BASE_URL": true, "EMBEDDINGS_MODEL": true,
	"EMBEDDINGS_DIMENSIONS": true, "EMBEDDINGS_BATCH_SIZE": true, "CHUNK_SIZE": true,
	"CHUNK_OVERLAP": true, "WEBPAGE_ALLOW_PRIVATE": true, "LOG_LEVEL": true,
	// §14
	"OCR_ENGINE": true, "OCR_LANGUAGES": true,
}

// concurrencyVar is the slot-count variable of a priority, e.g. WORKER_CONCURRENCY_HIGH.
func concurrencyVar(p job.Priority) string {
	return "WORKER_CONCURRENCY_" + strings.ToUpper(string(p))
}

// parseQueues parses a WORKER_QUEUES value into priorities.
func parseQueues(t *testing.T, where, v string) []job.Priority {
	t.Helper()
	var out []job.Priority
	for name := range strings.SplitSeq(v, ",") {
		p, err := job.ParsePriority(name)
		if err != nil {
			t.Errorf("%s: WORKER_QUEUES=%q: %v", where, v, err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// checkPoolsCoverPriorities reports a priority no pool serves, or one served by two pools.
func checkPoolsCoverPriorities(t *testing.T, where string, pools map[string][]job.Priority) {
	t.Helper()
	servedBy := map[job.Priority][]string{}
	for pool, ps := range pools {
		for _, p := range ps {
			servedBy[p] = append(servedBy[p], pool)
		}
	}
	for _, p := range job.Priorities {
		switch n := len(servedBy[p]); {
		case n == 0:
			t.Errorf("%s: no worker pool serves queue %s", where, p)
		case n > 1:
			slices.Sort(servedBy[p])
			t.Errorf("%s: queue %s is served by several pools %v; each priority belongs to one pool", where, p, servedBy[p])
		}
	}
}

// hostPort splits an address such as ":8080", "nats://nats:4222" or "host:8222" into host and
// port.
func hostPort(t *testing.T, where, addr string) (string, int) {
	t.Helper()
	if i := strings.Index(addr, "://"); i >= 0 {
		addr = addr[i+3:]
	}
	if i := strings.IndexAny(addr, "/?"); i >= 0 {
		addr = addr[:i]
	}
	if i := strings.LastIndex(addr, "@"); i >= 0 {
		addr = addr[i+1:]
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: address %q: %v", where, addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("%s: address %q: port: %v", where, addr, err)
	}
	return host, n
}

func parseDuration(t *testing.T, where, v string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %q is not a duration: %v", where, v, err)
	}
	return d
}

// yamlDocs parses every document of a YAML file, failing the test on a syntax error or an
// empty file.
func yamlDocs(t *testing.T, path string) []*yaml.Node {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			continue
		}
		docs = append(docs, &n)
	}
	if len(docs) == 0 {
		t.Fatalf("parse %s: no YAML document", path)
	}
	return docs
}

// decodeYAMLFile decodes a single-document YAML file into v, rejecting unknown fields so that a
// misspelt key fails the test instead of being ignored.
func decodeYAMLFile(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
}

// deployFiles lists the files under deploy/ with one of the given extensions.
func deployFiles(t *testing.T, exts ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(repoPath("deploy"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && slices.Contains(exts, filepath.Ext(path)) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk deploy/: %v", err)
	}
	return out
}

// intOrString is a Kubernetes IntOrString (a port given by number or by name).
type intOrString string

func (s *intOrString) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a number or a string")
	}
	*s = intOrString(n.Value)
	return nil
}
