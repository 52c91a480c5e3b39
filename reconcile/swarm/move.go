package swarm

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/volumemove"
)

// Moving a volume between nodes. PanelX talks to one manager's engine and
// cannot reach another node's volumes, so the copy runs on the nodes: a
// source task on the data's node serves the volume (read-only) as a tar
// stream, a target task on the new node mounts the volume there — Docker
// creates it, with the volume's labels — and fetches the stream over a
// private overlay network made for the move, checks its digest and says
// what it wrote on its log, which PanelX reads through the manager. Both
// tasks run the panelx binary of Options.HelperImage (`panelx volume-move`,
// package volumemove). The copy on the old node stays as it was.

var _ reconcile.VolumeMover = (*Runtime)(nil)

// Labels of a move's objects: not the owner labels, so that no listing of
// workloads or project networks ever counts them.
const (
	labelMoveInstance = "dev.panelx.move.instance"
	labelMoveVolume   = "dev.panelx.move.volume"
)

// Bounds of a move.
const (
	moveMemory = 256 << 20
	// moveStartTimeout: a helper task not running by then will not (an
	// image no node can pull, a node without room).
	moveStartTimeout = 5 * time.Minute
	moveMaxLog       = 1 << 20
)

func (r *Runtime) MoveVolume(ctx context.Context, m reconcile.VolumeMove) (res reconcile.VolumeMoveResult, err error) {
	if r.opts.HelperImage == "" {
		return res, reconcile.ErrNoMoveImage
	}
	if m.From == m.To {
		return res, fmt.Errorf("volume %s is already on node %s", m.Volume, m.To)
	}
	dockerName := reconcile.VolumeName(m.Project, m.Volume)
	if err := r.checkMoveNodes(ctx, m); err != nil {
		return res, err
	}
	if err := r.checkSource(ctx, m.From, dockerName); err != nil {
		return res, err
	}
	users, err := r.VolumeTasks(ctx, dockerName)
	if err != nil {
		return res, err
	}
	if len(users) > 0 {
		return res, fmt.Errorf("volume %s is still mounted by %s", m.Volume, strings.Join(users, ", "))
	}
	labels := map[string]string{labelMoveInstance: r.instance, labelMoveVolume: m.Project + "/" + m.Volume}
	// Leftovers of an interrupted move of this volume go first.
	if err := r.removeMoveObjects(ctx, labels); err != nil {
		return res, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		// Left behind, they are removed by the volume's next move.
		if cerr := r.removeMoveObjects(cctx, labels); cerr != nil && err == nil {
			err = cerr
		}
	}()
	token, err := randomHex(32)
	if err != nil {
		return res, err
	}
	// A new name each time: Swarm lists a removed overlay a few seconds
	// more, and a network of the same name cannot be created meanwhile.
	suffix, err := randomHex(6)
	if err != nil {
		return res, err
	}
	base := "panelx-move-" + suffix
	var netID string
	err = r.call(ctx, "network_create", func(ctx context.Context) error {
		resp, err := r.cli.NetworkCreate(ctx, base, network.CreateOptions{Driver: "overlay", Labels: labels})
		netID = resp.ID
		return err
	})
	if err != nil {
		return res, fmt.Errorf("create the move's network %s: %w", base, err)
	}
	env := []string{volumemove.EnvToken + "=" + token}
	src := moveService(base+"-src", m.From, r.opts.HelperImage, netID, labels, env,
		mount.Mount{Type: mount.TypeVolume, Source: dockerName, Target: volumemove.MountPath, ReadOnly: true,
			VolumeOptions: &mount.VolumeOptions{NoCopy: true}}, "serve")
	// The target's mount creates the volume on its node, as PanelX would.
	created := &mount.VolumeOptions{NoCopy: true, Labels: m.Spec.Labels}
	if m.Spec.Driver != "" {
		created.DriverConfig = &mount.Driver{Name: m.Spec.Driver, Options: m.Spec.DriverOpts}
	}
	dst := moveService(base+"-dst", m.To, r.opts.HelperImage, netID, labels,
		append(env, fmt.Sprintf("%s=tasks.%s:%d", volumemove.EnvSource, src.Name, volumemove.Port)),
		mount.Mount{Type: mount.TypeVolume, Source: dockerName, Target: volumemove.MountPath, VolumeOptions: created}, "fetch")
	auth, err := encodeAuth(m.Auth)
	if err != nil {
		return res, err
	}
	ids := make([]string, 2)
	for i, spec := range []swarm.ServiceSpec{src, dst} {
		err := r.call(ctx, "service_create", func(ctx context.Context) error {
			resp, err := r.cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{EncodedRegistryAuth: auth})
			ids[i] = resp.ID
			return err
		})
		if err != nil {
			return res, fmt.Errorf("create the move's service %s: %w", spec.Name, err)
		}
	}
	dstID := ids[1]
	end, err := r.waitMoveTask(ctx, m, ids[0], dstID)
	if err != nil {
		return res, err
	}
	out, logErr := end.out, error(nil)
	if out == nil {
		out, logErr = r.moveLog(ctx, dstID)
	}
	result, perr := volumemove.ParseResult(out)
	if end.task.State != swarm.TaskStateComplete {
		msg := cmp.Or(result.Error, end.task.Err, end.task.Message, string(end.task.State))
		switch {
		case result.Error != "":
		case logErr != nil:
			msg += " (its log: " + logErr.Error() + ")"
		default:
			msg += ": " + logTail(out)
		}
		return res, fmt.Errorf("copy on node %s: %s", m.To, msg)
	}
	if perr != nil {
		return res, fmt.Errorf("copy on node %s ended without a result: %w", m.To, errors.Join(perr, logErr))
	}
	return reconcile.VolumeMoveResult{Files: result.Files, Bytes: result.Bytes, SHA256: result.SHA256}, nil
}

