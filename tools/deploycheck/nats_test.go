package deploycheck_test

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestNATSClusterConfig reads deploy/nats/nats.conf with nats-server's own parser, as each pod
// of the StatefulSet would (POD_NAME set by the downward API), and checks it against the
// StatefulSet and its Services: one route per replica through the headless Service, the ports
// the containers and Services declare, and storage on the mounted volume.
func TestNATSClusterConfig(t *testing.T) {
	c := loadCluster(t, "deploy/nats")
	sts, ok := c.statefulSets["nats"]
	if !ok {
		t.Fatal("deploy/nats has no StatefulSet nats")
	}
	if sts.Spec.Replicas == nil {
		t.Fatal("StatefulSet nats: replicas not set")
	}
	replicas := *sts.Spec.Replicas
	ct := sts.Spec.Template.Spec.Containers[0]
	headless, ok := c.services[sts.Spec.ServiceName]
	if !ok || headless.Spec.ClusterIP != "None" {
		t.Fatalf("StatefulSet nats: serviceName %q is not a headless Service", sts.Spec.ServiceName)
	}

	// The config file comes from the generated ConfigMap, mounted where the command reads it.
	confPath := ""
	if i := slices.Index(ct.Command, "--config"); i >= 0 && i+1 < len(ct.Command) {
		confPath = ct.Command[i+1]
	}
	mounts := map[string]string{}
	for _, m := range ct.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	var configVolume string
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			if _, ok := c.ConfigMaps[v.ConfigMap.Name]; !ok {
				t.Errorf("volume %s: ConfigMap %q is not generated", v.Name, v.ConfigMap.Name)
			}
			if _, ok := c.ConfigMaps[v.ConfigMap.Name][path.Base(confPath)]; ok && mounts[v.Name] == path.Dir(confPath) {
				configVolume = v.Name
			}
		}
	}
	if configVolume == "" {
		t.Fatalf("the server reads %q, which no mounted ConfigMap key provides", confPath)
	}

	port := func(name string) int {
		p, ok := ct.port(intOrString(name))
		if !ok {
			t.Fatalf("StatefulSet nats: no container port %q", name)
		}
		return p
	}
	for i := range replicas {
		pod := fmt.Sprintf("nats-%d", i)
		t.Run(pod, func(t *testing.T) {
			t.Setenv("POD_NAME", pod)
			opts, err := server.ProcessConfigFile(repoPath("deploy", "nats", "nats.conf"))
			if err != nil {
				t.Fatalf("nats-server rejects deploy/nats/nats.conf: %v", err)
			}
			if opts.ServerName != pod {
				t.Errorf("server_name = %q, want the pod name %q (KEDA finds consumer leaders by it)", opts.ServerName, pod)
			}
			if !opts.JetStream {
				t.Error("JetStream is not enabled")
			}
			if opts.Port != port("client") || opts.HTTPPort != port("monitor") || opts.Cluster.Port != port("cluster") {
				t.Errorf("ports client %d monitor %d cluster %d do not match the container ports", opts.Port, opts.HTTPPort, opts.Cluster.Port)
			}
			if opts.Cluster.Name == "" {
				t.Error("cluster has no name")
			}
			var routes []string
			for _, r := range opts.Routes {
				if r.Port() != strconv.Itoa(port("cluster")) {
					t.Errorf("route %s: port %s, want the cluster port %d", r, r.Port(), port("cluster"))
				}
				routes = append(routes, r.Hostname())
			}
			var want []string
			for j := range replicas {
				want = append(want, fmt.Sprintf("nats-%d.%s", j, sts.Spec.ServiceName))
			}
			if !slices.Equal(routes, want) {
				t.Errorf("routes %v, want one per replica through the headless Service %v", routes, want)
			}
			if !strings.HasPrefix(opts.StoreDir, mounts["data"]+"/") {
				t.Errorf("JetStream store_dir %q is not on the data volume (mounted at %q)", opts.StoreDir, mounts["data"])
			}
			if opts.PidFile != "" && !slices.Contains(slices.Collect(maps.Values(mounts)), path.Dir(opts.PidFile)) {
				t.Errorf("pid_file %q is not on a mounted volume (the root filesystem is read-only)", opts.PidFile)
			}
			for _, vct := range sts.Spec.VolumeClaimTemplates {
				if vct.Metadata.Name != "data" {
					continue
				}
				size := quantity(t, "volume data storage request", vct.Spec.Resources.Requests["storage"])
				if opts.JetStreamMaxStore <= 0 || opts.JetStreamMaxStore >= size {
					t.Errorf("max_file_store %d must be set and below the volume size %d", opts.JetStreamMaxStore, size)
				}
			}
		})
	}
	for _, name := range []string{"client", "cluster", "monitor"} {
		if !headless.hasPort(port(name)) {
			t.Errorf("headless Service %s lacks the %s port %d", sts.Spec.ServiceName, name, port(name))
		}
	}
}

// quantity parses a Kubernetes quantity with a binary (Ki, Mi, Gi, Ti) or decimal (k, M, G, T)
// suffix into bytes.
func quantity(t *testing.T, where, q string) int64 {
	t.Helper()
	mult := int64(1)
	for _, s := range []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}} {
		if strings.HasSuffix(q, s.suffix) {
			q, mult = strings.TrimSuffix(q, s.suffix), s.mult
			break
		}
	}
	n, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		t.Fatalf("%s: quantity %q: %v", where, q, err)
	}
	return n * mult
}
