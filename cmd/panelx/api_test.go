package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/panelx/panelx/internal/testenv"
)

func getWith(t *testing.T, url, token string) (int, string) {
	t.Helper()
	rq, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		rq.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestBootstrapToken: without Supabase settings the server starts and
// accepts only API tokens; `panelx token create` makes the first one.
func TestBootstrapToken(t *testing.T) {
	dbURL := testenv.NewDatabase(t)
	bin := buildPanelx(t)
	if out, err := exec.Command(bin, "migrate", "--database-url", dbURL).CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	create := exec.Command(bin, "token", "create", "--user", "root-user", "--name", "first", "--database-url", dbURL)
	var stderr strings.Builder
	create.Stderr = &stderr
	out, err := create.Output()
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, stderr.String())
	}
	token := strings.TrimSpace(string(out))
	if !strings.HasPrefix(token, "pnx_") || strings.Contains(stderr.String(), token) {
		t.Fatalf("stdout %q, stderr %q: want the token on stdout only", out, stderr.String())
	}
	if out, err := exec.Command(bin, "token", "create", "--database-url", dbURL).CombinedOutput(); err == nil {
		t.Errorf("token create without --user succeeded: %s", out)
	}

	cmd, base, logs := startServer(t, bin, "PANELX_DATABASE_URL="+dbURL, "PANELX_CONTROLLER=false",
		"PANELX_JWT_SECRET=", "PANELX_JWKS_URL=", "PANELX_ADMIN_USERS=root-user")
	if code, body := getWith(t, base+"/api/v1/projects", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", code, body)
	}
	if code, body := getWith(t, base+"/api/v1/me", token); code != http.StatusOK || !strings.Contains(body, `"admin":true`) {
		t.Errorf("me with the bootstrap token: %d %s", code, body)
	}
	if code, _ := getWith(t, base+"/api/v1/openapi.json", ""); code != http.StatusOK {
		t.Errorf("openapi.json: %d", code)
	}
	if !strings.Contains(logs.String(), "panelx token create") {
		t.Errorf("the server does not say how to get a token:\n%s", logs)
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the logs carry the token")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}

func TestAPIConfigurationErrors(t *testing.T) {
	bin := buildPanelx(t)
	const secret = "short-secret-x"
	tests := []struct {
		env  []string
		want string
	}{
		{[]string{"PANELX_JWT_SECRET=" + secret}, "at least 32"},
		{[]string{"PANELX_JWKS_URL=http://example.com/jwks.json"}, "PANELX_JWKS_URL: plain http"},
		{[]string{"PANELX_ALLOWED_HOST_PORTS=80-abc"}, "PANELX_ALLOWED_HOST_PORTS"},
		{[]string{"PANELX_MAX_BODY_BYTES=-1"}, "PANELX_MAX_BODY_BYTES"},
		{[]string{"PANELX_ALLOW_DOCKER_SOCKET=maybe"}, "PANELX_ALLOW_DOCKER_SOCKET"},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, "server")
		cmd.Env = append(os.Environ(), append([]string{"PANELX_DATABASE_URL=postgres://x@127.0.0.1:1/x"}, tt.env...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("%v: err %v, output %q, want it to mention %q", tt.env, err, out, tt.want)
		}
		if strings.Contains(string(out), secret) {
			t.Errorf("%v: output leaks the secret", tt.env)
		}
	}
	help := exec.Command(bin, "server", "--help")
	help.Env = append(os.Environ(), "PANELX_JWT_SECRET=a-secret-that-must-never-be-printed-anywhere")
	out, _ := help.CombinedOutput()
	if strings.Contains(string(out), "never-be-printed") || !strings.Contains(string(out), "PANELX_JWT_SECRET") {
		t.Errorf("--help: %s", out)
	}
}
