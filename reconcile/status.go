package reconcile

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/panelx/panelx/api"
)

// Condition reasons the controller reports besides the planner's.
const (
	ReasonAllReady         = "AllReplicasReady"
	ReasonNotReady         = "ReplicasNotReady"
	ReasonReconciling      = "Reconciling"
	ReasonComplete         = "Complete"
	ReasonReconcileError   = "ReconcileError"
	ReasonUnhealthy        = "Unhealthy"
	ReasonCrashLoop        = "CrashLoop"
	ReasonAsExpected       = "AsExpected"
	ReasonServicesNotReady = "ServicesNotReady"
	ReasonDeleting         = "Deleting"
	ReasonNodeLost         = "NodeLost"
)

// ServiceStatusInput is what a service's status is computed from: the
// observation and plan of the reconcile that just ran, and its error.
type ServiceStatusInput struct {
	Instance   string
	Service    *api.Service
	Previous   api.ServiceStatus
	Containers []Container
	Image      ImageState
	Plan       Plan
	Err        error
	Now        time.Time
	// Network is the project network (the endpoints' addresses are on it).
	Network *Network
	// ProjectDomain gives the default hostname <service>.<domain>.
	ProjectDomain string
	// Certificates are the edges' reports by hostname.
	Certificates map[string]api.CertificateStatus
	// Secrets are the values of the secrets the service uses.
	Secrets Secrets
	// Workload is the orchestrator's service (nil on a container runtime).
	Workload *Workload
}

