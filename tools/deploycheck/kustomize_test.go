package deploycheck_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// kustomization is the subset of kustomize's Kustomization these manifests use.
type kustomization struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Namespace  string   `yaml:"namespace"`
	Resources  []string `yaml:"resources"`
	Labels     []struct {
		Pairs            map[string]string `yaml:"pairs"`
		IncludeSelectors bool              `yaml:"includeSelectors"`
		IncludeTemplates bool              `yaml:"includeTemplates"`
	} `yaml:"labels"`
	Images []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
	ConfigMapGenerator []generator `yaml:"configMapGenerator"`
	SecretGenerator    []generator `yaml:"secretGenerator"`
	Patches            []struct {
		Path string `yaml:"path"`
	} `yaml:"patches"`
}

type generator struct {
	Name     string   `yaml:"name"`
	Behavior string   `yaml:"behavior"`
	Literals []string `yaml:"literals"`
	Files    []string `yaml:"files"`
	Envs     []string `yaml:"envs"`
}

// object is one Kubernetes object of a rendered kustomization.
type object struct {
	Kind     string
	Name     string
	Labels   map[string]string
	Node     *yaml.Node
	Resource string // the file it came from
}

// rendered is what `kustomize build` would produce, reduced to what the tests check: objects
// (with the kustomization's labels applied) and generated ConfigMaps and Secrets by name.
type rendered struct {
	Namespace  string
	Objects    []object
	ConfigMaps map[string]map[string]string
	Secrets    map[string]map[string]string
	// Images maps an image name to its kustomize override.
	Images map[string]string
}

// render builds the kustomization in dir the way kustomize does for the features used here:
// resources (files and nested kustomization directories), configMap/secret generators with
// literals and files (behavior create or merge), namespace, labels and images. Every path it
// follows must exist.
func render(t *testing.T, dir string) *rendered {
	t.Helper()
	var k kustomization
	decodeYAMLFile(t, filepath.Join(dir, "kustomization.yaml"), &k)
	if k.Kind != "Kustomization" || k.APIVersion != "kustomize.config.k8s.io/v1beta1" {
		t.Fatalf("%s/kustomization.yaml: kind %q apiVersion %q", dir, k.Kind, k.APIVersion)
	}
	r := &rendered{
		Namespace:  k.Namespace,
		ConfigMaps: map[string]map[string]string{},
		Secrets:    map[string]map[string]string{},
		Images:     map[string]string{},
	}
	for _, res := range k.Resources {
		path := filepath.Join(dir, res)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("%s/kustomization.yaml lists %s: %v", dir, res, err)
		}
		if fi.IsDir() {
			sub := render(t, path)
			r.Objects = append(r.Objects, sub.Objects...)
			maps.Copy(r.ConfigMaps, sub.ConfigMaps)
			maps.Copy(r.Secrets, sub.Secrets)
			maps.Copy(r.Images, sub.Images)
			continue
		}
		for _, doc := range yamlDocs(t, path) {
			var head struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
				Metadata   struct {
					Name   string            `yaml:"name"`
					Labels map[string]string `yaml:"labels"`
				} `yaml:"metadata"`
			}
			if err := doc.Decode(&head); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if head.APIVersion == "" || head.Kind == "" || head.Metadata.Name == "" {
				t.Fatalf("%s: an object without apiVersion, kind or metadata.name", path)
			}
			r.Objects = append(r.Objects, object{Kind: head.Kind, Name: head.Metadata.Name, Labels: head.Metadata.Labels, Node: doc, Resource: path})
		}
	}
	for _, p := range k.Patches {
		if _, err := os.Stat(filepath.Join(dir, p.Path)); err != nil {
			t.Fatalf("%s/kustomization.yaml patch: %v", dir, err)
		}
	}
	generate := func(kind string, gens []generator, into map[string]map[string]string) {
		for _, g := range gens {
			data := map[string]string{}
			for _, l := range g.Literals {
				key, value, ok := strings.Cut(l, "=")
				if !ok {
					t.Fatalf("%s/kustomization.yaml %s %s: literal %q is not KEY=VALUE", dir, kind, g.Name, l)
				}
				data[key] = value
			}
			for _, f := range g.Files {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatalf("%s/kustomization.yaml %s %s: %v", dir, kind, g.Name, err)
				}
				data[filepath.Base(f)] = string(b)
			}
			if len(g.Envs) > 0 {
				t.Fatalf("%s/kustomization.yaml %s %s: envs files are not understood by this check; use literals", dir, kind, g.Name)
			}
			switch g.Behavior {
			case "", "create":
				if _, dup := into[g.Name]; dup {
					t.Fatalf("%s/kustomization.yaml: %s %s created twice", dir, kind, g.Name)
				}
				into[g.Name] = data
			case "merge":
				base, ok := into[g.Name]
				if !ok {
					t.Fatalf("%s/kustomization.yaml: %s %s merges into nothing", dir, kind, g.Name)
				}
				maps.Copy(base, data)
			case "replace":
				if _, ok := into[g.Name]; !ok {
					t.Fatalf("%s/kustomization.yaml: %s %s replaces nothing", dir, kind, g.Name)
				}
				into[g.Name] = data
			default:
				t.Fatalf("%s/kustomization.yaml: %s %s: unknown behavior %q", dir, kind, g.Name, g.Behavior)
			}
		}
	}
	generate("configMapGenerator", k.ConfigMapGenerator, r.ConfigMaps)
	generate("secretGenerator", k.SecretGenerator, r.Secrets)
	for _, l := range k.Labels {
		if l.IncludeSelectors {
			t.Fatalf("%s/kustomization.yaml: labels with includeSelectors change immutable selectors", dir)
		}
		for i := range r.Objects {
			if r.Objects[i].Labels == nil {
				r.Objects[i].Labels = map[string]string{}
			}
			maps.Copy(r.Objects[i].Labels, l.Pairs)
			if l.IncludeTemplates && slices.Contains([]string{"Deployment", "StatefulSet", "DaemonSet"}, r.Objects[i].Kind) {
				if labels := mappingAt(r.Objects[i].Node.Content[0], "spec", "template", "metadata", "labels"); labels != nil {
					for _, k := range slices.Sorted(maps.Keys(l.Pairs)) {
						setKey(labels, k, l.Pairs[k])
					}
				}
			}
		}
	}
	for _, img := range k.Images {
		r.Images[img.Name] = img.NewName + ":" + img.NewTag
	}
	if k.Namespace != "" {
		r.Namespace = k.Namespace
	}
	return r
}

