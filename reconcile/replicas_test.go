package reconcile

import (
	"fmt"
	"testing"

	"github.com/panelx/panelx/api"
)

// TestRapidChangesSurgeByOneAtMost: when the spec changes faster than a
// replacement becomes ready, each change supersedes the replacement in
// flight instead of adding one more: a replica never has more than one
// container beyond its own, and the last spec wins. Replicas become
// ready two rounds after they start (a healthcheck).
func TestRapidChangesSurgeByOneAtMost(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas int32
		changes  int
	}{
		{"one replica, 8 changes", 1, 8},
		{"three replicas, 5 changes", 3, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := func(v int) *api.Service {
				return testService(func(s *api.Service) {
					s.Spec.Env[0].Value = fmt.Sprint(v)
					s.Spec.Replicas = &tc.replicas
					s.Spec.Healthcheck = &api.Healthcheck{Command: []string{"/check"}}
				})
			}
			in := baseInput(spec(0))
			sim := &slowSim{t: t}
			maxPer := 0
			for round := 0; round < 60; round++ {
				if round > 0 && round <= tc.changes {
					in.Service = spec(round) // a new change before the last is ready
				}
				p := PlanService(in)
				in.Containers = sim.apply(in.Containers, p, func(cs []Container) {
					per := map[int]int{}
					for _, c := range cs {
						per[c.Replica]++
					}
					for idx, n := range per {
						if n > maxPer {
							maxPer = n
						}
						if n > 2 {
							t.Fatalf("round %d: replica %d has %d containers: %+v", round, idx, n, names(cs))
						}
					}
				})
				in.Containers = sim.tick(in.Containers)
				if round > tc.changes && p.Empty() && p.Wait == "" {
					want := spec(tc.changes)
					if len(in.Containers) != int(tc.replicas) {
						t.Fatalf("converged with %v", names(in.Containers))
					}
					for _, c := range in.Containers {
						s := BuildContainerSpec(testInstance, want, c.Replica, "sha256:img1", nil)
						if c.SpecHash != s.Hash() || c.Name != s.Name {
							t.Fatalf("converged to %s (hash %s), want %s (hash %s)", c.Name, c.SpecHash, s.Name, s.Hash())
						}
					}
					t.Logf("converged in %d rounds; at most %d containers per replica", round, maxPer)
					return
				}
			}
			t.Fatalf("no convergence; last %v", names(in.Containers))
		})
	}
}

func names(cs []Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s(%s,%s)", c.Name, c.State, c.Health))
	}
	return out
}

// slowSim applies plans like Docker, with started containers healthy only
// two rounds later.
type slowSim struct {
	t   *testing.T
	ids int
	age map[string]int
}

func (s *slowSim) apply(cs []Container, p Plan, check func([]Container)) []Container {
	if s.age == nil {
		s.age = map[string]int{}
	}
	find := func(ref string) int {
		for i, c := range cs {
			if c.ID == ref || c.Name == ref {
				return i
			}
		}
		s.t.Fatalf("no container %s", ref)
		return -1
	}
	for _, op := range p.Ops {
		switch op.Kind {
		case OpCreateContainer:
			for _, c := range cs {
				if c.Name == op.Container.Name {
					s.t.Fatalf("create %s: name in use", c.Name)
				}
			}
			c, _ := ContainerFromLabels(op.Container.Labels)
			s.ids++
			c.ID, c.Name, c.State = fmt.Sprintf("c%d", s.ids), op.Container.Name, "created"
			c.Networks = []string{"net1"}
			cs = append(cs, c)
		case OpStartContainer:
			i := find(op.ref())
			cs[i].State, cs[i].Health = "running", "starting"
			s.age[cs[i].ID] = 0
		case OpStopContainer:
			cs[find(op.ref())].State = "exited"
		case OpRemoveContainer, OpRetireContainer:
			i := find(op.ref())
			cs = append(cs[:i:i], cs[i+1:]...)
		case OpRenameContainer:
			cs[find(op.ref())].Name = op.NewName
		}
		check(cs)
	}
	return cs
}

func (s *slowSim) tick(cs []Container) []Container {
	for i := range cs {
		if cs[i].State == "running" && cs[i].Health == "starting" {
			s.age[cs[i].ID]++
			if s.age[cs[i].ID] >= 2 {
				cs[i].Health = "healthy"
			}
		}
	}
	return cs
}