// ComputeServiceStatus derives the status the user sees.
func ComputeServiceStatus(in ServiceStatusInput) api.ServiceStatus {
	svc := in.Service
	desired := int(svc.Spec.ReplicaCount())
	st := api.ServiceStatus{
		ObservedGeneration: svc.Metadata.Generation,
		Conditions:         append([]api.Condition(nil), in.Previous.Conditions...),
		ImageID:            in.Image.ID,
	}
	// Dead containers are not replicas (see splitDead): the planner moves
	// them aside and removes them when the engine lets it.
	live, _ := splitDead(in.Containers)
	byIndex := map[int][]Container{}
	for _, c := range live {
		byIndex[c.Replica] = append(byIndex[c.Replica], c)
	}
	var problems []string
	problemReason := ""
	addProblem := func(reason, msg string) {
		if problemReason == "" {
			problemReason = reason
		}
		problems = append(problems, msg)
	}
	stale := 0
	for i := 0; i < desired; i++ {
		want := ""
		if in.Image.Present() && secretsOK(svc, in.Secrets) {
			want = replicaHash(in.Instance, svc, i, in.Image.ID, in.Secrets, orchestrated(in.Containers))
		}
		rs := api.ReplicaStatus{Index: int32(i), State: "missing"}
		var cur *Container
		for j, c := range byIndex[i] {
			if want != "" && c.SpecHash == want {
				cur = &byIndex[i][j]
			} else {
				stale++
			}
		}
		if cur != nil {
			rs = replicaStatus(i, cur)
			if cur.Ready() {
				st.ReadyReplicas++
			}
			switch {
			case cur.Health == "unhealthy":
				addProblem(ReasonUnhealthy, fmt.Sprintf("replica %d is unhealthy", i))
			case cur.State == "restarting" || (cur.State == "exited" && cur.ExitCode != 0 && cur.RestartCount > 0):
				addProblem(ReasonCrashLoop, fmt.Sprintf("replica %d keeps crashing (exit code %d, %d restarts)", i, cur.ExitCode, cur.RestartCount))
			case cur.Error != "":
				addProblem(ReasonReconcileError, fmt.Sprintf("replica %d: %s", i, cur.Error))
			}
		}
		st.Replicas = append(st.Replicas, rs)
	}
	for idx, cs := range byIndex {
		if idx >= desired {
			stale += len(cs)
		}
	}
	if in.Plan.Blocked != "" {
		addProblem(in.Plan.BlockedReason, in.Plan.Blocked)
	}
	if in.Err != nil {
		addProblem(ReasonReconcileError, in.Err.Error())
	}
	if in.Image.PullError != "" && in.Image.Present() {
		addProblem(ReasonPullFailed, "pull "+svc.Spec.Image+" (running the local image meanwhile): "+in.Image.PullError)
	}

	if cur := nodeDownReplicas(st.Replicas, byIndex); cur != "" {
		addProblem(ReasonNodeLost, cur)
	}

	st.Endpoints = DesiredEndpoints(EndpointsInput{Instance: in.Instance, Service: svc, Image: in.Image, Network: in.Network, Containers: in.Containers})
	st.Domains = domainStatuses(svc, in.ProjectDomain, st.Endpoints, in.Certificates)

	now := in.Now
	allReady := int(st.ReadyReplicas) == desired && stale == 0
	progressing := !in.Plan.Empty() || in.Plan.Wait != "" || stale > 0
	set := func(typ string, ok bool, reason, msg string) {
		status := api.ConditionFalse
		if ok {
			status = api.ConditionTrue
		}
		st.Conditions = api.SetCondition(st.Conditions, api.Condition{Type: typ, Status: status, Reason: reason,
			Message: msg, ObservedGeneration: svc.Metadata.Generation}, now)
	}
	degraded := len(problems) > 0
	if degraded {
		set(api.ConditionDegraded, true, problemReason, strings.Join(problems, "; "))
	} else {
		set(api.ConditionDegraded, false, ReasonAsExpected, "")
	}
	switch {
	case allReady:
		set(api.ConditionProgressing, false, ReasonComplete, fmt.Sprintf("%d/%d replicas ready", st.ReadyReplicas, desired))
	case in.Plan.Wait != "":
		set(api.ConditionProgressing, true, ReasonReconciling, in.Plan.Wait)
	default:
		set(api.ConditionProgressing, progressing && !degraded, ReasonReconciling, fmt.Sprintf("%d/%d replicas ready", st.ReadyReplicas, desired))
	}
	if allReady && !degraded {
		set(api.ConditionReady, true, ReasonAllReady, fmt.Sprintf("%d/%d replicas ready", st.ReadyReplicas, desired))
	} else {
		set(api.ConditionReady, false, ReasonNotReady, fmt.Sprintf("%d/%d replicas ready", st.ReadyReplicas, desired))
	}

	if in.Workload != nil {
		if msg := lostMessage(in.Workload.Lost); msg != "" {
			set(api.ConditionNodeLost, true, ReasonNodeLost, msg)
		} else if api.FindCondition(st.Conditions, api.ConditionNodeLost) != nil {
			set(api.ConditionNodeLost, false, ReasonAsExpected, "")
		}
	}

	switch {
	case svc.Metadata.DeletionTimestamp != nil:
		st.Phase = api.PhaseDeleting
	case allReady && !degraded:
		st.Phase = api.PhaseRunning
	case degraded:
		st.Phase = api.PhaseDegraded
	case len(in.Containers) == 0 && desired > 0:
		st.Phase = api.PhasePending
	default:
		st.Phase = api.PhaseProgressing
	}
	return st
}

// domainStatuses says, per domain, whether the edge routes it and where its
// certificate is.
func domainStatuses(svc *api.Service, projectDomain string, eps []api.Endpoint, certs map[string]api.CertificateStatus) []api.DomainStatus {
	var out []api.DomainStatus
	for _, d := range svc.Spec.Domains {
		ds := api.DomainStatus{Host: api.EffectiveHost(d, svc.Metadata.Name, projectDomain), Path: d.Path}
		switch {
		case ds.Host == "":
			ds.Reason = fmt.Sprintf("no hostname: the domain names no host and project %s has no spec.domain", svc.Metadata.Project)
		case svc.Metadata.DeletionTimestamp != nil:
			ds.Reason = "service deleted"
		case len(eps) == 0:
			ds.Reason = fmt.Sprintf("no ready replica of %s in project %s", svc.Metadata.Name, svc.Metadata.Project)
		default:
			ds.Routed = true
		}
		if ds.Host != "" && d.TLS != api.TLSOff {
			if c, ok := certs[ds.Host]; ok {
				ds.Certificate = &c
			} else {
				ds.Certificate = &api.CertificateStatus{State: api.CertificatePending, Message: "no edge has reported this hostname yet (is `panelx edge` running?)"}
			}
		}
		out = append(out, ds)
	}
	return out
}

