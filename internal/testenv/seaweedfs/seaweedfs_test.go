package seaweedfs

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinary: the weed binary builds (once per machine; .ci/run starts
// this test first, beside the installs, so later tests find it built) and
// runs.
func TestBinary(t *testing.T) {
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(strings.ToLower(string(out)), "version") {
		t.Fatalf("weed version: %v\n%s", err, out)
	}
}
