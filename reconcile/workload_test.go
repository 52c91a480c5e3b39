package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
)

// task is a running task of the workload spec of svc (image img1).
func task(svc *api.Service, slot int, state string) Container {
	ws := BuildWorkloadSpec(testInstance, svc, "sha256:img1", nil)
	return Container{ID: "task" + string(rune('0'+slot)), Name: ws.Name + "." + string(rune('0'+slot)), Project: "shop", Service: "web",
		Replica: slot - 1, SpecHash: ws.Hash(), State: state, Task: true, Networks: []string{"net1"}}
}

// workload is svc as the orchestrator would hold it once created.
func workload(svc *api.Service, mutate ...func(*Workload)) *Workload {
	ws := BuildWorkloadSpec(testInstance, svc, "sha256:img1", nil)
	w := &Workload{ID: "svc1", Name: ws.Name, Project: "shop", Service: "web", SpecHash: ws.Hash(), Replicas: ws.Replicas,
		Fields: decodeFields(ws.Labels[LabelFields]), Update: "completed"}
	for _, m := range mutate {
		m(w)
	}
	return w
}

// withSecrets gives in secret "s" with key "k" of value v (its digest
// follows the value, as the controller's do).
func withSecrets(in ServiceInput, v string) ServiceInput {
	in.Secrets = Secrets{"s": {Values: map[string]string{"k": v}, Digests: map[string]string{"k": "d-" + v[:min(len(v), 8)]}}}
	return in
}

// onNodes: PanelX talks to the engine of node here; the volume's data is
// recorded on node data ("" = not recorded yet).
func onNodes(in ServiceInput, here, data string) ServiceInput {
	in.Node = here
	in.Volumes["data"].Status.Node = data
	return in
}

func onNode(n string) func(*Workload) { return func(w *Workload) { w.Node = n } }

func orchestratedInput(svc *api.Service, w *Workload, cs ...Container) ServiceInput {
	in := baseInput(svc, cs...)
	in.Orchestrated, in.Workload = true, w
	return in
}

