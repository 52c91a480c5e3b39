package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
)

// ProbeExecer runs a command in a container and returns its exit code (the
// Docker runtime implements it).
type ProbeExecer interface {
	ExecProbe(ctx context.Context, containerID string, cmd []string) (int, error)
}

// Prober runs the readiness probes of services that have one: a goroutine
// per running replica checks it every period and keeps a verdict; when the
// verdict changes, the service is queued again, and the reconciler counts
// the replica as ready (for rollouts, status and the edge) only while it
// passes. It probes from this process: HTTP and TCP probes reach the
// replica's address on its project network, so they need PanelX on the
// host (or on that network); exec probes go through Docker anywhere.
type Prober struct {
	ctx      context.Context
	onChange func(api.Key)
	exec     ProbeExecer
	client   *http.Client

	mu      sync.Mutex
	workers map[string]*probeWorker // by container ID
}

type probeWorker struct {
	key    api.Key
	config string // the probe and address it was started with (JSON)
	cancel context.CancelFunc
	// verdict: "" not passed yet, "ready", "unready" (failed after it had
	// passed); why: the last failure.
	verdict, why string
}

// NewProber starts nothing: Sync starts and stops workers. ctx ends them all.
func NewProber(ctx context.Context, exec ProbeExecer, onChange func(api.Key)) *Prober {
	return &Prober{ctx: ctx, exec: exec, onChange: onChange, workers: map[string]*probeWorker{},
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Sync makes the workers of a service match its probe and its running
// containers (probe nil: none). network is the project network's ID.
func (p *Prober) Sync(key api.Key, probe *api.Probe, containers []reconcile.Container, network string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := map[string]bool{}
	if probe != nil {
		for _, c := range containers {
			if !c.Running() || c.Retiring {
				continue
			}
			ip := c.IPs[network]
			cfg, _ := json.Marshal(struct {
				P  *api.Probe
				IP string
			}{probe, ip})
			keep[c.ID] = true
			if w, ok := p.workers[c.ID]; ok && w.config == string(cfg) {
				continue
			} else if ok {
				w.cancel()
			}
			ctx, cancel := context.WithCancel(p.ctx)
			w := &probeWorker{key: key, config: string(cfg), cancel: cancel}
			p.workers[c.ID] = w
			go p.run(ctx, w, c.ID, ip, *probe)
		}
	}
	for id, w := range p.workers {
		if w.key == key && !keep[id] {
			w.cancel()
			delete(p.workers, id)
		}
	}
}

// Verdict is what the probe says of a container: "" when it has no probe
// worker, else "ready", "unready" or "starting" (no verdict yet), and the
// last failure.
func (p *Prober) Verdict(id string) (string, string) {
	if p == nil {
		return "", ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.workers[id]
	if !ok {
		return "", ""
	}
	if w.verdict == "" {
		return "starting", w.why
	}
	return w.verdict, w.why
}

func (p *Prober) run(ctx context.Context, w *probeWorker, id, ip string, probe api.Probe) {
	if d := probe.InitialDelay.Duration; d > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
	successes, failures := 0, 0
	t := time.NewTicker(probe.PeriodOrDefault())
	defer t.Stop()
	for {
		err := p.check(ctx, id, ip, probe)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			successes, failures = successes+1, 0
		} else {
			successes, failures = 0, failures+1
		}
		p.mu.Lock()
		before := w.verdict
		switch {
		case err == nil && successes >= probe.SuccessThresholdOrDefault():
			w.verdict, w.why = "ready", ""
		case err != nil && w.verdict == "ready" && failures >= probe.FailureThresholdOrDefault():
			// A ready replica is let go only after FailureThreshold
			// failures in a row; one that never passed stays starting
			// (progressing, not degraded) however often it fails.
			w.verdict, w.why = "unready", err.Error()
		case err != nil:
			w.why = err.Error()
		}
		changed := before != w.verdict
		p.mu.Unlock()
		if changed {
			p.onChange(w.key)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check runs the probe once.
func (p *Prober) check(ctx context.Context, id, ip string, probe api.Probe) error {
	ctx, cancel := context.WithTimeout(ctx, probe.TimeoutOrDefault())
	defer cancel()
	switch {
	case probe.HTTPGet != nil:
		if ip == "" {
			return errors.New("the replica has no address on its project network")
		}
		path := probe.HTTPGet.Path
		if path == "" {
			path = "/"
		}
		u := "http://" + net.JoinHostPort(ip, strconv.Itoa(int(probe.HTTPGet.Port))) + path
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "panelx-probe")
		resp, err := p.client.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return nil
	case probe.TCPSocket != nil:
		if ip == "" {
			return errors.New("the replica has no address on its project network")
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(int(probe.TCPSocket.Port))))
		if err != nil {
			return fmt.Errorf("connect to port %d: %w", probe.TCPSocket.Port, err)
		}
		return c.Close()
	case probe.Exec != nil:
		if p.exec == nil {
			return errors.New("exec probes need the Docker runtime")
		}
		code, err := p.exec.ExecProbe(ctx, id, probe.Exec.Command)
		if err != nil {
			return fmt.Errorf("exec %s: %w", probe.Exec.Command[0], err)
		}
		if code != 0 {
			return fmt.Errorf("exec %s: exit code %d", probe.Exec.Command[0], code)
		}
		return nil
	}
	return errors.New("the probe has no action")
}

// withProbes overlays the probe verdicts on a service's containers: a
// replica with a probe counts as ready (Container.Ready) only while the
// probe passes, on top of any Docker healthcheck.
func (p *Prober) withProbes(svc *api.Service, cs []reconcile.Container) []reconcile.Container {
	if p == nil || svc == nil || svc.Spec.ReadinessProbe == nil {
		return cs
	}
	for i := range cs {
		if !cs[i].Running() {
			continue
		}
		verdict, _ := p.Verdict(cs[i].ID)
		switch {
		case cs[i].Health == "unhealthy" || cs[i].Health == "starting":
			// Docker's own healthcheck says no: that stands.
		case verdict == "ready":
			cs[i].Health = "healthy"
		case verdict == "unready":
			cs[i].Health = "unhealthy"
		default: // no worker yet, or no verdict yet
			cs[i].Health = "starting"
		}
	}
	return cs
}
