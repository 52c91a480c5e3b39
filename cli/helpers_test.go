package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// runCLI runs a client command against server, as the binary would, and
// returns what it printed (stdout and stderr).
func runCLI(t *testing.T, server, stdin string, args ...string) (string, error) {
	t.Helper()
	t.Setenv("PANELX_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	t.Setenv("PANELX_SERVER", "")
	t.Setenv("PANELX_TOKEN", "")
	root := &cobra.Command{Use: "panelx", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(Commands("panelx test")...)
	secrets := &cobra.Command{Use: "secrets"}
	secrets.AddCommand(SecretsRotateKeyCmd())
	root.AddCommand(secrets)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append(args, "--server", server, "--token", "test-token"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
