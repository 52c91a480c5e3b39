package containers

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/panelx/panelx/naming"
)

func TestTargetFromInspect(t *testing.T) {
	ours := map[string]string{
		naming.LabelManaged: "true", naming.LabelInstance: "i1",
		naming.LabelProject: "shop", naming.LabelService: "web", naming.LabelReplica: "2",
	}
	inspect := func(labels map[string]string, running bool, started string) container.InspectResponse {
		return container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{
				ID: "abc", Name: "/panelx-shop-web-2", RestartCount: 4,
				State:      &container.State{Running: running, Pid: 4242, StartedAt: started},
				HostConfig: &container.HostConfig{NetworkMode: "panelx-shop", Resources: container.Resources{Memory: 128 << 20}},
			},
			Config: &container.Config{Labels: labels},
		}
	}
	const started = "2026-01-02T03:04:05.123456789Z"
	tests := []struct {
		name     string
		in       container.InspectResponse
		wantKeep bool
		wantErr  bool
	}{
		{name: "running container of the instance", in: inspect(ours, true, started), wantKeep: true},
		{name: "stopped", in: inspect(ours, false, started)},
		{name: "another instance", in: inspect(map[string]string{naming.LabelManaged: "true", naming.LabelInstance: "i2"}, true, started)},
		{name: "not managed by PanelX", in: inspect(map[string]string{naming.LabelInstance: "i1"}, true, started)},
		{name: "bad start time", in: inspect(ours, true, "yesterday"), wantErr: true},
		{name: "incomplete answer", in: container.InspectResponse{}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, keep, err := targetFromInspect(tt.in, "i1")
			if (err != nil) != tt.wantErr || keep != tt.wantKeep {
				t.Fatalf("keep=%v err=%v; want keep=%v error=%v", keep, err, tt.wantKeep, tt.wantErr)
			}
			if !keep {
				return
			}
			wantStart, _ := time.Parse(time.RFC3339Nano, started)
			if got.ID != "abc" || got.Name != "panelx-shop-web-2" || got.PID != 4242 || got.RestartCount != 4 ||
				got.MemoryLimit != 128<<20 || got.NetworkMode != "panelx-shop" || !got.StartedAt.Equal(wantStart) ||
				got.Project() != "shop" || got.Service() != "web" || got.Replica() != "2" {
				t.Errorf("target = %+v", got)
			}
		})
	}
}

// TestTargetReplica: the replica comes from PanelX's label, or for a Swarm
// task's container from the slot in the task's name.
func TestTargetReplica(t *testing.T) {
	for _, c := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{naming.LabelReplica: "2"}, "2"},
		{map[string]string{swarmTaskName: "panelx-shop-web.3.k8w08klfttdb5fjvsv6n4wito"}, "2"},
		{map[string]string{swarmTaskName: "panelx-shop-web.1.x", naming.LabelReplica: "0"}, "0"},
		{map[string]string{swarmTaskName: "panelx-shop-web.nope.x"}, ""},
		{map[string]string{swarmTaskName: "panelx-shop-web.0.x"}, ""},
		{map[string]string{}, ""},
	} {
		if got := (Target{Labels: c.labels}).Replica(); got != c.want {
			t.Errorf("Replica of %v = %q, want %q", c.labels, got, c.want)
		}
	}
}
