package deploycheck_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dockerImages are the service images: module directory and the port its address variable
// defaults to (api-service HTTP_ADDR :8080, worker-service METRICS_ADDR :9090).
var dockerImages = map[string]string{
	"api-service":    "8080",
	"worker-service": "9090",
}

func TestDockerfiles(t *testing.T) {
	for module, port := range dockerImages {
		t.Run(module, func(t *testing.T) {
			path := repoPath("deploy", "docker", module+".Dockerfile")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			df := string(data)
			froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
			if len(froms) < 2 {
				t.Fatalf("%s: want a multi-stage build, found %d FROM lines", path, len(froms))
			}
			if !strings.HasPrefix(froms[0][1], "golang:1.26") {
				t.Errorf("%s: builder %s, want golang:1.26", path, froms[0][1])
			}
			switch final := froms[len(froms)-1][1]; {
			case final == "gcr.io/distroless/static-debian12:nonroot", final == "scratch":
			case module == "worker-service" && final == "debian:bookworm-slim":
				// The worker runs Tesseract and pdftoppm for OCR: Debian slim with those only.
				for _, pkg := range []string{"tesseract-ocr", "tesseract-ocr-eng", "poppler-utils", "--no-install-recommends", "rm -rf /var/lib/apt/lists"} {
					if !strings.Contains(df, pkg) {
						t.Errorf("%s: runtime stage on %s: missing %q", path, final, pkg)
					}
				}
			default:
				t.Errorf("%s: runtime image %s, want distroless static nonroot or scratch (or Debian slim with the OCR tools, for the worker)", path, final)
			}
			for _, want := range []string{
				"GOWORK=off", "CGO_ENABLED=0", "-trimpath",
				"COPY shared/", "COPY " + module + "/",
				"./cmd/" + module,
				"EXPOSE " + port,
			} {
				if !strings.Contains(df, want) {
					t.Errorf("%s: missing %q", path, want)
				}
			}
			for other := range dockerImages {
				if other != module && strings.Contains(df, "COPY "+other) {
					t.Errorf("%s copies the other service %s", path, other)
				}
			}
			users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(df, -1)
			if len(users) == 0 || strings.HasPrefix(users[len(users)-1][1], "root") || strings.HasPrefix(users[len(users)-1][1], "0") {
				t.Errorf("%s: the runtime stage must run as a non-root USER, have %v", path, users)
			}
			if _, err := os.Stat(repoPath(module, "go.mod")); err != nil {
				t.Errorf("%s builds module %s: %v", path, module, err)
			}

			ignore, err := os.ReadFile(path + ".dockerignore")
			if err != nil {
				t.Fatalf("%s: the build context is the repository root, so a per-Dockerfile ignore file keeps it small: %v", path, err)
			}
			lines := strings.Split(string(ignore), "\n")
			for _, want := range []string{"*", "!shared/", "!" + module + "/"} {
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.TrimSpace(l) == want }) {
					t.Errorf("%s.dockerignore: missing line %q", path, want)
				}
			}
		})
	}
}