func replicaStatus(i int, c *Container) api.ReplicaStatus {
	rs := api.ReplicaStatus{
		Index:       int32(i),
		ContainerID: c.ID,
		State:       c.State,
		Health:      c.Health,
		Restarts:    int32(c.RestartCount),
		Node:        c.NodeName,
	}
	if rs.Node == "" {
		rs.Node = c.Node
	}
	if !c.StartedAt.IsZero() && c.Running() {
		t := c.StartedAt.UTC()
		rs.StartedAt = &t
	}
	switch {
	case c.NodeDown:
		rs.Message = "its node " + rs.Node + " is down: the last state it reported may be stale"
	case c.Error != "":
		rs.Message = c.Error
	case c.OOMKilled:
		rs.Message = "killed: out of memory"
	case c.State == "exited":
		rs.Message = fmt.Sprintf("exited with code %d", c.ExitCode)
	}
	return rs
}

// ComputeProjectStatus summarises a project from its services' statuses.
func ComputeProjectStatus(p *api.Project, services []*api.Service, net *Network, plan Plan, err error, now time.Time) api.ProjectStatus {
	st := api.ProjectStatus{
		ObservedGeneration: p.Metadata.Generation,
		Conditions:         append([]api.Condition(nil), p.Status.Conditions...),
	}
	if net != nil {
		st.Network = net.Name
	}
	var notReady []string
	for _, s := range services {
		if s.Metadata.DeletionTimestamp != nil {
			continue
		}
		st.Services.Total++
		if ServiceReady(s) {
			st.Services.Ready++
		} else {
			notReady = append(notReady, s.Metadata.Name)
		}
	}
	set := func(typ string, ok bool, reason, msg string) {
		status := api.ConditionFalse
		if ok {
			status = api.ConditionTrue
		}
		st.Conditions = api.SetCondition(st.Conditions, api.Condition{Type: typ, Status: status, Reason: reason,
			Message: msg, ObservedGeneration: p.Metadata.Generation}, now)
	}
	switch {
	case p.Metadata.DeletionTimestamp != nil:
		st.Phase = api.PhaseDeleting
		msg := plan.Wait
		if err != nil {
			msg = err.Error()
		}
		set(api.ConditionReady, false, ReasonDeleting, msg)
	case err != nil:
		st.Phase = api.PhaseDegraded
		set(api.ConditionReady, false, ReasonReconcileError, err.Error())
	case len(notReady) > 0:
		st.Phase = api.PhaseProgressing
		set(api.ConditionReady, false, ReasonServicesNotReady, "not ready: "+strings.Join(notReady, ", "))
	default:
		st.Phase = api.PhaseReady
		set(api.ConditionReady, true, ReasonAsExpected, fmt.Sprintf("%d/%d services ready", st.Services.Ready, st.Services.Total))
	}
	return st
}

// ServiceReady reports whether a service's status says Ready for its
// current generation.
func ServiceReady(s *api.Service) bool {
	c := api.FindCondition(s.Status.Conditions, api.ConditionReady)
	return c != nil && c.Status == api.ConditionTrue && s.Status.ObservedGeneration == s.Metadata.Generation
}

// ReasonOnAnotherNode: a volume's data is on a node other than the one
// PanelX talks to.
const ReasonOnAnotherNode = "OnAnotherNode"

