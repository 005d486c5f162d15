package deploycheck_test

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/job"
)

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type probe struct {
	HTTPGet *struct {
		Path string      `yaml:"path"`
		Port intOrString `yaml:"port"`
	} `yaml:"httpGet"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom any    `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	StartupProbe   *probe `yaml:"startupProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
			Exec *struct {
				Command []string `yaml:"command"`
			} `yaml:"exec"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

// port resolves a probe or Service port (number or name) against the container's ports.
func (c container) port(p intOrString) (int, bool) {
	for _, cp := range c.Ports {
		if string(p) == cp.Name || string(p) == strconv.Itoa(cp.ContainerPort) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// env returns the container's explicit env merged over its envFrom ConfigMaps and Secrets.
func (c container) env(t *testing.T, r *rendered, where string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, ok := r.ConfigMaps[ef.ConfigMapRef.Name]
			if !ok {
				t.Errorf("%s: envFrom ConfigMap %q is not generated", where, ef.ConfigMapRef.Name)
			}
			maps.Copy(out, cm)
		case ef.SecretRef != nil:
			s, ok := r.Secrets[ef.SecretRef.Name]
			if !ok {
				t.Errorf("%s: envFrom Secret %q is not generated", where, ef.SecretRef.Name)
			}
			maps.Copy(out, s)
		}
	}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}

type podTemplate struct {
	Metadata struct {
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               *struct {
			RunAsNonRoot bool `yaml:"runAsNonRoot"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
		Volumes    []struct {
			Name      string `yaml:"name"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
			EmptyDir any `yaml:"emptyDir"`
		} `yaml:"volumes"`
	} `yaml:"spec"`
}

type workload struct {
	Spec struct {
		Replicas             *int          `yaml:"replicas"`
		ServiceName          string        `yaml:"serviceName"`
		Selector             labelSelector `yaml:"selector"`
		Template             podTemplate   `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				Resources struct {
					Requests map[string]string `yaml:"requests"`
				} `yaml:"resources"`
			} `yaml:"spec"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

type service struct {
	Spec struct {
		ClusterIP string            `yaml:"clusterIP"`
		Selector  map[string]string `yaml:"selector"`
		Ports     []servicePort     `yaml:"ports"`
	} `yaml:"spec"`
}

type servicePort struct {
	Name       string      `yaml:"name"`
	Port       int         `yaml:"port"`
	TargetPort intOrString `yaml:"targetPort"`
}

func (s service) hasPort(n int) bool {
	return slices.ContainsFunc(s.Spec.Ports, func(p servicePort) bool { return p.Port == n })
}

type pdb struct {
	Spec struct {
		MinAvailable   *intOrString  `yaml:"minAvailable"`
		MaxUnavailable *intOrString  `yaml:"maxUnavailable"`
		Selector       labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type scaledObject struct {
	Spec struct {
		ScaleTargetRef struct {
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicaCount *int `yaml:"minReplicaCount"`
		MaxReplicaCount *int `yaml:"maxReplicaCount"`
		Triggers        []struct {
			Type     string            `yaml:"type"`
			Metadata map[string]string `yaml:"metadata"`
		} `yaml:"triggers"`
	} `yaml:"spec"`
}

// cluster is the rendered cluster overlay with its objects decoded by kind.
type cluster struct {
	*rendered
	deployments   map[string]workload
	statefulSets  map[string]workload
	services      map[string]service
	pdbs          map[string]pdb
	scaledObjects map[string]scaledObject
}

func loadCluster(t *testing.T, dir string) cluster {
	t.Helper()
	r := render(t, repoPath(dir))
	return cluster{
		rendered:      r,
		deployments:   decode[workload](t, r, "Deployment"),
		statefulSets:  decode[workload](t, r, "StatefulSet"),
		services:      decode[service](t, r, "Service"),
		pdbs:          decode[pdb](t, r, "PodDisruptionBudget"),
		scaledObjects: decode[scaledObject](t, r, "ScaledObject"),
	}
}

// workloads returns Deployments and StatefulSets by "Kind/name".
func (c cluster) workloads() map[string]workload {
	out := map[string]workload{}
	for n, w := range c.deployments {
		out["Deployment/"+n] = w
	}
	for n, w := range c.statefulSets {
		out["StatefulSet/"+n] = w
	}
	return out
}

// selected returns the workloads whose pod template labels match sel.
func (c cluster) selected(sel map[string]string) []string {
	var out []string
	for name, w := range c.workloads() {
		if len(sel) > 0 && matches(sel, w.Spec.Template.Metadata.Labels) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func matches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// quireDeployments are the Deployments running Quire binaries, with their image.
var quireDeployments = map[string]string{
	"quire-api":   "quire/api-service",
	"worker-high": "quire/worker-service",
	"worker-bulk": "quire/worker-service",
}

var overlays = []string{"deploy/kubernetes/base", "deploy/kubernetes/overlays/cluster"}

func TestDeploymentsAreProductionReady(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			c := loadCluster(t, dir)
			if got, want := slices.Sorted(maps.Keys(c.deployments)), slices.Sorted(maps.Keys(quireDeployments)); !slices.Equal(got, want) {
				t.Fatalf("Deployments = %v, want %v", got, want)
			}
			for name, w := range c.deployments {
				checkQuireDeployment(t, c, name, w)
			}
		})
	}
}

func checkQuireDeployment(t *testing.T, c cluster, name string, w workload) {
	t.Helper()
	spec := w.Spec.Template.Spec
	if !matches(w.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels) || len(w.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("%s: selector %v does not match its pod labels %v", name, w.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels)
	}
	if w.Spec.Template.Metadata.Labels["app.kubernetes.io/part-of"] != "quire" {
		t.Errorf("%s: pod template lacks app.kubernetes.io/part-of=quire, which Prometheus keeps pods by", name)
	}
	if spec.SecurityContext == nil || !spec.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: pods must set securityContext.runAsNonRoot", name)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", name, len(spec.Containers))
	}
	ct := spec.Containers[0]
	where := name + "/" + ct.Name
	if ct.Image != quireDeployments[name] {
		t.Errorf("%s: image %q, want %q", where, ct.Image, quireDeployments[name])
	}
	if _, ok := c.Images[ct.Image]; !ok {
		t.Errorf("%s: image %q has no kustomize images: entry to pin its tag", where, ct.Image)
	}

	// Probes: /healthz for liveness, /readyz for readiness, on a declared port.
	for _, p := range []struct {
		kind, path string
		probe      *probe
	}{{"livenessProbe", "/healthz", ct.LivenessProbe}, {"readinessProbe", "/readyz", ct.ReadinessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no httpGet %s", where, p.kind)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s: %s path %q, want %q", where, p.kind, p.probe.HTTPGet.Path, p.path)
		}
		if _, ok := ct.port(p.probe.HTTPGet.Port); !ok {
			t.Errorf("%s: %s port %q is not a container port", where, p.kind, p.probe.HTTPGet.Port)
		}
	}

	for _, res := range []string{"cpu", "memory"} {
		if ct.Resources.Requests[res] == "" {
			t.Errorf("%s: no %s request", where, res)
		}
		if ct.Resources.Limits[res] == "" {
			t.Errorf("%s: no %s limit", where, res)
		}
	}

	env := ct.env(t, c.rendered, where)
	for k := range env {
		if !designEnv[k] {
			t.Errorf("%s: sets %s, which is not a variable of DESIGN §8", where, k)
		}
	}

	// The pod is given longer to stop than the process takes: preStop pause + SHUTDOWN_TIMEOUT.
	shutdown := parseDuration(t, where+" SHUTDOWN_TIMEOUT", env["SHUTDOWN_TIMEOUT"])
	var preStop time.Duration
	if ct.Lifecycle != nil && ct.Lifecycle.PreStop != nil && ct.Lifecycle.PreStop.Sleep != nil {
		preStop = time.Duration(ct.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if spec.TerminationGracePeriodSeconds == nil {
		t.Errorf("%s: no terminationGracePeriodSeconds (the default 30s does not exceed SHUTDOWN_TIMEOUT %v)", name, shutdown)
	} else if grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second; grace <= preStop+shutdown {
		t.Errorf("%s: terminationGracePeriodSeconds %v must exceed preStop %v + SHUTDOWN_TIMEOUT %v", name, grace, preStop, shutdown)
	}

	// The address variable's port is a container port, and Prometheus scrapes it.
	addrVar := "METRICS_ADDR"
	if ct.Image == "quire/api-service" {
		addrVar = "HTTP_ADDR"
	}
	_, port := hostPort(t, where+" "+addrVar, env[addrVar])
	if _, ok := ct.port(intOrString(strconv.Itoa(port))); !ok {
		t.Errorf("%s: %s port %d is not a container port", where, addrVar, port)
	}
	if ann := w.Spec.Template.Metadata.Annotations; ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(port) || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: prometheus.io annotations %v do not point at /metrics on port %d", name, ann, port)
	}

	// NATS_URL names a Service that exposes the client port, when the NATS cluster is part of
	// the rendering.
	host, natsPort := hostPort(t, where+" NATS_URL", env["NATS_URL"])
	if len(c.statefulSets) > 0 {
		if svc, ok := c.services[host]; !ok || !svc.hasPort(natsPort) {
			t.Errorf("%s: NATS_URL %q names no Service with port %d", where, env["NATS_URL"], natsPort)
		}
	}

	if !slices.ContainsFunc(slices.Collect(maps.Values(c.pdbs)), func(p pdb) bool {
		return matches(p.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels)
	}) {
		t.Errorf("%s: no PodDisruptionBudget selects its pods", name)
	}
}

func TestWorkerPoolsAndAutoscaling(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			c := loadCluster(t, dir)
			pools := map[string][]job.Priority{}
			for name, w := range c.deployments {
				ct := w.Spec.Template.Spec.Containers[0]
				if ct.Image != "quire/worker-service" {
					continue
				}
				env := ct.env(t, c.rendered, name)
				pools[name] = parseQueues(t, name, env["WORKER_QUEUES"])
				for _, p := range pools[name] {
					if n, err := strconv.Atoi(env[concurrencyVar(p)]); err != nil || n < 1 {
						t.Errorf("%s serves %s: %s=%q, want a positive number", name, p, concurrencyVar(p), env[concurrencyVar(p)])
					}
				}
			}
			if got := pools["worker-high"]; !slices.Equal(got, []job.Priority{job.PriorityHigh}) {
				t.Errorf("worker-high serves %v, want [high]", got)
			}
			if got := pools["worker-bulk"]; !slices.Equal(got, []job.Priority{job.PriorityMedium, job.PriorityLow}) {
				t.Errorf("worker-bulk serves %v, want [medium low]", got)
			}
			checkPoolsCoverPriorities(t, dir, pools)

			// One ScaledObject per pool, with one nats-jetstream trigger per queue it serves, on
			// that queue's stream and the `workers` consumer.
			scaled := map[string]bool{}
			for soName, so := range c.scaledObjects {
				target := so.Spec.ScaleTargetRef.Name
				ps, ok := pools[target]
				if !ok {
					t.Errorf("ScaledObject %s targets %q, which is not a worker Deployment", soName, target)
					continue
				}
				if scaled[target] {
					t.Errorf("Deployment %s has two ScaledObjects", target)
				}
				scaled[target] = true
				if so.Spec.MinReplicaCount == nil || so.Spec.MaxReplicaCount == nil || *so.Spec.MinReplicaCount > *so.Spec.MaxReplicaCount {
					t.Errorf("ScaledObject %s: want minReplicaCount <= maxReplicaCount, both set", soName)
				}
				var streams []string
				for i, tr := range so.Spec.Triggers {
					where := fmt.Sprintf("ScaledObject %s trigger %d", soName, i)
					if tr.Type != "nats-jetstream" {
						t.Errorf("%s: type %q, want nats-jetstream", where, tr.Type)
						continue
					}
					streams = append(streams, tr.Metadata["stream"])
					if tr.Metadata["consumer"] != job.ConsumerName {
						t.Errorf("%s: consumer %q, want %q", where, tr.Metadata["consumer"], job.ConsumerName)
					}
					if n, err := strconv.Atoi(tr.Metadata["lagThreshold"]); err != nil || n < 1 {
						t.Errorf("%s: lagThreshold %q, want a positive integer", where, tr.Metadata["lagThreshold"])
					}
					if tr.Metadata["account"] == "" {
						t.Errorf("%s: no account (\"$G\" without accounts)", where)
					}
					checkMonitoringEndpoint(t, c, where, tr.Metadata["natsServerMonitoringEndpoint"])
				}
				var want []string
				for _, p := range ps {
					want = append(want, p.Stream())
				}
				slices.Sort(streams)
				slices.Sort(want)
				if !slices.Equal(streams, want) {
					t.Errorf("ScaledObject %s scales %s on streams %v, want those of its queues %v", soName, target, streams, want)
				}
			}
			for pool := range pools {
				if !scaled[pool] {
					t.Errorf("worker pool %s has no ScaledObject", pool)
				}
			}
		})
	}
}

