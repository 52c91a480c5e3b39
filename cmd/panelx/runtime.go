package main

import (
	"context"
	"fmt"

	"github.com/docker/docker/client"
	"go.uber.org/zap"

	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/reconcile"
	dockerruntime "github.com/panelx/panelx/reconcile/docker"
	swarmruntime "github.com/panelx/panelx/reconcile/swarm"
)

// runtimeConfig chooses what runs the services' replicas.
type runtimeConfig struct {
	kind         string
	publishMode  string
	endpointMode string
	helperImage  string
	swarmEdge    swarmEdgeConfig
}

func (c *runtimeConfig) register(env *envFlags) {
	env.String(&c.kind, "runtime", "PANELX_RUNTIME", "docker",
		"what runs the services: docker (one Docker Engine, PanelX starts each container) or swarm (the engine is a Swarm manager; every service becomes a Swarm service; docs/architecture.md, Runtimes)")
	env.String(&c.publishMode, "swarm-publish-mode", "PANELX_SWARM_PUBLISH_MODE", swarmruntime.PublishIngress,
		"with --runtime swarm: how published ports are published, ingress (the routing mesh, every node answers) or host (the node running the task)")
	env.String(&c.endpointMode, "swarm-endpoint-mode", "PANELX_SWARM_ENDPOINT_MODE", swarmruntime.EndpointVIP,
		"with --runtime swarm: what a service's name resolves to on its networks, vip (one virtual IP balanced by the kernel's IPVS) or dnsrr (the replicas' own addresses, as on one engine; for kernels without ip_vs; needs --swarm-publish-mode host)")
	env.String(&c.helperImage, "swarm-helper-image", "PANELX_SWARM_HELPER_IMAGE", "",
		"with --runtime swarm: an image of this panelx that every node can pull (its entrypoint the panelx binary, as the PanelX image's is); moving a volume to another node runs it on both nodes (panelx volume move). Pulled with the project's registry credentials")
	c.swarmEdge.register(env)
}

// newRuntime is the runtime the controller drives, its Docker calls timed
// into the controller's metrics.
func newRuntime(ctx context.Context, c runtimeConfig, cli *client.Client, instance string, m *controller.Metrics, log *zap.Logger) (reconcile.Runtime, error) {
	if err := c.swarmEdge.check(c.kind); err != nil {
		return nil, err
	}
	switch c.kind {
	case "", "docker":
		rt := dockerruntime.NewRuntime(cli, instance)
		rt.Observe = m.ObserveDockerCall
		return rt, nil
	case "swarm":
		opts := swarmruntime.Options{PublishMode: c.publishMode, EndpointMode: c.endpointMode, HelperImage: c.helperImage}
		if err := opts.Validate(); err != nil {
			return nil, err
		}
		c.swarmEdge.options(&opts)
		rt := swarmruntime.New(cli, instance, opts)
		rt.Observe = m.ObserveDockerCall
		if err := rt.Check(ctx); err != nil {
			return nil, err
		}
		c.swarmEdge.keep(ctx, rt, log)
		return rt, nil
	}
	return nil, fmt.Errorf("PANELX_RUNTIME %q: want docker or swarm", c.kind)
}
