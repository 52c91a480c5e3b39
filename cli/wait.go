package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/client"
)

// rollout tracks what --wait waits for: each applied object, Ready at (at
// least) the generation the apply produced.
type rollout struct {
	want    map[string]int64 // object ref → generation
	done    map[string]bool
	last    map[string]string // object ref → last progress line printed
	out     io.Writer
	started time.Time
}

func waitForRollout(ctx context.Context, c *client.Client, results []client.ApplyResult, out io.Writer, timeout time.Duration) error {
	r := &rollout{want: map[string]int64{}, done: map[string]bool{}, last: map[string]string{}, out: out, started: time.Now()}
	for _, res := range results {
		// A secret has no status: nothing of it becomes ready.
		if res.Action == "pruned" || res.Kind == api.KindSecret {
			continue
		}
		r.want[objectRef(string(res.Kind), res.Project, res.Name)] = res.Generation
	}
	if len(r.want) == 0 {
		return nil
	}
	events, errs, err := c.Watch(ctx, client.WatchFilter{})
	if err != nil {
		return err
	}
	for ev := range events {
		if ev.Type != "ADDED" && ev.Type != "MODIFIED" && ev.Type != "DELETED" {
			continue
		}
		obj := ev.Object
		if obj == nil {
			return fmt.Errorf("watch: %s event without an object", ev.Type)
		}
		if err := r.observe(ev.Type, obj); err != nil {
			return err
		}
		if len(r.done) == len(r.want) {
			fmt.Fprintf(out, "all %d object(s) ready after %s\n", len(r.want), time.Since(r.started).Round(100*time.Millisecond))
			return nil
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &ExitError{Code: 1, Err: fmt.Errorf("timed out after %s waiting for: %s", timeout, r.pending())}
	}
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// observe updates the rollout with an object's state; it fails fast on an
// object that is Degraded at the generation being waited for.
func (r *rollout) observe(evType string, obj api.Object) error {
	m := obj.GetMeta()
	ref := objectRef(string(obj.GetKind()), m.Project, m.Name)
	want, ok := r.want[ref]
	if !ok || r.done[ref] {
		return nil
	}
	if evType == "DELETED" {
		return &ExitError{Code: 1, Err: fmt.Errorf("%s was deleted while waiting for it", ref)}
	}
	observed, phase, conds := statusOf(obj)
	ready := api.FindCondition(conds, api.ConditionReady)
	degraded := api.FindCondition(conds, api.ConditionDegraded)
	switch {
	case observed < want:
		r.progress(ref, "waiting for the controller to pick up generation %d", want)
	case degraded != nil && degraded.Status == api.ConditionTrue && degraded.ObservedGeneration >= want:
		fmt.Fprintf(r.out, "%s: Degraded\n", ref)
		return &ExitError{Code: 1, Err: fmt.Errorf("%s is Degraded (%s): %s", ref, degraded.Reason, degraded.Message)}
	case ready != nil && ready.Status == api.ConditionTrue && ready.ObservedGeneration >= want:
		r.done[ref] = true
		fmt.Fprintf(r.out, "%s: ready (%s)\n", ref, ready.Message)
	default:
		msg := string(phase)
		if p := api.FindCondition(conds, api.ConditionProgressing); p != nil && p.Message != "" {
			msg += ": " + p.Message
		} else if ready != nil && ready.Message != "" {
			msg += ": " + ready.Message
		}
		r.progress(ref, "%s", msg)
	}
	return nil
}

// progress prints a line when an object's progress changes: plain lines,
// no cursor tricks, so it reads the same in a terminal and a CI log.
func (r *rollout) progress(ref, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if r.last[ref] == line {
		return
	}
	r.last[ref] = line
	fmt.Fprintf(r.out, "%s: %s\n", ref, line)
}

func (r *rollout) pending() string {
	var refs []string
	for ref := range r.want {
		if !r.done[ref] {
			refs = append(refs, ref)
		}
	}
	slices.Sort(refs)
	for i, ref := range refs {
		if l := r.last[ref]; l != "" {
			refs[i] = ref + " (" + l + ")"
		}
	}
	return strings.Join(refs, ", ")
}

func statusOf(obj api.Object) (int64, api.Phase, []api.Condition) {
	switch o := obj.(type) {
	case *api.Service:
		return o.Status.ObservedGeneration, o.Status.Phase, o.Status.Conditions
	case *api.Project:
		return o.Status.ObservedGeneration, o.Status.Phase, o.Status.Conditions
	case *api.Volume:
		return o.Status.ObservedGeneration, o.Status.Phase, o.Status.Conditions
	}
	return 0, "", nil
}
