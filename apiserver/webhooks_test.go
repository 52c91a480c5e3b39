package apiserver_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/panelx/panelx/api"
)

// TestWebhook: a forge's push notification builds a service only when it
// verifies (GitHub and Gitea signatures, GitLab's token) and is a push to
// the tracked branch; a repeated delivery builds once; anything that does
// not verify — a forged signature, a service without a webhook, one that
// does not exist — is the same 401 and stamps nothing.
func TestWebhook(t *testing.T) {
	e := newEnv(t)
	alice := e.jwtFor("alice")
	e.project(t, alice, "shop")
	e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/shop/secrets", token: alice,
		body: map[string]any{"metadata": map[string]any{"name": "hook"}, "spec": map[string]any{"data": map[string]any{"secret": "s3cr3t"}}}})
	build := map[string]any{"git": map[string]any{"url": "https://git.example.test/shop.git", "ref": "main"}, "webhook": map[string]any{"secretRef": "hook"}}
	e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/shop/services", token: alice,
		body: map[string]any{"metadata": map[string]any{"name": "web"}, "spec": map[string]any{"build": build}}})
	e.service(t, alice, "shop", "plain") // an image, no webhook

	push := func(ref string) []byte {
		data, _ := json.Marshal(map[string]any{"ref": ref, "after": strings.Repeat("ab", 20), "repository": map[string]any{"default_branch": "main"}})
		return data
	}
	sign := func(secret string, body []byte) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		return hex.EncodeToString(m.Sum(nil))
	}
	annotation := func() string {
		var svc api.Service
		if err := json.Unmarshal(e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/services/web", token: alice}).Body, &svc); err != nil {
			t.Fatal(err)
		}
		return svc.Metadata.Annotations[api.AnnotationBuildRequest]
	}
	hook := "/api/v1/hooks/projects/shop/services/web"
	body := push("refs/heads/main")
	tests := []struct {
		name   string
		path   string
		body   []byte
		header map[string]string
		status int
		build  bool
	}{
		{"github push", hook, body, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": "sha256=" + sign("s3cr3t", body)}, 200, true},
		{"the same delivery again", hook, body, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": "sha256=" + sign("s3cr3t", body)}, 200, false},
		{"forged signature", hook, body, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-2", "X-Hub-Signature-256": "sha256=" + sign("guess", body)}, 401, false},
		{"no signature", hook, body, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-3"}, 401, false},
		{"other branch", hook, push("refs/heads/dev"), map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-4", "X-Hub-Signature-256": "sha256=" + sign("s3cr3t", push("refs/heads/dev"))}, 200, false},
		{"not a push", hook, body, map[string]string{"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-5", "X-Hub-Signature-256": "sha256=" + sign("s3cr3t", body)}, 200, false},
		{"gitea push", hook, body, map[string]string{"X-Gitea-Event": "push", "X-Gitea-Delivery": "g-1", "X-Gitea-Signature": sign("s3cr3t", body)}, 200, true},
		{"gitlab push", hook, body, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "l-1", "X-Gitlab-Token": "s3cr3t"}, 200, true},
		{"gitlab wrong token", hook, body, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "l-2", "X-Gitlab-Token": "s3cr3"}, 401, false},
		{"a service without a webhook", "/api/v1/hooks/projects/shop/services/plain", body, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-6", "X-Hub-Signature-256": "sha256=" + sign("s3cr3t", body)}, 401, false},
		{"no such service", "/api/v1/hooks/projects/nope/services/web", body, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-7", "X-Hub-Signature-256": "sha256=" + sign("s3cr3t", body)}, 401, false},
		{"not a forge", hook, body, nil, 400, false},
	}
	for _, tt := range tests {
		before := annotation()
		r := e.do(t, req{method: "POST", path: tt.path, body: tt.body, header: tt.header})
		if r.Status != tt.status {
			t.Errorf("%s: %d, want %d\n%s", tt.name, r.Status, tt.status, r.Body)
			continue
		}
		after := annotation()
		if stamped := after != before; stamped != tt.build {
			t.Errorf("%s: build requested %v, want %v (%q → %q)", tt.name, stamped, tt.build, before, after)
		}
		if detail, _ := r.JSON(t)["detail"].(string); tt.status == 401 && detail != "the notification's signature or token does not verify" {
			t.Errorf("%s: the refusal says more than that it does not verify: %s", tt.name, r.Body)
		}
	}
}
