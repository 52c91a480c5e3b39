package reconcile

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
)

func secretService(optional bool) *api.Service {
	return testService(func(s *api.Service) {
		s.Spec.Env = append(s.Spec.Env, api.EnvVar{Name: "DB_PASSWORD",
			ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "db", Key: "password", Optional: optional}}})
	})
}

func TestSecretProblem(t *testing.T) {
	opened := SecretValues{Version: 1, Values: map[string]string{"password": "hunter2"}, Digests: map[string]string{"password": "d1"}}
	tests := []struct {
		name     string
		optional bool
		secrets  Secrets
		reason   string
	}{
		{"opened", false, Secrets{"db": opened}, ""},
		{"missing secret", false, Secrets{"db": {Missing: true}}, ReasonSecretNotFound},
		{"not looked up", false, nil, ReasonSecretNotFound},
		{"missing key", false, Secrets{"db": {Values: map[string]string{"user": "x"}}}, ReasonSecretNotFound},
		{"optional and missing", true, Secrets{"db": {Missing: true}}, ""},
		{"wrong master key", false, Secrets{"db": {Err: "sealed under master key abc"}}, ReasonSecretUnavailable},
		{"wrong master key, optional", true, Secrets{"db": {Err: "sealed under master key abc"}}, ReasonSecretUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := secretService(tt.optional)
			reason, msg := SecretProblem(svc, tt.secrets)
			if reason != tt.reason {
				t.Fatalf("reason %q (%s), want %q", reason, msg, tt.reason)
			}
			in := baseInput(svc)
			in.Secrets = tt.secrets
			p := PlanService(in)
			if tt.reason != "" && (p.BlockedReason != tt.reason || len(p.Ops) != 0) {
				t.Errorf("plan not held back: %s", p.String())
			}
			if tt.reason == "" && len(p.Ops) == 0 {
				t.Errorf("plan held back: %s", p.String())
			}
		})
	}
}

// TestSpecHashCoversDigestsNotValues: a secret variable's value is in the
// container's environment, never in its labels; the hash follows the
// value's digest.
func TestSpecHashCoversDigestsNotValues(t *testing.T) {
	svc := secretService(false)
	build := func(value, digest string) ContainerSpec {
		return BuildContainerSpec(testInstance, svc, 0, "sha256:img1", Secrets{"db": {Version: 1,
			Values: map[string]string{"password": value}, Digests: map[string]string{"password": digest}}})
	}
	a := build("hunter2", "d1")
	if !strings.Contains(strings.Join(a.Env, " "), "DB_PASSWORD=hunter2") {
		t.Errorf("env: %v", a.Env)
	}
	labels, _ := json.Marshal(a.Labels)
	if strings.Contains(string(labels), "hunter2") {
		t.Errorf("labels hold the value: %s", labels)
	}
	if b := build("other", "d2"); b.Hash() == a.Hash() || !strings.Contains(describeChange(a.fields(), b.fields()), "env DB_PASSWORD") {
		t.Error("a changed digest does not change the hash")
	}
	// Literal env keeps hashing as before secrets existed (no mass restart
	// on upgrade): "NAME=value".
	plain := testService(nil)
	if got := BuildContainerSpec(testInstance, plain, 0, "sha256:img1", nil).EnvHash; len(got) != 1 || got[0] != "LOG_LEVEL=info" {
		t.Errorf("literal env hashes as %v", got)
	}
}

