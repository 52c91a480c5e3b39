package main

import (
	"github.com/docker/docker/client"

	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/reconcile"
	dockerruntime "github.com/panelx/panelx/reconcile/docker"
)

// newRuntime is the runtime the controller drives: the single Docker
// Engine, its calls timed into the controller's metrics.
func newRuntime(cli *client.Client, instance string, m *controller.Metrics) reconcile.Runtime {
	rt := dockerruntime.NewRuntime(cli, instance)
	rt.Observe = m.ObserveDockerCall
	return rt
}