// decode decodes every object of the given kind into a T, by name.
func decode[T any](t *testing.T, r *rendered, kind string) map[string]T {
	t.Helper()
	out := map[string]T{}
	for _, o := range r.Objects {
		if o.Kind != kind {
			continue
		}
		var v T
		if err := o.Node.Decode(&v); err != nil {
			t.Fatalf("%s %s (%s): %v", kind, o.Name, o.Resource, err)
		}
		if _, dup := out[o.Name]; dup {
			t.Fatalf("two %s objects named %s", kind, o.Name)
		}
		out[o.Name] = v
	}
	return out
}

func TestKustomizationsReferenceExistingFiles(t *testing.T) {
	for _, dir := range []string{"deploy/kubernetes/base", "deploy/nats", "deploy/kubernetes/overlays/cluster"} {
		t.Run(dir, func(t *testing.T) {
			r := render(t, repoPath(dir))
			if len(r.Objects) == 0 {
				t.Errorf("%s renders no objects", dir)
			}
			if r.Namespace == "" {
				t.Errorf("%s sets no namespace", dir)
			}
		})
	}
	// Every manifest under deploy/kubernetes and deploy/nats is used by some kustomization, so
	// none is silently left out of a deployment.
	used := map[string]bool{}
	for _, o := range render(t, repoPath("deploy/kubernetes/overlays/cluster")).Objects {
		used[filepath.Clean(o.Resource)] = true
	}
	for _, f := range deployFiles(t, ".yaml", ".yml") {
		if filepath.Base(f) == "kustomization.yaml" || !(strings.Contains(f, "/kubernetes/") || strings.Contains(f, "/nats/")) {
			continue
		}
		if !used[filepath.Clean(f)] {
			t.Errorf("%s is not listed by any kustomization the cluster overlay renders", f)
		}
	}
}

// mappingAt follows keys down from the mapping node n, creating missing mappings below the
// first level; it returns nil when n has no mapping under keys[0].
func mappingAt(n *yaml.Node, keys ...string) *yaml.Node {
	for i, k := range keys {
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == k {
				next = n.Content[j+1]
			}
		}
		if next == nil {
			if i == 0 {
				return nil
			}
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, next)
		}
		if next.Kind != yaml.MappingNode {
			return nil
		}
		n = next
	}
	return n
}

// setKey sets key to a string value in the mapping node n.
func setKey(n *yaml.Node, key, value string) {
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == key {
			n.Content[j+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
			return
		}
	}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
}