// TestPlanWorkload: for an orchestrator the planner creates, updates and
// removes one workload per service and waits for its tasks.
func TestPlanWorkload(t *testing.T) {
	v1 := testService(nil)
	v2 := testService(func(s *api.Service) { s.Spec.Env[0].Value = "debug" })
	three := testService(func(s *api.Service) { r := int32(3); s.Spec.Replicas = &r })
	deleted := testService(func(s *api.Service) { s.Metadata.DeletionTimestamp = &t0 })
	withSecretFile := testService(func(s *api.Service) {
		s.Spec.Volumes = append(s.Spec.Volumes, api.VolumeMount{MountPath: "/run/secrets/k", Secret: &api.SecretKeySelector{Name: "s", Key: "k"}})
	})
	for _, c := range []struct {
		name string
		in   ServiceInput
		want string
	}{
		{"new service", orchestratedInput(v1, nil),
			"0 create-service panelx-shop-web (service missing)\nwait: 1 replica(s) starting\n"},
		{"new service, network missing", func() ServiceInput {
			in := orchestratedInput(v1, nil)
			in.Network, in.Networks = nil, nil
			return in
		}(), "0 create-network panelx-shop (network missing)\n1 create-service panelx-shop-web (service missing) after 0\nwait: 1 replica(s) starting\n"},
		{"image not present: pulled first", func() ServiceInput {
			in := orchestratedInput(v1, nil)
			in.Image = ImageState{Image: Image{Ref: v1.Spec.Image}}
			return in
		}(), "0 pull-image 127.0.0.1:5000/shop/web:1 (image not present)\n"},
		{"converged", orchestratedInput(v1, workload(v1), task(v1, 1, "running")), ""},
		{"task starting", orchestratedInput(v1, workload(v1), task(v1, 1, "created")),
			"wait: 0/1 replicas ready (0 running the current spec, 1 in all)\n"},
		{"spec changed", orchestratedInput(v2, workload(v1), task(v1, 1, "running")),
			"0 update-service panelx-shop-web (spec changed: env LOG_LEVEL)\nwait: rolling out\n"},
		{"scaled", orchestratedInput(three, workload(v1), task(v1, 1, "running")),
			"0 update-service panelx-shop-web (scale 1 → 3)\nwait: scaling to 3\n"},
		{"rollout in progress", orchestratedInput(v2, workload(v2, func(w *Workload) { w.Update = "updating" }), task(v1, 1, "running")),
			"wait: rollout in progress\n"},
		{"rolled back: not tried again", orchestratedInput(v2, workload(v1, func(w *Workload) {
			w.Update, w.UpdateMessage = "rollback_completed", "update paused due to failure or early termination of task x"
			w.Attempted = workload(v2).SpecHash
		}), task(v1, 1, "running")),
			"blocked: RolledBack: the rollout failed and was rolled back: update paused due to failure or early termination of task x\n"},
		{"rolled back, then a new spec", orchestratedInput(v2, workload(v1, func(w *Workload) {
			w.Update, w.Attempted = "rollback_completed", "some-older-hash"
		}), task(v1, 1, "running")),
			"0 update-service panelx-shop-web (spec changed: env LOG_LEVEL)\nwait: rolling out\n"},
		{"rolling back", orchestratedInput(v2, workload(v1, func(w *Workload) {
			w.Update, w.UpdateMessage, w.Attempted = "rollback_started", "update paused due to failure", workload(v2).SpecHash
		}), task(v1, 1, "running")),
			"wait: the rollout failed: rolling back\nblocked: RolledBack: the rollout failed and was rolled back: update paused due to failure\n"},
		{"secret files", withSecrets(orchestratedInput(withSecretFile, nil), "v"),
			"0 create-service panelx-shop-web (service missing)\nwait: 1 replica(s) starting\n"},
		{"a secret file's new value", withSecrets(orchestratedInput(withSecretFile, func() *Workload {
			ws := withSecrets(orchestratedInput(withSecretFile, nil), "v")
			spec := BuildWorkloadSpec(testInstance, withSecretFile, "sha256:img1", ws.Secrets)
			return &Workload{ID: "svc1", Name: spec.Name, Project: "shop", Service: "web", SpecHash: spec.Hash(), Replicas: 1,
				Fields: decodeFields(spec.Labels[LabelFields]), Update: "completed"}
		}()), "v2"),
			"0 update-service panelx-shop-web (spec changed: secret files)\nwait: rolling out\n"},
		{"an empty secret file", withSecrets(orchestratedInput(withSecretFile, nil), ""),
			"blocked: UnsupportedByRuntime: secret file /run/secrets/k is empty: this runtime's secrets cannot be\n"},
		{"a secret file too large", withSecrets(orchestratedInput(withSecretFile, nil), strings.Repeat("x", MaxOrchestratedFileSize+1)),
			"blocked: UnsupportedByRuntime: secret file /run/secrets/k is 512000 bytes: this runtime's secrets hold at most 511999\n"},
		{"a port on one address", orchestratedInput(testService(func(s *api.Service) {
			s.Spec.Ports = []api.Port{{ContainerPort: 8080, HostPort: 18080, HostIP: "127.0.0.1"}}
		}), nil), "blocked: UnsupportedByRuntime: port 8080: hostIP 127.0.0.1 is not supported on this runtime, which publishes on every address of a node\n"},
		{"pinned to the node of its volume", onNodes(orchestratedInput(v1, workload(v1), task(v1, 1, "running")), "px-node-1", ""),
			"0 update-service panelx-shop-web (its volumes are on node px-node-1 (was unpinned))\nwait: moving to node px-node-1\n"},
		{"pinned and converged", onNodes(orchestratedInput(v1, workload(v1, onNode("px-node-1")), task(v1, 1, "running")), "px-node-1", "px-node-1"), ""},
		{"data moved: follows it, and the copy left here is not used", onNodes(orchestratedInput(v1, workload(v1, onNode("px-node-1"))), "px-node-1", "px-node-2"),
			"0 update-service panelx-shop-web (its volumes are on node px-node-2 (was px-node-1))\nwait: moving to node px-node-2\n"},
		{"data on another node: never created empty here", func() ServiceInput {
			in := onNodes(orchestratedInput(v1, nil), "px-node-1", "px-node-2")
			in.DockerVolumes = nil
			return in
		}(), "0 create-service panelx-shop-web (service missing)\nwait: 1 replica(s) starting\n"},
		{"volumes on two nodes", func() ServiceInput {
			two := testService(func(s *api.Service) {
				s.Spec.Volumes = append(s.Spec.Volumes, api.VolumeMount{Name: "logs", MountPath: "/logs"})
			})
			in := onNodes(orchestratedInput(two, nil), "px-node-1", "px-node-2")
			in.Volumes["logs"] = testVolume()
			in.Volumes["logs"].Metadata.Name = "logs"
			in.DockerVolumes["panelx-shop-logs"] = Volume{Name: "panelx-shop-logs", Project: "shop", Volume: "logs"}
			return in
		}(), "blocked: VolumesOnDifferentNodes: spec.volumes[1]: volume \"logs\" is on node px-node-1 and volume \"data\" on node px-node-2: " +
			"a service's replicas run on one node (move one of them: panelx volume move)\n"},
		{"deleted", orchestratedInput(deleted, workload(v1), task(v1, 1, "running")),
			"0 remove-service panelx-shop-web (service deleted)\nwait: service panelx-shop-web being removed\n"},
		{"deleted, tasks stopping", orchestratedInput(deleted, nil, task(v1, 1, "running")),
			"wait: 1 task(s) of the service stopping\n"},
		{"deleted, all gone", orchestratedInput(deleted, nil), "finalize\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := PlanService(c.in).String(); got != c.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// TestWorkloadStatusFromTasks: a service's status counts its tasks against
// the workload's hash (one for every replica, unlike containers').
func TestWorkloadStatusFromTasks(t *testing.T) {
	two := testService(func(s *api.Service) { r := int32(2); s.Spec.Replicas = &r })
	in := ServiceStatusInput{Instance: testInstance, Service: two, Image: ImageState{Image: Image{Ref: two.Spec.Image, ID: "sha256:img1"}},
		Containers: []Container{task(two, 1, "running"), task(two, 2, "running")}, Now: t0.Add(time.Minute)}
	st := ComputeServiceStatus(in)
	if st.ReadyReplicas != 2 || st.Phase != api.PhaseRunning {
		t.Errorf("two running tasks: %d ready, phase %s", st.ReadyReplicas, st.Phase)
	}
	in.Containers[1].State = "exited"
	in.Containers[1].Error = "task: non-zero exit (1)"
	st = ComputeServiceStatus(in)
	if st.ReadyReplicas != 1 || st.Phase != api.PhaseDegraded {
		t.Errorf("one failed task: %d ready, phase %s", st.ReadyReplicas, st.Phase)
	}
}
