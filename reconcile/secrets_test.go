package reconcile

import (
	"strings"
	"testing"

	"github.com/panelx/panelx/api"
)

// TestSecretFiles: a secret mount becomes a file of the container whose
// hash follows the value's digest — a new value replaces the replicas —
// while neither the hash input nor the labels hold the value; a missing
// secret or key holds the service back.
func TestSecretFiles(t *testing.T) {
	svc := testService(func(s *api.Service) {
		s.Spec.Volumes = []api.VolumeMount{{Secret: &api.SecretKeySelector{Name: "db", Key: "password"}, MountPath: "/run/secrets/db"}}
	})
	secrets := func(value, digest string) Secrets {
		return Secrets{"db": {Version: 1, Values: map[string]string{"password": value}, Digests: map[string]string{"password": digest}}}
	}
	a := BuildContainerSpec(testInstance, svc, 0, "sha256:img1", secrets("hunter2", "d1"))
	if len(a.Files) != 1 || a.Files[0].Path != "/run/secrets/db" || string(a.Files[0].Content) != "hunter2" || len(a.Mounts) != 0 {
		t.Fatalf("files %+v, mounts %+v", a.Files, a.Mounts)
	}
	for k, v := range a.Labels {
		if strings.Contains(v, "hunter2") {
			t.Errorf("label %s holds the value", k)
		}
	}
	if same := BuildContainerSpec(testInstance, svc, 0, "sha256:img1", secrets("hunter2", "d1")); same.Hash() != a.Hash() {
		t.Error("the same secret hashes differently")
	}
	if b := BuildContainerSpec(testInstance, svc, 0, "sha256:img1", secrets("hunter3", "d2")); b.Hash() == a.Hash() {
		t.Error("a new value keeps the hash: the replicas would not roll")
	}
	for name, in := range map[string]Secrets{
		"missing secret": {"db": {Missing: true}},
		"missing key":    {"db": {Version: 1, Values: map[string]string{"user": "u"}}},
	} {
		if reason, msg := SecretProblem(svc, in); reason != ReasonSecretNotFound || !strings.Contains(msg, "volumes[0]") {
			t.Errorf("%s: %q %q", name, reason, msg)
		}
	}
}
