// Package dockerside is the conformance suite's person at the Docker CLI
// of a local engine (conformance.Outside): what the one-engine runtime's
// tests and the Swarm runtime's share. It lives apart from the suite,
// which runs on the in-memory runtime too and holds no Docker.
package dockerside

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

	"github.com/panelx/panelx/reconcile"
)

// Outside does by hand, on the engine, what the suite asks of it.
type Outside struct {
	T   testing.TB
	Cli *client.Client
}

// RemoveContainer is docker rm -f.
func (d Outside) RemoveContainer(ctx context.Context, id string) error {
	return d.Cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
}

// StopContainer is docker stop.
func (d Outside) StopContainer(ctx context.Context, id string) error {
	timeout := 5
	return d.Cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout})
}

// RemoveNetwork: Docker refuses while containers are attached, so they are
// disconnected first, as someone cleaning up by hand would.
func (d Outside) RemoveNetwork(ctx context.Context, name string) error {
	n, err := d.Cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if err != nil {
		return err
	}
	for id := range n.Containers {
		if err := d.Cli.NetworkDisconnect(ctx, n.ID, id, true); err != nil {
			return fmt.Errorf("disconnect %s: %w", id, err)
		}
	}
	return d.Cli.NetworkRemove(ctx, n.ID)
}

// RunContainer pulls ref and creates (and with start, starts) a container
// of it, removed when the test ends.
func (d Outside) RunContainer(ctx context.Context, name, ref string, labels map[string]string, start bool) (string, error) {
	rc, err := d.Cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
	resp, err := d.Cli.ContainerCreate(ctx, &container.Config{Image: ref, Cmd: []string{"-sleep"}, Labels: labels}, nil, nil, nil, name)
	if err != nil {
		return "", err
	}
	d.T.Cleanup(func() {
		_ = d.Cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
	})
	if start {
		return resp.ID, d.Cli.ContainerStart(ctx, resp.ID, container.StartOptions{})
	}
	return resp.ID, nil
}

// Squat makes a container of no installation under the name of the
// service's first replica.
func (d Outside) Squat(ctx context.Context, project, service, image string) (func(context.Context) error, error) {
	id, err := d.RunContainer(ctx, reconcile.ContainerName(project, service, 0), image, nil, false)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		_, _, err := d.Container(ctx, id)
		return err
	}, nil
}

// Container says what a container is now.
func (d Outside) Container(ctx context.Context, id string) (string, bool, error) {
	c, err := d.Cli.ContainerInspect(ctx, id)
	if err != nil {
		return "", false, err
	}
	if c.State == nil {
		return "", false, errors.New("no state")
	}
	return strings.TrimPrefix(c.Name, "/"), c.State.Running, nil
}
