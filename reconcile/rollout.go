package reconcile

import (
	"fmt"
	"time"

	"github.com/panelx/panelx/api"
)

// ReasonProgressDeadlineExceeded: a change did not become Ready in time.
const ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"

// RolloutInput is what a service's rollout state is decided from.
type RolloutInput struct {
	Service *api.Service
	// Status is the status just computed (conditions, ready replicas);
	// Previous the one stored before this reconcile.
	Status   api.ServiceStatus
	Previous api.ServiceStatus
	// Latest is the service's newest revision (nil: none recorded yet, the
	// template is not known); Recorded says this reconcile recorded it.
	Latest   *api.Revision
	Recorded bool
	Now      time.Time
}

// RolloutDecision is the rollout part of the status, and what to do.
type RolloutDecision struct {
	Status api.RolloutStatus
	// MarkReady: Latest just became Ready; record it.
	MarkReady bool
	// Exceeded: the rollout is past its deadline; Message says why, with
	// the last failure.
	Exceeded bool
	Message  string
	// RequeueAfter: look again when the deadline passes.
	RequeueAfter time.Duration
}

// DecideRollout tracks a rollout: it starts when the controller first sees
// a new generation or records a new revision, and ends when the service is
// Ready with all replicas on the current revision. Its start is kept in the
// status, so a controller restart resumes the clock rather than resetting
// it, and nothing stays in progress forever: past the deadline it is
// Exceeded.
func DecideRollout(in RolloutInput) RolloutDecision {
	ro := in.Previous.Rollout
	if in.Latest != nil {
		ro.Revision = in.Latest.Number
	}
	now := in.Now
	if in.Recorded || in.Previous.ObservedGeneration != in.Service.Metadata.Generation {
		ro.StartedAt = &now
	}
	var d RolloutDecision
	ready := ServiceReady(&api.Service{Metadata: in.Service.Metadata, Status: in.Status})
	if ready && in.Latest != nil {
		d.MarkReady = in.Latest.ReadyAt == nil
		ro.StartedAt, ro.ReadyRevision = nil, in.Latest.Number
		d.Status = ro
		return d
	}
	if ready { // nothing to record yet (no template): done all the same
		ro.StartedAt = nil
		d.Status = ro
		return d
	}
	d.Status = ro
	if ro.StartedAt == nil {
		return d // a Ready service that broke later is not a rollout
	}
	deadline := in.Service.Spec.Rollout.ProgressDeadline.Duration
	if deadline <= 0 {
		deadline = api.DefaultProgressDeadline
	}
	left := ro.StartedAt.Add(deadline).Sub(now)
	if left > 0 {
		d.RequeueAfter = left
		return d
	}
	d.Exceeded = true
	what := "the change"
	if in.Latest != nil {
		what = fmt.Sprintf("revision %d", in.Latest.Number)
	}
	d.Message = fmt.Sprintf("%s did not become ready within %s", what, deadline)
	if why := lastFailure(in.Status); why != "" {
		d.Message += ": " + why
	}
	if ro.ReadyRevision > 0 && ro.ReadyRevision != ro.Revision {
		d.Message += fmt.Sprintf("; revision %d keeps serving", ro.ReadyRevision)
	}
	return d
}

// lastFailure is the most telling problem the status reports.
func lastFailure(st api.ServiceStatus) string {
	for _, typ := range []string{api.ConditionDegraded, api.ConditionProgressing, api.ConditionReady} {
		if c := api.FindCondition(st.Conditions, typ); c != nil && c.Message != "" &&
			(typ != api.ConditionDegraded || c.Status == api.ConditionTrue) {
			return c.Message
		}
	}
	return ""
}

// ApplyRollout puts the decision into the status: the rollout fields and,
// past the deadline, Degraded and Progressing=False with the reason.
func ApplyRollout(st *api.ServiceStatus, d RolloutDecision, generation int64, now time.Time) {
	st.Rollout = d.Status
	if !d.Exceeded {
		return
	}
	st.Phase = api.PhaseDegraded
	for _, c := range []api.Condition{
		{Type: api.ConditionDegraded, Status: api.ConditionTrue},
		{Type: api.ConditionProgressing, Status: api.ConditionFalse},
	} {
		c.Reason, c.Message, c.ObservedGeneration = ReasonProgressDeadlineExceeded, d.Message, generation
		st.Conditions = api.SetCondition(st.Conditions, c, now)
	}
}
