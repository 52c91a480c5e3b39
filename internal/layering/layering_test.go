// Package layering holds the test that keeps the dependency rules of
// docs/architecture.md true: each package may depend (directly or not)
// only on the layers below it.
package layering

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/panelx/panelx/"

// rules: a package (by prefix of its path under the module) and what it
// must never depend on, directly or through others. "docker" stands for
// the Docker Engine client.
var rules = []struct {
	pkg    string
	never  []string
	reason string
}{
	{"api", []string{"store", "apiserver", "apply", "reconcile", "controller", "edge", "operate", "client", "cli", "naming", "docker"},
		"api/ is the model everything imports, like k8s.io/api: it imports no other layer"},
	{"naming", []string{"api", "store", "reconcile", "docker"}, "names and labels import nothing"},
	{"store", []string{"apiserver", "apply", "reconcile", "controller", "edge", "operate", "client", "cli", "docker"},
		"the store knows the model only"},
	{"reconcile", []string{"store", "apiserver", "controller", "edge", "client", "cli"}, "the planner and runtimes see model types, not the store or the API"},
	{"controller", []string{"apiserver", "edge", "client", "cli", "operate"}, "the controller drives the runtime from the store; it serves no HTTP"},
	{"apiserver", []string{"reconcile", "controller", "operate", "edge", "client", "cli", "docker"},
		"the HTTP layer never touches Docker (logs, exec, files go through the Operations interface)"},
	{"apply", []string{"apiserver", "reconcile", "controller", "docker"}, "apply is store logic"},
	{"edge", []string{"store", "apiserver", "reconcile", "controller", "operate", "docker"},
		"the data plane follows the API; it never opens the control plane's store or Docker"},
	{"client", []string{"store", "apiserver", "apply", "reconcile", "controller", "edge", "docker"},
		"the client speaks the wire types of api only"},
	{"cli", []string{"store", "apiserver", "apply", "reconcile", "controller", "edge", "docker"}, "the CLI is a client of the API"},
	{"operate", []string{"reconcile", "controller", "store", "apiserver"}, "logs, exec and files need names, not the reconciler"},
	{"metrics/containers", []string{"reconcile", "controller", "store", "apiserver"}, "the collector needs names, not the reconciler"},
	{"compose", []string{"store", "apiserver", "reconcile", "controller", "docker"}, "Compose import is pure conversion"},
	{"seal", []string{"store", "apiserver", "apply", "reconcile", "controller", "edge", "client", "cli", "docker"},
		"sealing is pure cryptography over the model's types"},
	{"reseal", []string{"apiserver", "reconcile", "controller", "edge", "client", "cli", "docker"}, "re-sealing is store logic"},
	{"backup", []string{"store", "apiserver", "apply", "reconcile", "controller", "edge", "operate", "client", "cli", "docker"},
		"the backup engine streams archives between a Source, a Target and a Sink: no Docker, no store"},
}

// engineNeutral: the planner, cache, executor and status of reconcile
// never import the Engine's SDK; only the runtime packages under it do.
var engineNeutral = struct {
	pkg    string
	except []string
	reason string
}{"reconcile", []string{"reconcile/docker", "reconcile/swarm"},
	"the planner, cache, executor and status are engine-neutral: only the runtime packages speak Docker"}

func TestDependencyRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}} {{join .Deps " "}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			deps[f[0]] = f[1:]
		}
	}
	if len(deps) < 20 {
		t.Fatalf("only %d packages listed", len(deps))
	}
	layer := func(path string) (string, bool) {
		if strings.HasPrefix(path, "github.com/docker/docker/") {
			return "docker", true
		}
		rel, ok := strings.CutPrefix(path, module)
		return rel, ok
	}
	within := func(rel, prefix string) bool { return rel == prefix || strings.HasPrefix(rel, prefix+"/") }
	checked := 0
	for pkg, ds := range deps {
		rel, ok := layer(pkg)
		if !ok || rel == "docker" {
			continue
		}
		for _, r := range rules {
			if !within(rel, r.pkg) {
				continue
			}
			checked++
			for _, d := range ds {
				dl, ok := layer(d)
				if !ok {
					continue
				}
				for _, n := range r.never {
					// A rule about "api" is not broken by api/routing,
					// which is api too.
					if within(dl, n) && !within(dl, r.pkg) {
						t.Errorf("%s depends on %s: %s", rel, dl, r.reason)
					}
				}
			}
		}
	}
	neutral := 0
	for pkg, ds := range deps {
		rel, ok := layer(pkg)
		if !ok || !within(rel, engineNeutral.pkg) || slices.ContainsFunc(engineNeutral.except, func(x string) bool { return within(rel, x) }) {
			continue
		}
		neutral++
		for _, d := range ds {
			// The Engine's SDK and its companions (go-connections, go-units).
			if strings.HasPrefix(d, "github.com/docker/") {
				t.Errorf("%s depends on %s: %s", rel, d, engineNeutral.reason)
			}
		}
	}
	if neutral == 0 {
		t.Errorf("no package of %s checked for engine neutrality", engineNeutral.pkg)
	}
	if checked < 15 {
		t.Errorf("only %d packages checked", checked)
	}
	// Nothing imports the commands.
	for pkg, ds := range deps {
		for _, d := range ds {
			if strings.HasPrefix(d, module+"cmd/") && !strings.HasPrefix(pkg, module+"cmd/") {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}
