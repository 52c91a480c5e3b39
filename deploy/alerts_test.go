package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panelx/panelx/internal/testenv"
)

// TestAlertRules runs the rules' unit tests (alerts_test.yml) with
// promtool, and checks that every metric the rules use is one PanelX
// exports (named in the Go source of controller/).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool (Debian's prometheus package) is not installed")
	}
	if out, err := exec.Command(promtool, "test", "rules", "alerts_test.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	rules, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("..", "controller", "backupmetrics.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range metricRe.FindAllStringSubmatch(string(rules), -1) {
		if !strings.Contains(string(src), `"`+m[1]+`"`) {
			t.Errorf("alerts.yml uses %s, which controller/backupmetrics.go does not export", m[1])
		}
	}
}
