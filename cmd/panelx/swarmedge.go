package main

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	swarmruntime "github.com/panelx/panelx/reconcile/swarm"
)

// swarmEdgeConfig: on Swarm the replicas' addresses are on the projects'
// overlays, which the host cannot reach, so the edge runs as a container
// on the manager's engine and PanelX attaches it to every overlay
// (reconcile/swarm/edge.go; docs/architecture.md, "Runtimes").
type swarmEdgeConfig struct {
	container string
}

func (c *swarmEdgeConfig) register(env *envFlags) {
	env.String(&c.container, "swarm-edge-container", "PANELX_SWARM_EDGE_CONTAINER", "",
		"with --runtime swarm: the container running `panelx edge` on the manager's engine (on a bridge network, publishing 80 and 443), which PanelX attaches to every project's overlay so that it reaches the replicas on any node")
}

// options fills in the runtime's options.
func (c swarmEdgeConfig) options(o *swarmruntime.Options) { o.EdgeContainer = c.container }

// keep attaches the edge container to the overlays until ctx ends: at
// once, whenever the container (re)starts or a network is created, and
// every 30 s.
func (c swarmEdgeConfig) keep(ctx context.Context, rt *swarmruntime.Runtime, log *zap.Logger) {
	if c.container == "" {
		log.Warn("no edge on the swarm's overlays: services with domains are not routable (set PANELX_SWARM_EDGE_CONTAINER to the container running `panelx edge` on this manager)")
		return
	}
	log = log.With(zap.String("edge_container", c.container))
	go rt.KeepEdgeAttached(ctx, swarmruntime.DefaultEdgeSweep, func(network string, err error) {
		if err != nil {
			log.Warn("the edge is not attached to every project network; retrying when the container starts, and every 30s", zap.Error(err))
			return
		}
		log.Info("attached the edge to a project network", zap.String("network", network))
	})
}

// check refuses the setting where it does nothing.
func (c swarmEdgeConfig) check(kind string) error {
	if c.container != "" && kind != "swarm" {
		return fmt.Errorf("PANELX_SWARM_EDGE_CONTAINER is for --runtime swarm (the runtime is %q): on one engine the edge reaches the replicas from the host", kind)
	}
	return nil
}