func TestDecideRollout(t *testing.T) {
	now := t0.Add(time.Hour)
	svc := testService(func(s *api.Service) {
		s.Metadata.Generation = 2
		s.Spec.Rollout.ProgressDeadline = api.Duration{Duration: time.Minute}
	})
	ready := api.ServiceStatus{ObservedGeneration: 2, Conditions: []api.Condition{{Type: api.ConditionReady, Status: api.ConditionTrue}}}
	crashing := api.ServiceStatus{ObservedGeneration: 2, Conditions: []api.Condition{
		{Type: api.ConditionDegraded, Status: api.ConditionTrue, Message: "replica 0 keeps crashing"},
		{Type: api.ConditionReady, Status: api.ConditionFalse}}}
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	rev := func(n int64, ready bool) *api.Revision {
		r := &api.Revision{Number: n}
		if ready {
			r.ReadyAt = at(-time.Hour)
		}
		return r
	}
	tests := []struct {
		name      string
		status    api.ServiceStatus
		previous  api.ServiceStatus
		latest    *api.Revision
		recorded  bool
		markReady bool
		exceeded  bool
		started   bool
		message   string
	}{
		{name: "a new generation starts a rollout", status: crashing, previous: api.ServiceStatus{ObservedGeneration: 1},
			latest: rev(2, false), started: true},
		{name: "a new revision starts one", status: crashing, previous: api.ServiceStatus{ObservedGeneration: 2},
			latest: rev(3, false), recorded: true, started: true},
		{name: "within the deadline", status: crashing,
			previous: api.ServiceStatus{ObservedGeneration: 2, Rollout: api.RolloutStatus{StartedAt: at(-30 * time.Second), ReadyRevision: 1}},
			latest:   rev(2, false), started: true},
		{name: "past the deadline, with the last failure", status: crashing,
			previous: api.ServiceStatus{ObservedGeneration: 2, Rollout: api.RolloutStatus{StartedAt: at(-2 * time.Minute), ReadyRevision: 1}},
			latest:   rev(2, false), started: true, exceeded: true,
			message: "revision 2 did not become ready within 1m0s: replica 0 keeps crashing; revision 1 keeps serving"},
		{name: "ready ends it and marks the revision", status: ready,
			previous: api.ServiceStatus{ObservedGeneration: 2, Rollout: api.RolloutStatus{StartedAt: at(-2 * time.Minute)}},
			latest:   rev(2, false), markReady: true},
		{name: "a ready service that breaks later is no rollout", status: crashing,
			previous: api.ServiceStatus{ObservedGeneration: 2, Rollout: api.RolloutStatus{Revision: 2, ReadyRevision: 2}},
			latest:   rev(2, true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := DecideRollout(RolloutInput{Service: svc, Status: tt.status, Previous: tt.previous, Latest: tt.latest, Recorded: tt.recorded, Now: now})
			if d.MarkReady != tt.markReady || d.Exceeded != tt.exceeded || (d.Status.StartedAt != nil) != tt.started {
				t.Fatalf("decision %+v (startedAt %v)", d, d.Status.StartedAt)
			}
			if tt.message != "" && d.Message != tt.message {
				t.Errorf("message %q\nwant    %q", d.Message, tt.message)
			}
			if tt.started && !tt.exceeded && d.RequeueAfter <= 0 {
				t.Error("no recheck at the deadline")
			}
			st := tt.status
			ApplyRollout(&st, d, 2, now)
			if c := api.FindCondition(st.Conditions, api.ConditionProgressing); tt.exceeded != (c != nil && c.Reason == ReasonProgressDeadlineExceeded) {
				t.Errorf("Progressing condition %+v", c)
			}
		})
	}
}

// TestReadyNeedsARecentLook: without a healthcheck a container is ready
// only when the engine saw it running MinReadyTime after its start; a
// cached "running" from the moment it started says nothing (it may have
// crashed since, its exit not handled yet).
func TestReadyNeedsARecentLook(t *testing.T) {
	started := time.Now().Add(-5 * time.Second)
	tests := []struct {
		name        string
		c           Container
		ready, look bool
	}{
		{"seen right after it started", Container{State: "running", StartedAt: started, ObservedAt: started.Add(10 * time.Millisecond)}, false, true},
		{"seen after a second", Container{State: "running", StartedAt: started, ObservedAt: started.Add(1500 * time.Millisecond)}, true, false},
		{"started just now", Container{State: "running", StartedAt: time.Now(), ObservedAt: time.Now()}, false, false},
		{"healthy, seen at once", Container{State: "running", Health: "healthy", StartedAt: started, ObservedAt: started}, true, false},
		{"exited", Container{State: "exited", StartedAt: started, ObservedAt: started.Add(2 * time.Second)}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Ready(); got != tt.ready {
				t.Errorf("Ready() = %v", got)
			}
			if got := tt.c.NeedsLook(); got != tt.look {
				t.Errorf("NeedsLook() = %v", got)
			}
		})
	}
}
