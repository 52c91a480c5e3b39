// Package dockerclient connects to the Docker Engine the way every part of
// PanelX does.
package dockerclient

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/client"
)

// New connects to DOCKER_HOST (default: the local socket) and negotiates
// the API version up front: the client would otherwise do it lazily on
// its first request, and concurrent first requests race.
func New(ctx context.Context) (*client.Client, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker engine at %s: %w", cli.DaemonHost(), err)
	}
	cli.NegotiateAPIVersion(ctx)
	return cli, nil
}
