package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

// Docker returns a client of the Docker Engine at DOCKER_HOST (default: the
// local socket), with API version negotiation, so Engine 20.10 (API 1.41)
// and current engines both work. A missing engine fails the test in CI.
func Docker(tb testing.TB) *client.Client {
	tb.Helper()
	holdEngineShared() // no swarm init or leave while this process runs
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		Missing(tb, "Docker client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		Missing(tb, "Docker Engine not reachable: %v", err)
	}
	// Negotiate now: the client negotiates lazily on its first request,
	// and concurrent first requests race on the version it stores.
	cli.NegotiateAPIVersion(ctx)
	tb.Cleanup(func() { cli.Close() })
	return cli
}

// RemoveLabelled force-removes the containers, networks and volumes that
// carry label ("key=value"): what a test created, even when it failed.
func RemoveLabelled(cli *client.Client, label string) {
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", label))
	cs, _ := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	for _, c := range cs {
		_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	}
	ns, _ := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	for _, n := range ns {
		_ = cli.NetworkRemove(ctx, n.ID)
	}
	vs, _ := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	for _, v := range vs.Volumes {
		_ = cli.VolumeRemove(ctx, v.Name, true)
	}
}