// checkMonitoringEndpoint checks a KEDA natsServerMonitoringEndpoint: host:port with no
// scheme, the host being <service>.<namespace>.svc.cluster.local (KEDA runs in its own
// namespace). When the NATS StatefulSet is part of the rendering, the service must be its
// headless governing Service (KEDA queries <server_name>.<host> to reach a consumer's leader)
// and expose the port.
func checkMonitoringEndpoint(t *testing.T, c cluster, where, endpoint string) {
	t.Helper()
	if strings.Contains(endpoint, "://") {
		t.Errorf("%s: natsServerMonitoringEndpoint %q must be host:port without a scheme", where, endpoint)
		return
	}
	host, port := hostPort(t, where, endpoint)
	svcName, rest, _ := strings.Cut(host, ".")
	if want := c.Namespace + ".svc.cluster.local"; rest != want {
		t.Errorf("%s: natsServerMonitoringEndpoint host %q, want <service>.%s", where, host, want)
	}
	if len(c.statefulSets) == 0 {
		return
	}
	sts, ok := c.statefulSets["nats"]
	if !ok {
		t.Errorf("%s: no StatefulSet nats", where)
		return
	}
	if svcName != sts.Spec.ServiceName {
		t.Errorf("%s: endpoint service %q, want the StatefulSet's headless Service %q", where, svcName, sts.Spec.ServiceName)
	}
	svc, ok := c.services[svcName]
	if !ok {
		t.Errorf("%s: Service %q does not exist", where, svcName)
		return
	}
	if !svc.hasPort(port) {
		t.Errorf("%s: Service %s has no port %d", where, svcName, port)
	}
}

