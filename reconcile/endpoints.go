package reconcile

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/panelx/panelx/api"
)

// Edge routing. The controller publishes each service's endpoints (the
// replicas the edge may send to) in its status; edges only consume them and
// report back which replica addresses they still route to or drain. A
// replica leaves the endpoints before it is stopped, and is stopped only
// once no live edge sends it requests — or after the drain timeout. So a
// start-first update drops no request.

// Defaults of the drain.
const (
	// EdgeLiveness: an edge that has not reported for this long is
	// considered gone and is not waited for.
	EdgeLiveness = 15 * time.Second
	// DefaultDrainTimeout bounds how long a replica out of the endpoints
	// waits for the edges before it is stopped anyway.
	DefaultDrainTimeout = 30 * time.Second
	drainRecheck        = 100 * time.Millisecond
)

// EndpointsInput is what a service's endpoints are computed from.
type EndpointsInput struct {
	Instance   string
	Service    *api.Service
	Image      ImageState // the image the current spec runs
	Network    *Network   // the project network
	Containers []Container
	Secrets    Secrets // the values of the secrets the service uses
}

// DesiredEndpoints returns the replicas the edge should send to: for each
// desired replica index, its current container once it is ready, else the
// old one while it is still ready (a replacement not ready yet serves
// nothing). Replicas above the desired count, and every replica of a
// service being deleted, serve nothing. Only services with domains have
// endpoints.
func DesiredEndpoints(in EndpointsInput) []api.Endpoint {
	svc := in.Service
	if svc == nil || len(svc.Spec.Domains) == 0 || svc.Metadata.DeletionTimestamp != nil || in.Network == nil {
		return nil
	}
	byIndex := map[int][]Container{}
	for _, c := range in.Containers {
		byIndex[c.Replica] = append(byIndex[c.Replica], c)
	}
	var out []api.Endpoint
	// Without the template (no image yet, a secret that cannot be opened)
	// nothing is current: the containers there are keep serving.
	known := in.Image.Present() && secretsOK(svc, in.Secrets)
	for i := 0; i < int(svc.Spec.ReplicaCount()); i++ {
		want := ""
		if known {
			want = replicaHash(in.Instance, svc, i, in.Image.ID, in.Secrets, orchestrated(in.Containers))
		}
		set := splitReplica(byIndex[i], func(c Container) bool {
			return want != "" && c.SpecHash == want && slices.Contains(c.Networks, in.Network.ID)
		}, ContainerName(svc.Metadata.Project, svc.Metadata.Name, i))
		var serving []Container
		routable := func(c Container) bool { return c.Ready() && c.IPs[in.Network.ID] != "" }
		if len(set.current) > 0 {
			if best := bestContainer(set.current, ContainerName(svc.Metadata.Project, svc.Metadata.Name, i)); routable(best) {
				serving = []Container{best}
			}
		}
		// Start-first: the old replica serves until its replacement is
		// ready. Stop-first (a host port): it must drain and stop before its
		// replacement can start, so it leaves the routes now.
		if len(serving) == 0 && set.old != nil && routable(*set.old) && !(stopFirst(svc) && want != "") {
			serving = []Container{*set.old}
		}
		for _, c := range serving {
			out = append(out, api.Endpoint{Replica: int32(i), ContainerID: c.ID, IP: c.IPs[in.Network.ID]})
		}
	}
	return out
}

// stopFirst reports whether a service's replicas are replaced stop-first:
// the old container holds a host port the new one needs.
func stopFirst(svc *api.Service) bool {
	return slices.ContainsFunc(svc.Spec.Ports, func(p api.Port) bool { return p.HostPort != 0 }) || svc.Spec.NetworkMode == "host"
}

// EdgeView is one live edge's last report, as the planner reads it.
type EdgeView struct {
	ID       string
	Active   map[string]bool // replica IPs it routes to
	Draining map[string]bool // replica IPs with requests in flight, no longer routed
	SeenAt   time.Time
}

// DrainInput is what the planner needs to stop routed replicas safely.
type DrainInput struct {
	// Needed: the service has (or had) domains, so edges may route to it.
	Needed bool
	// Routed are the container IDs in the published status.endpoints.
	Routed map[string]bool
	// Edges are the reports of the live edges.
	Edges []EdgeView
	// Since is when each container was first seen out of the endpoints
	// (remembered by the reconciler; a restart starts the clock again).
	Since   map[string]time.Time
	Timeout time.Duration
}

// drained reports whether a running container may be stopped now; if not,
// it adds the wait to the plan.
func (in ServiceInput) drained(p *Plan, c Container, why string) bool {
	d := in.Drain
	if !d.Needed || !(c.Running() || c.State == "restarting" || c.State == "paused") {
		return true
	}
	if d.Routed[c.ID] {
		p.wait(drainRecheck, "%s: taking %s out of the edge's routes first", why, c.Name)
		return false
	}
	since, known := d.Since[c.ID]
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultDrainTimeout
	}
	if known && in.Now.Sub(since) >= timeout {
		return true
	}
	var waiting []string
	for _, e := range d.Edges {
		ip := ""
		for _, addr := range c.IPs {
			if e.Active[addr] || e.Draining[addr] {
				ip = addr
			}
		}
		switch {
		case ip != "" && e.Active[ip]:
			waiting = append(waiting, e.ID+" still routes to it")
		case ip != "":
			waiting = append(waiting, e.ID+" has requests in flight to it")
		case known && !e.SeenAt.After(since):
			waiting = append(waiting, e.ID+" has not confirmed its new routes")
		}
	}
	if len(waiting) == 0 {
		return true
	}
	slices.Sort(waiting)
	p.wait(drainRecheck, "%s: draining %s (%s)", why, c.Name, strings.Join(waiting, ", "))
	return false
}

// EdgeViews turns reports into views, keeping the live ones.
func EdgeViews(now time.Time, reports []EdgeReportView) []EdgeView {
	var out []EdgeView
	for _, r := range reports {
		if now.Sub(r.SeenAt) > EdgeLiveness {
			continue
		}
		v := EdgeView{ID: r.ID, SeenAt: r.SeenAt, Active: map[string]bool{}, Draining: map[string]bool{}}
		for _, ip := range r.Active {
			v.Active[ip] = true
		}
		for _, ip := range r.Draining {
			v.Draining[ip] = true
		}
		out = append(out, v)
	}
	return out
}

// EdgeReportView is the part of a store.EdgeReport the planner needs (the
// reconcile package does not import the store).
type EdgeReportView struct {
	ID       string
	Active   []string
	Draining []string
	SeenAt   time.Time
}

// describeEndpoints is for logs: "0=10.0.0.2 1=10.0.0.3".
func describeEndpoints(eps []api.Endpoint) string {
	parts := make([]string, len(eps))
	for i, e := range eps {
		parts[i] = fmt.Sprintf("%d=%s", e.Replica, e.IP)
	}
	return strings.Join(parts, " ")
}
