package deploycheck_test

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/metrics"
	"github.com/quirehq/quire/shared/natstest"
)

// exposedMetrics registers every Quire metric set on one registry, the queue collector reading a
// real JetStream server with the services' topology, records one HTTP request (HTTP series exist
// only once a route is hit), and returns the family names a scrape exposes with their types.
func exposedMetrics(t *testing.T) map[string]dto.MetricType {
	t.Helper()
	srv := natstest.Run(t)
	_, js := natstest.Connect(t, srv)
	if _, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{}); err != nil {
		t.Fatalf("create the JetStream topology: %v", err)
	}
	reg := prometheus.NewPedanticRegistry()
	w, err := metrics.NewWorker(reg)
	if err != nil {
		t.Fatal(err)
	}
	// Embeddings series exist once a provider has been called.
	w.EmbeddingRequest("local", 10, errors.New("embed: model not loaded"))
	api, err := metrics.NewAPI(reg)
	if err != nil {
		t.Fatal(err)
	}
	api.ObserveHTTP("/healthz", "GET", 200, time.Millisecond)
	qc, err := metrics.NewQueueCollector(js, metrics.QueueCollectorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(qc); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]dto.MetricType{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf.GetType()
	}
	return out
}

var metricNameRE = regexp.MustCompile(`quire_[a-z_]+`)

// referencedMetrics returns the metric names a file refers to, with the _bucket, _sum and _count
// series of histograms mapped to the histogram's name when the histogram exists.
func referencedMetrics(t *testing.T, path string, exposed map[string]dto.MetricType) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, name := range metricNameRE.FindAllString(string(data), -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && exposed[base] == dto.MetricType_HISTOGRAM {
				name = base
			}
		}
		out[name] = true
	}
	return out
}

// contractMetrics are the metric names dashboards and alerts are promised (the design's
// operations contract), with their types.
var contractMetrics = map[string]dto.MetricType{
	"quire_jobs_started_total":               dto.MetricType_COUNTER,
	"quire_jobs_succeeded_total":             dto.MetricType_COUNTER,
	"quire_jobs_failed_total":                dto.MetricType_COUNTER,
	"quire_jobs_retried_total":               dto.MetricType_COUNTER,
	"quire_jobs_dead_lettered_total":         dto.MetricType_COUNTER,
	"quire_jobs_cancelled_total":             dto.MetricType_COUNTER,
	"quire_job_duration_seconds":             dto.MetricType_HISTOGRAM,
	"quire_job_stage_duration_seconds":       dto.MetricType_HISTOGRAM,
	"quire_jobs_in_flight":                   dto.MetricType_GAUGE,
	"quire_embeddings_requests_total":        dto.MetricType_COUNTER,
	"quire_embeddings_tokens_total":          dto.MetricType_COUNTER,
	"quire_embeddings_errors_total":          dto.MetricType_COUNTER,
	"quire_queue_pending":                    dto.MetricType_GAUGE,
	"quire_queue_ack_pending":                dto.MetricType_GAUGE,
	"quire_queue_redelivered":                dto.MetricType_GAUGE,
	"quire_queue_consumers":                  dto.MetricType_GAUGE,
	"quire_queue_paused":                     dto.MetricType_GAUGE,
	"quire_queue_oldest_pending_age_seconds": dto.MetricType_GAUGE,
	"quire_queue_stats_up":                   dto.MetricType_GAUGE,
	"quire_dlq_messages":                     dto.MetricType_GAUGE,
	"quire_http_requests_total":              dto.MetricType_COUNTER,
	"quire_http_request_duration_seconds":    dto.MetricType_HISTOGRAM,
}

