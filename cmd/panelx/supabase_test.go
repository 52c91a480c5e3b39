package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/panelx/panelx/internal/testenv"
)

// TestMigrateSupabaseRefusesOtherDatabases: the Supabase profile is
// applied only where it makes sense, and says why not elsewhere.
func TestMigrateSupabaseRefusesOtherDatabases(t *testing.T) {
	bin := buildPanelx(t)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "PANELX_DATABASE_URL=", "PANELX_SUPABASE=")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("panelx %s succeeded:\n%s", strings.Join(args, " "), out)
		}
		return string(out)
	}
	if out := run("migrate", "--supabase", "--database-url", testenv.NewDatabase(t)); !strings.Contains(out, "not a Supabase database") {
		t.Errorf("on a plain PostgreSQL:\n%s", out)
	}
	if out := run("migrate", "--supabase", "--data-dir", t.TempDir()); !strings.Contains(out, "needs PostgreSQL") {
		t.Errorf("on the embedded store:\n%s", out)
	}
}