// ComputeVolumeStatus reports whether a volume's Docker volume exists.
// node is the one whose engine PanelX talks to, on a runtime of several.
func ComputeVolumeStatus(v *api.Volume, dv *Volume, node string, plan Plan, err error, now time.Time) api.VolumeStatus {
	st := api.VolumeStatus{ObservedGeneration: v.Metadata.Generation, Conditions: append([]api.Condition(nil), v.Status.Conditions...)}
	set := func(typ string, ok bool, reason, msg string) {
		status := api.ConditionFalse
		if ok {
			status = api.ConditionTrue
		}
		st.Conditions = api.SetCondition(st.Conditions, api.Condition{Type: typ, Status: status, Reason: reason,
			Message: msg, ObservedGeneration: v.Metadata.Generation}, now)
	}
	// The node is recorded once, where PanelX created the data (or first
	// found it); only a move changes it. A copy the engine here lists while
	// the data is elsewhere is a stale one, left by a move.
	st.Node = v.Status.Node
	elsewhere := VolumeElsewhere(v, node)
	if elsewhere {
		st.DockerName = VolumeName(v.Metadata.Project, v.Metadata.Name)
	} else if dv != nil {
		st.DockerName = dv.Name
		st.Node = cmp.Or(st.Node, dv.Node)
	}
	switch {
	case v.Metadata.DeletionTimestamp != nil:
		st.Phase = api.PhaseDeleting
		msg := plan.Blocked
		if err != nil {
			msg = err.Error()
		}
		set(api.ConditionReady, false, ReasonDeleting, msg)
	case err != nil:
		st.Phase = api.PhaseDegraded
		set(api.ConditionReady, false, ReasonReconcileError, err.Error())
	case plan.Blocked != "":
		st.Phase = api.PhaseDegraded
		set(api.ConditionReady, false, plan.BlockedReason, plan.Blocked)
	case elsewhere:
		st.Phase = api.PhaseReady
		set(api.ConditionReady, true, ReasonOnAnotherNode, fmt.Sprintf("its data is on node %s, where its services run; PanelX talks to the engine of node %s, "+
			"which does not see it (file browsing and backups need PanelX on %s)", v.Status.Node, node, v.Status.Node))
	case dv != nil:
		st.Phase = api.PhaseReady
		set(api.ConditionReady, true, ReasonAsExpected, "")
	default:
		st.Phase = api.PhasePending
		set(api.ConditionReady, false, ReasonReconciling, "volume not created yet")
	}
	return st
}

// nodeDownReplicas names the current replicas whose node the orchestrator
// has lost, which it has not rescheduled yet.
func nodeDownReplicas(rs []api.ReplicaStatus, byIndex map[int][]Container) string {
	var idx, nodes []string
	for _, r := range rs {
		for _, c := range byIndex[int(r.Index)] {
			if c.ID == r.ContainerID && c.NodeDown {
				idx = append(idx, fmt.Sprint(r.Index))
				if !slices.Contains(nodes, r.Node) {
					nodes = append(nodes, r.Node)
				}
			}
		}
	}
	if len(idx) == 0 {
		return ""
	}
	return fmt.Sprintf("replica %s: node %s is down, waiting for the orchestrator to reschedule", strings.Join(idx, ", "), strings.Join(nodes, ", "))
}

// lostMessage says which nodes were lost with which replicas on them, by
// node, in a stable order.
func lostMessage(lost []LostReplica) string {
	if len(lost) == 0 {
		return ""
	}
	type nodeLoss struct {
		name, state string
		replicas    []int
	}
	byNode := map[string]*nodeLoss{}
	var order []string
	for _, l := range lost {
		n := byNode[l.Node]
		if n == nil {
			name := l.NodeName
			if name == "" {
				name = "?"
			}
			n = &nodeLoss{name: fmt.Sprintf("%s (%s)", name, shortID(l.Node)), state: l.NodeState}
			byNode[l.Node] = n
			order = append(order, l.Node)
		}
		n.replicas = append(n.replicas, l.Replica)
	}
	slices.Sort(order)
	var parts []string
	for _, id := range order {
		n := byNode[id]
		slices.Sort(n.replicas)
		reps := make([]string, len(n.replicas))
		for i, r := range n.replicas {
			reps[i] = fmt.Sprint(r)
		}
		word := "replica %s was"
		if len(reps) > 1 {
			word = "replicas %s were"
		}
		parts = append(parts, fmt.Sprintf("node %s is %s: "+word+" running there", n.name, n.state, strings.Join(reps, ", ")))
	}
	return strings.Join(parts, "; ")
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