// moveService is a one-shot helper task on node: no restart (a failure is
// the move's), root (to read and to own every file of the volume) with
// only the capabilities file ownership needs, bounded memory.
func moveService(name, node, image, netID string, labels map[string]string, env []string, m mount.Mount, cmd string) swarm.ServiceSpec {
	one := uint64(1)
	mem := int64(moveMemory)
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: image, Args: []string{volumemove.Command, cmd}, Env: env, User: "0:0", Labels: labels,
				Mounts:         []mount.Mount{m},
				CapabilityDrop: []string{"ALL"},
				CapabilityAdd:  []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID"},
			},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone},
			Placement:     &swarm.Placement{Constraints: []string{hostnameConstraint + node}},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: netID}},
			Resources:     &swarm.ResourceRequirements{Limits: &swarm.Limit{MemoryBytes: mem}},
			LogDriver:     &swarm.Driver{Name: "json-file", Options: map[string]string{"max-size": "1m", "max-file": "1"}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
}

// randomHex is n random bytes in hex: the move's token, and its objects'
// names (never a part of the token: names are listed to anyone).
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("volume move: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// checkMoveNodes: both nodes are in the swarm and ready.
func (r *Runtime) checkMoveNodes(ctx context.Context, m reconcile.VolumeMove) error {
	var list []swarm.Node
	err := r.call(ctx, "node_list", func(ctx context.Context) (err error) {
		list, err = r.cli.NodeList(ctx, swarm.NodeListOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	for _, name := range []string{m.From, m.To} {
		i := slices.IndexFunc(list, func(n swarm.Node) bool { return n.Description.Hostname == name })
		switch {
		case i < 0:
			return fmt.Errorf("no node %q in the swarm", name)
		case list[i].Status.State != swarm.NodeStateReady:
			return fmt.Errorf("node %s is %s", name, list[i].Status.State)
		case list[i].Spec.Availability != swarm.NodeAvailabilityActive:
			return fmt.Errorf("node %s is %s: it runs no new task", name, list[i].Spec.Availability)
		}
	}
	return nil
}

// checkSource: a mount creates a missing volume, empty, so on the node
// PanelX talks to the volume must exist before the source mounts it (on
// another node, the record that PanelX created or moved it there is all
// there is).
func (r *Runtime) checkSource(ctx context.Context, from, dockerName string) error {
	here, err := r.managerName(ctx)
	if err != nil || here != from {
		return err
	}
	_, err = r.Runtime.InspectVolume(ctx, dockerName)
	if errors.Is(err, reconcile.ErrNotFound) {
		return fmt.Errorf("volume %s does not exist on node %s: nothing to move", dockerName, from)
	}
	return err
}

// MoveImage is the helper image moves run (its registry's credentials
// pull it).
func (r *Runtime) MoveImage() string { return r.opts.HelperImage }

// VolumeTasks names the tasks, on any node, that mount the Docker volume
// and have not ended.
func (r *Runtime) VolumeTasks(ctx context.Context, dockerName string) ([]string, error) {
	var tasks []swarm.Task
	err := r.call(ctx, "task_list", func(ctx context.Context) (err error) {
		tasks, err = r.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("desired-state", "running"))})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	var out []string
	for _, t := range tasks {
		cs := t.Spec.ContainerSpec
		if cs == nil || !slices.Contains(activeStates, t.Status.State) {
			continue
		}
		if slices.ContainsFunc(cs.Mounts, func(m mount.Mount) bool { return m.Type == mount.TypeVolume && m.Source == dockerName }) {
			out = append(out, fmt.Sprintf("task %s.%d", t.ServiceID, t.Slot))
		}
	}
	slices.Sort(out)
	return out, nil
}

// moveEnd is how the target task ended, and the result's log when it was
// read.
type moveEnd struct {
	task swarm.TaskStatus
	out  []byte
}

// waitMoveTask waits until the target task ends, and fails early when
// either task cannot start. The source ends only once the target said
// "ok" (its data in place and synced), so from then on the result line is
// read from the logs without waiting for the target's node to report the
// task complete (a worker took ~3 s more).
func (r *Runtime) waitMoveTask(ctx context.Context, m reconcile.VolumeMove, srcID, dstID string) (moveEnd, error) {
	started := time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		var tasks []swarm.Task
		err := r.call(ctx, "task_list", func(ctx context.Context) (err error) {
			tasks, err = r.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", dstID), filters.Arg("service", srcID))})
			return err
		})
		if err != nil {
			return moveEnd{}, fmt.Errorf("list the move's tasks: %w", err)
		}
		nodes, err := r.nodes(ctx)
		if err != nil {
			return moveEnd{}, err
		}
		// A task does not end, nor start, while its node is away.
		for _, name := range []string{m.From, m.To} {
			if state := nodeState(nodes, name); state != swarm.NodeStateReady {
				return moveEnd{}, fmt.Errorf("node %s went %s during the move", name, state)
			}
		}
		running, served := 0, false
		for _, t := range tasks {
			ended := t.Status.State == swarm.TaskStateComplete || t.Status.State == swarm.TaskStateFailed ||
				t.Status.State == swarm.TaskStateRejected || t.Status.State == swarm.TaskStateShutdown || t.Status.State == swarm.TaskStateOrphaned
			switch {
			case t.ServiceID == dstID && ended:
				return moveEnd{task: t.Status}, nil
			case ended && t.Status.State != swarm.TaskStateComplete:
				return moveEnd{}, fmt.Errorf("the move's source task on its node ended %s: %s", t.Status.State, cmp.Or(t.Status.Err, t.Status.Message))
			case ended:
				served = true
			case t.Status.State == swarm.TaskStateRunning:
				running++
			}
		}
		if served {
			// The source's result is the target's: the source ends 0 only
			// after the target's "ok", sent once the counts and digest
			// matched. Whichever task's log comes first: a task on
			// another node than the manager's takes ~2.5 s to read.
			for _, id := range []string{srcID, dstID} {
				out, err := r.moveLog(ctx, id)
				if res, perr := volumemove.ParseResult(out); err == nil && perr == nil && res.Error == "" {
					return moveEnd{task: swarm.TaskStatus{State: swarm.TaskStateComplete}, out: out}, nil
				}
			}
		}
		if running < 2 && !served && time.Since(started) > moveStartTimeout {
			return moveEnd{}, fmt.Errorf("the move's tasks did not start within %v (can every node pull %s?)", moveStartTimeout, r.opts.HelperImage)
		}
		select {
		case <-ctx.Done():
			return moveEnd{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// nodeState is the state of the node of that hostname ("removed": none).
func nodeState(nodes map[string]node, hostname string) swarm.NodeState {
	for _, n := range nodes {
		if n.name == hostname {
			return n.state
		}
	}
	return nodeRemoved
}

// moveLog is what the target task wrote (stdout and stderr), through the
// manager.
func (r *Runtime) moveLog(ctx context.Context, serviceID string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rc, err := r.cli.ServiceLogs(ctx, serviceID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return nil, fmt.Errorf("read the move's log: %w", err)
	}
	defer rc.Close()
	var out bytes.Buffer
	w := &limitedWriter{w: &out, n: moveMaxLog}
	if _, err := stdcopy.StdCopy(w, w, rc); err != nil && !errors.Is(err, io.EOF) {
		return out.Bytes(), fmt.Errorf("read the move's log: %w", err)
	}
	return out.Bytes(), nil
}

// logTail is the end of a helper's log, for an error message.
func logTail(out []byte) string {
	s := strings.TrimSpace(string(out))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	if s == "" {
		return "(no output)"
	}
	return s
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > l.n {
		p = p[:l.n]
	}
	l.n -= len(p)
	if _, err := l.w.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

// removeMoveObjects removes the services of a volume's moves, then their
// networks (which Swarm frees a few seconds after the last task on them
// ended).
func (r *Runtime) removeMoveObjects(ctx context.Context, labels map[string]string) error {
	f := filters.NewArgs()
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	var svcs []swarm.Service
	err := r.call(ctx, "service_list", func(ctx context.Context) (err error) {
		svcs, err = r.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
		return err
	})
	if err != nil {
		return fmt.Errorf("list the services of volume moves: %w", err)
	}
	for _, s := range svcs {
		err := r.call(ctx, "service_remove", func(ctx context.Context) error { return r.cli.ServiceRemove(ctx, s.ID) })
		if err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove the move's service %s: %w", s.Spec.Name, err)
		}
	}
	var nets []network.Summary
	err = r.call(ctx, "network_list", func(ctx context.Context) (err error) {
		nets, err = r.cli.NetworkList(ctx, network.ListOptions{Filters: f})
		return err
	})
	if err != nil {
		return fmt.Errorf("list the networks of volume moves: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for _, n := range nets {
		for {
			err := r.call(ctx, "network_remove", func(ctx context.Context) error { return r.cli.NetworkRemove(ctx, n.ID) })
			// A removed overlay is listed a few seconds more, and removing
			// it again fails with an untyped "not found".
			if err == nil || errdefs.IsNotFound(err) || strings.Contains(err.Error(), "not found") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("remove the move's network %s: %w", n.Name, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}