func TestDashboardAndAlertsUseExposedMetrics(t *testing.T) {
	exposed := exposedMetrics(t)
	if !maps.Equal(exposed, contractMetrics) {
		for _, name := range slices.Sorted(maps.Keys(contractMetrics)) {
			if got, ok := exposed[name]; !ok || got != contractMetrics[name] {
				t.Errorf("contract metric %s (%v): exposed as %v, present %v", name, contractMetrics[name], got, ok)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(exposed)) {
			if _, ok := contractMetrics[name]; !ok {
				t.Errorf("%s is exposed but not part of the metrics contract", name)
			}
		}
	}
	onDashboard := referencedMetrics(t, repoPath("deploy", "grafana", "quire-dashboard.json"), exposed)
	inAlerts := referencedMetrics(t, repoPath("deploy", "prometheus", "alerts.yml"), exposed)
	for what, refs := range map[string]map[string]bool{"dashboard": onDashboard, "alert rules": inAlerts} {
		if len(refs) == 0 {
			t.Errorf("the %s reference no quire_ metric", what)
		}
		for name := range refs {
			if _, ok := exposed[name]; !ok {
				t.Errorf("the %s use %s, which no Quire service exposes", what, name)
			}
		}
	}
	for name := range exposed {
		if strings.HasPrefix(name, "quire_") && !onDashboard[name] {
			t.Errorf("%s is exposed but on no dashboard panel", name)
		}
	}
}

type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func TestDashboardStructure(t *testing.T) {
	data, err := os.ReadFile(repoPath("deploy", "grafana", "quire-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("quire-dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion == 0 {
		t.Errorf("dashboard needs title, uid and schemaVersion; have %q %q %d", d.Title, d.UID, d.SchemaVersion)
	}
	vars := map[string]bool{"__rate_interval": true, "__interval": true, "__all": true}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	if !vars["datasource"] {
		t.Error("no datasource variable: the dashboard would be bound to one Prometheus")
	}
	varRE := regexp.MustCompile(`\$\{?([A-Za-z_]+)`)
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: gridPos %+v is outside the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %d %q: needs a title and the ${datasource} data source", p.ID, p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: every target needs an expr and a distinct refId (%q)", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			checkBalanced(t, "panel "+p.Title, tg.Expr)
			for _, m := range varRE.FindAllStringSubmatch(tg.Expr, -1) {
				if !vars[m[1]] {
					t.Errorf("panel %q uses $%s, which is not a dashboard variable", p.Title, m[1])
				}
			}
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type promConfig struct {
	Global        map[string]string `yaml:"global"`
	RuleFiles     []string          `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName             string `yaml:"job_name"`
		KubernetesSDConfigs []any  `yaml:"kubernetes_sd_configs"`
		RelabelConfigs      []struct {
			SourceLabels []string `yaml:"source_labels"`
			Regex        string   `yaml:"regex"`
			Action       string   `yaml:"action"`
			Replacement  string   `yaml:"replacement"`
			TargetLabel  string   `yaml:"target_label"`
		} `yaml:"relabel_configs"`
	} `yaml:"scrape_configs"`
}

func TestAlertRules(t *testing.T) {
	var rf ruleFile
	decodeYAMLFile(t, repoPath("deploy", "prometheus", "alerts.yml"), &rf)
	var pc promConfig
	decodeYAMLFile(t, repoPath("deploy", "prometheus", "prometheus.yml"), &pc)
	for _, f := range pc.RuleFiles {
		if _, err := os.Stat(repoPath("deploy", "prometheus", f)); err != nil {
			t.Errorf("prometheus.yml rule_files: %v", err)
		}
	}
	jobs := map[string]bool{}
	targetLabels := map[string]bool{"instance": true, "job": true}
	for _, sc := range pc.ScrapeConfigs {
		jobs[sc.JobName] = true
		for _, rc := range sc.RelabelConfigs {
			if rc.TargetLabel != "" && !strings.HasPrefix(rc.TargetLabel, "__") {
				targetLabels[rc.TargetLabel] = true
			}
		}
	}

	names := map[string]bool{}
	jobRE := regexp.MustCompile(`job="([^"]+)"`)
	labelRE := regexp.MustCompile(`\$labels\.([a-z_]+)`)
	byRE := regexp.MustCompile(`(?:by|on)\s*\(([^)]*)\)`)
	count := 0
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("rule group %q is unnamed or empty", g.Name)
		}
		for _, r := range g.Rules {
			count++
			where := "alert " + r.Alert
			if r.Alert == "" || names[r.Alert] {
				t.Errorf("alert name %q is empty or repeated", r.Alert)
			}
			names[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: no expr", where)
			}
			checkBalanced(t, where, r.Expr)
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", where, r.For, err)
				}
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q, want critical, warning or info", where, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs summary and description annotations", where)
			}
			for _, m := range jobRE.FindAllStringSubmatch(r.Expr, -1) {
				if !jobs[m[1]] {
					t.Errorf("%s: job %q is not a scrape job of prometheus.yml", where, m[1])
				}
			}
			// A label an annotation prints must survive the expression's aggregation.
			kept := map[string]bool{}
			aggregated := false
			for _, m := range byRE.FindAllStringSubmatch(r.Expr, -1) {
				aggregated = true
				for l := range strings.SplitSeq(m[1], ",") {
					kept[strings.TrimSpace(l)] = true
				}
			}
			for _, text := range r.Annotations {
				for _, m := range labelRE.FindAllStringSubmatch(text, -1) {
					switch {
					case aggregated && !kept[m[1]]:
						t.Errorf("%s: annotations print $labels.%s, which the expression aggregates away", where, m[1])
					case !aggregated && strings.Contains(r.Expr, "up{") && !targetLabels[m[1]]:
						t.Errorf("%s: annotations print $labels.%s, which prometheus.yml never sets", where, m[1])
					}
				}
			}
		}
	}
	for _, want := range []string{
		"QuireDeadLettersGrowing", "QuireHighQueueLagging", "QuireBulkQueueLagging",
		"QuireQueueHasNoConsumers", "QuireJobFailureRatioHigh", "QuireWorkerDown",
	} {
		if !names[want] {
			t.Errorf("missing alert %s", want)
		}
	}
	t.Logf("%d alert rules checked", count)
}

// checkBalanced reports unbalanced (), [] or {} in a PromQL expression, outside string literals.
func checkBalanced(t *testing.T, where, expr string) {
	t.Helper()
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inString := false
	for _, r := range expr {
		switch {
		case r == '"':
			inString = !inString
		case inString:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				t.Errorf("%s: unbalanced %q in %s", where, r, expr)
				return
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 || inString {
		t.Errorf("%s: unclosed brackets or string in %s", where, expr)
	}
}

func TestEveryDeployFileParses(t *testing.T) {
	n := 0
	for _, f := range deployFiles(t, ".yaml", ".yml") {
		yamlDocs(t, f)
		n++
	}
	yamlDocs(t, repoPath("docker-compose.yml"))
	for _, f := range deployFiles(t, ".json") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(data) {
			t.Errorf("%s is not valid JSON", f)
		}
		n++
	}
	if n < 10 {
		t.Errorf("only %d YAML/JSON files under deploy/: %v", n, filepath.Join(repoRoot, "deploy"))
	}
}
