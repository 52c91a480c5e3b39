package main

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/internal/operations"
	"github.com/panelx/panelx/operate"
)

// helperSweepAge: helper containers older than this are leftovers of a
// process that died mid-operation (no operation takes longer than 10 min).
const helperSweepAge = 15 * time.Minute

// lazyOperations is the API's Operations, set once Docker is connected;
// until then (or on a server without the Docker side) the logs, terminal
// and files routes answer 503.
type lazyOperations struct {
	p atomic.Pointer[operations.Docker]
}

var (
	_ apiserver.Operations       = (*lazyOperations)(nil)
	_ apiserver.VolumeOperations = (*lazyOperations)(nil)
)

var errNoDocker = apiserver.OpError(apiserver.ErrOpUnavailable,
	errors.New("this server is not connected to Docker (yet): logs, terminals and files are unavailable"))

func (l *lazyOperations) get() (*operations.Docker, error) {
	if d := l.p.Load(); d != nil {
		return d, nil
	}
	return nil, errNoDocker
}

func (l *lazyOperations) Logs(ctx context.Context, req apiserver.LogsRequest) (<-chan apiserver.LogLine, error) {
	d, err := l.get()
	if err != nil {
		return nil, err
	}
	return d.Logs(ctx, req)
}

func (l *lazyOperations) Exec(ctx context.Context, req apiserver.ExecRequest) (apiserver.ExecSession, error) {
	d, err := l.get()
	if err != nil {
		return nil, err
	}
	return d.Exec(ctx, req)
}

func (l *lazyOperations) Files(ctx context.Context, project, volume string) (apiserver.VolumeFiles, error) {
	d, err := l.get()
	if err != nil {
		return nil, err
	}
	return d.Files(ctx, project, volume)
}

func (l *lazyOperations) DockerVolumes(ctx context.Context) ([]apiserver.DockerVolume, error) {
	d, err := l.get()
	if err != nil {
		return nil, err
	}
	return d.DockerVolumes(ctx)
}

func (l *lazyOperations) RemoveDockerVolume(ctx context.Context, name string) error {
	d, err := l.get()
	if err != nil {
		return err
	}
	return d.RemoveDockerVolume(ctx, name)
}

// CheckPath needs no Docker.
func (l *lazyOperations) CheckPath(p string) error { return operations.CheckPath(p) }

// startOperations sweeps helper containers left by a crashed process and
// returns the Docker side of the operate routes, with this very binary as
// the volume helper when it is a static build. With the Swarm runtime
// (runtimeKind "swarm"), logs and terminals go through the service's tasks.
func startOperations(ctx context.Context, cli operate.Docker, instance, runtimeKind string, log *zap.Logger) *operations.Docker {
	if n, err := operate.RemoveHelpers(ctx, cli, instance, helperSweepAge); err != nil {
		log.Warn("removing leftover volume helper containers", zap.Error(err))
	} else if n > 0 {
		log.Info("removed leftover volume helper containers", zap.Int("count", n))
	}
	helper, err := os.Executable()
	if err == nil {
		err = operations.CheckHelperBinary(helper)
	}
	if err != nil {
		log.Warn("volume file writes, renames and deletes are disabled: no static panelx binary to run as helper", zap.Error(err))
		helper = ""
	}
	return operations.New(cli, operations.Options{Instance: instance, HelperBinary: helper, Swarm: runtimeKind == "swarm"})
}
