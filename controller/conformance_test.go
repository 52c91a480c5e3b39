package controller_test

import (
	"io"
	"testing"

	"github.com/docker/docker/api/types/image"

	"github.com/panelx/panelx/controller/conformance"
	"github.com/panelx/panelx/controller/conformance/dockerside"
	"github.com/panelx/panelx/internal/testimage"
	dockerruntime "github.com/panelx/panelx/reconcile/docker"
)

// TestConformance runs the runtime conformance suite on the Docker
// Engine, with the PostgreSQL store.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) conformance.Target { return newEnv(t).target() })
}

// TestConformanceOnSQLite runs the suite's lifecycle test on the embedded
// store too.
func TestConformanceOnSQLite(t *testing.T) {
	conformance.RunOnly(t, func(t *testing.T) conformance.Target { return newEnvSQLite(t).target() }, "ServiceLifecycle")
}

// target is the env as the suite's Target: the Docker runtime, real
// processes on host ports.
func (e *env) target() conformance.Target {
	return conformance.Target{
		Instance: e.instance,
		Runtime:  dockerruntime.NewRuntime(e.docker, e.instance),
		Store:    e.store,
		Registry: testRegistry{e.reg},
		PrivateRegistry: func(t testing.TB, username, password string) conformance.Registry {
			return testRegistry{testimage.StartRegistry(t, testimage.RegistryOptions{Username: username, Password: password})}
		},
		Outside: dockerside.Outside{T: e.t, Cli: e.docker},
		HTTP:    true,
		HostIP:  "127.0.0.1",
	}
}

// testRegistry pushes the test image (tests/testapp) to an in-process
// registry.
type testRegistry struct{ *testimage.Registry }

func (r testRegistry) Push(t testing.TB, repoTag, version string) string {
	return r.Registry.Push(t, repoTag, testimage.Image(t, testimage.ImageOptions{Version: version}))
}

func imagePullOptions() image.PullOptions { return image.PullOptions{} }

func drain(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
}
