package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/panelx/panelx/reconcile"
)

// Container events worth a look; exec_* (every healthcheck run), attach,
// resize and the like are left out.
var containerActions = []string{"create", "start", "restart", "die", "stop", "kill", "oom", "destroy", "pause", "unpause", "rename", "update", "health_status"}

// Network and volume events: created, destroyed, (dis)connected.
var objectActions = []string{"create", "destroy", "connect", "disconnect"}

// Image events that can change which image a reference names.
var imageActions = []string{"pull", "tag", "untag", "delete", "import", "load"}

// Events follows one stream. A filter's keys are ANDed and its values
// ORed, and network, volume and image events carry no labels: so the
// stream asks for the union of the actions of these types, and toEvent
// keeps this installation's containers (by label) and its networks and
// volumes (by name). One connection, not one per type: the engine keeps a
// goroutine and a buffer for each subscriber.
func (d *Runtime) Events(ctx context.Context) (<-chan reconcile.RuntimeEvent, <-chan error) {
	out := make(chan reconcile.RuntimeEvent, 256)
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	f := filters.NewArgs()
	for _, t := range []reconcile.ObjectType{reconcile.ObjectContainer, reconcile.ObjectNetwork, reconcile.ObjectVolume, reconcile.ObjectImage} {
		f.Add("type", string(t))
	}
	seen := map[string]bool{}
	for _, a := range slices.Concat(containerActions, objectActions, imageActions) {
		if !seen[a] {
			seen[a] = true
			f.Add("event", a)
		}
	}
	msgs, errs := d.cli.Events(ctx, events.ListOptions{Filters: f})
	go func() {
		defer cancel()
		defer close(out)
		for {
			var m events.Message
			select {
			case m = <-msgs:
			case err := <-errs:
				errc <- fmt.Errorf("docker events: %w", err)
				return
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
			ev, ok := d.toEvent(m)
			if !ok {
				continue
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
		}
	}()
	return out, errc
}

func (d *Runtime) toEvent(m events.Message) (reconcile.RuntimeEvent, bool) {
	ev := reconcile.RuntimeEvent{
		Type:   reconcile.ObjectType(m.Type),
		Action: string(m.Action),
		ID:     m.Actor.ID,
		Name:   m.Actor.Attributes["name"],
		Time:   time.Unix(0, m.TimeNano),
	}
	switch ev.Type {
	case reconcile.ObjectContainer:
		if m.Actor.Attributes[reconcile.LabelInstance] != d.instance {
			return ev, false // another installation's, or no PanelX's
		}
		ev.Project, ev.Service = m.Actor.Attributes[reconcile.LabelProject], m.Actor.Attributes[reconcile.LabelService]
	case reconcile.ObjectVolume:
		ev.Name = m.Actor.ID
		if !strings.HasPrefix(ev.Name, reconcile.NamePrefix) {
			return ev, false
		}
	case reconcile.ObjectNetwork:
		if ev.Name != "" && !strings.HasPrefix(ev.Name, reconcile.NamePrefix) {
			return ev, false
		}
		ev.Container = m.Actor.Attributes["container"]
	case reconcile.ObjectImage:
	default:
		return ev, false
	}
	return ev, true
}

// ExecProbe runs cmd (no shell) in a container, discards its output (at
// most 64 KiB is read), and returns its exit code: an exec readiness probe.
func (d *Runtime) ExecProbe(ctx context.Context, id string, cmd []string) (int, error) {
	exec, err := d.cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return -1, fmt.Errorf("create exec in %.12s: %w", id, err)
	}
	att, err := d.cli.ContainerExecAttach(ctx, exec.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, fmt.Errorf("attach exec in %.12s: %w", id, err)
	}
	defer att.Close()
	stop := context.AfterFunc(ctx, att.Close) // a timeout ends the read
	defer stop()
	_, _ = io.Copy(io.Discard, io.LimitReader(att.Reader, 64<<10))
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	insp, err := d.cli.ContainerExecInspect(ctx, exec.ID)
	if err != nil {
		return -1, fmt.Errorf("inspect exec in %.12s: %w", id, err)
	}
	if insp.Running {
		return -1, errors.New("still running after its output ended")
	}
	return insp.ExitCode, nil
}

// EventOf maps one of the Engine's event messages as Events does; ok is
// false for what this installation does not follow.
func (d *Runtime) EventOf(m events.Message) (reconcile.RuntimeEvent, bool) { return d.toEvent(m) }
