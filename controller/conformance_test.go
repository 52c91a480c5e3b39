package controller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/panelx/panelx/controller/conformance"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
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
		Outside: dockerOutside{t: e.t, cli: e.docker},
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

// dockerOutside is a person at the Docker CLI.
type dockerOutside struct {
	t   testing.TB
	cli *client.Client
}

func (d dockerOutside) RemoveContainer(ctx context.Context, id string) error {
	return d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
}

func (d dockerOutside) StopContainer(ctx context.Context, id string) error {
	timeout := 5
	return d.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout})
}

// RemoveNetwork: Docker refuses while containers are attached, so they are
// disconnected first, as someone cleaning up by hand would.
func (d dockerOutside) RemoveNetwork(ctx context.Context, name string) error {
	n, err := d.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if err != nil {
		return err
	}
	for id := range n.Containers {
		if err := d.cli.NetworkDisconnect(ctx, n.ID, id, true); err != nil {
			return fmt.Errorf("disconnect %s: %w", id, err)
		}
	}
	return d.cli.NetworkRemove(ctx, n.ID)
}

func (d dockerOutside) RunContainer(ctx context.Context, name, ref string, labels map[string]string, start bool) (string, error) {
	rc, err := d.cli.ImagePull(ctx, ref, imagePullOptions())
	if err != nil {
		return "", err
	}
	drain(rc)
	resp, err := d.cli.ContainerCreate(ctx, &container.Config{Image: ref, Cmd: []string{"-sleep"}, Labels: labels}, nil, nil, nil, name)
	if err != nil {
		return "", err
	}
	d.t.Cleanup(func() {
		_ = d.cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
	})
	if start {
		return resp.ID, d.cli.ContainerStart(ctx, resp.ID, container.StartOptions{})
	}
	return resp.ID, nil
}

func (d dockerOutside) Squat(ctx context.Context, project, service, image string) (func(context.Context) error, error) {
	id, err := d.RunContainer(ctx, reconcile.ContainerName(project, service, 0), image, nil, false)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		_, _, err := d.Container(ctx, id)
		return err
	}, nil
}

func (d dockerOutside) Container(ctx context.Context, id string) (string, bool, error) {
	c, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return "", false, err
	}
	if c.State == nil {
		return "", false, errors.New("no state")
	}
	return strings.TrimPrefix(c.Name, "/"), c.State.Running, nil
}

func imagePullOptions() image.PullOptions { return image.PullOptions{} }

func drain(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
}