func TestServicesAndBudgetsSelectPods(t *testing.T) {
	c := loadCluster(t, "deploy/kubernetes/overlays/cluster")
	for name, svc := range c.services {
		sel := c.selected(svc.Spec.Selector)
		if len(sel) != 1 {
			t.Errorf("Service %s selects %v, want exactly one workload", name, sel)
			continue
		}
		ct := c.workloads()[sel[0]].Spec.Template.Spec.Containers[0]
		for _, p := range svc.Spec.Ports {
			if _, ok := ct.port(p.TargetPort); !ok {
				t.Errorf("Service %s port %s: targetPort %q is not a port of %s", name, p.Name, p.TargetPort, sel[0])
			}
		}
	}
	for name, p := range c.pdbs {
		if sel := c.selected(p.Spec.Selector.MatchLabels); len(sel) != 1 {
			t.Errorf("PodDisruptionBudget %s selects %v, want exactly one workload", name, sel)
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			t.Errorf("PodDisruptionBudget %s: set exactly one of minAvailable and maxUnavailable", name)
		}
	}
	if _, ok := c.services["quire-api"]; !ok {
		t.Error("no Service quire-api in front of the API")
	}
}

func TestStreamReplicas(t *testing.T) {
	base := render(t, repoPath("deploy/kubernetes/base"))
	if got := base.ConfigMaps["quire-config"]["STREAM_REPLICAS"]; got != "1" {
		t.Errorf("base STREAM_REPLICAS = %q, want 1 (a single NATS server)", got)
	}
	c := loadCluster(t, "deploy/kubernetes/overlays/cluster")
	sts, ok := c.statefulSets["nats"]
	if !ok {
		t.Fatal("the cluster overlay has no StatefulSet nats")
	}
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
		t.Errorf("StatefulSet nats replicas = %v, want 3", sts.Spec.Replicas)
	}
	if got := c.ConfigMaps["quire-config"]["STREAM_REPLICAS"]; got != strconv.Itoa(*sts.Spec.Replicas) {
		t.Errorf("cluster STREAM_REPLICAS = %q, want the NATS replica count %d", got, *sts.Spec.Replicas)
	}
}
