package api

import (
	"strings"
	"testing"
	"time"
)

func TestProbeValidation(t *testing.T) {
	d := func(v time.Duration) Duration { return Duration{Duration: v} }
	tests := []struct {
		name  string
		probe Probe
		want  string // "" valid
	}{
		{"http", Probe{HTTPGet: &HTTPGetAction{Path: "/healthz", Port: 8080}}, ""},
		{"tcp", Probe{TCPSocket: &TCPSocketAction{Port: 5432}, Period: d(5 * time.Second)}, ""},
		{"exec", Probe{Exec: &ExecAction{Command: []string{"pg_isready"}}}, ""},
		{"none", Probe{}, "exactly one of httpGet, tcpSocket and exec"},
		{"two", Probe{HTTPGet: &HTTPGetAction{Port: 80}, TCPSocket: &TCPSocketAction{Port: 80}}, "exactly one"},
		{"port", Probe{TCPSocket: &TCPSocketAction{Port: 70000}}, "port from 1 to 65535"},
		{"path", Probe{HTTPGet: &HTTPGetAction{Path: "healthz", Port: 80}}, "must start with /"},
		{"empty command", Probe{Exec: &ExecAction{}}, "needs a command"},
		{"period", Probe{TCPSocket: &TCPSocketAction{Port: 80}, Period: d(time.Millisecond)}, "between 100ms"},
		{"threshold", Probe{TCPSocket: &TCPSocketAction{Port: 80}, FailureThreshold: 1000}, "between 0 (the default) and 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.probe.validate(Path("spec.readinessProbe"))
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Errorf("valid probe refused: %v", errs)
			case tt.want != "" && !strings.Contains(errs.Error(), tt.want):
				t.Errorf("errors %v, want one saying %q", errs, tt.want)
			}
		})
	}
}

func TestAliasesAndNetworksValidation(t *testing.T) {
	tests := []struct {
		name     string
		aliases  []string
		networks []string
		mode     string
		want     string
	}{
		{"fine", []string{"backend", "legacy-api"}, []string{"default", "db"}, "", ""},
		{"not a label", []string{"Legacy_API"}, nil, "", "DNS-1123 label"},
		{"twice", []string{"a", "a"}, nil, "", "duplicate value"},
		{"host network", []string{"a"}, nil, "host", "networkMode host has none"},
		{"network not a label", nil, []string{"back_end"}, "", "spec.networks[0]"},
		{"network twice", nil, []string{"db", "db"}, "", "duplicate value"},
		{"networks and host", nil, []string{"db"}, "host", "joins no project network"},
		{"too many networks", nil, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}, "", "at most 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Service{Metadata: ObjectMeta{Project: "p", Name: "web"}, Spec: ServiceSpec{Image: "nginx:1", Aliases: tt.aliases, Networks: tt.networks, NetworkMode: tt.mode}}
			s.Default()
			errs := s.Validate()
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Errorf("refused: %v", errs)
			case tt.want != "" && !strings.Contains(errs.Error(), tt.want):
				t.Errorf("errors %v, want one saying %q", errs, tt.want)
			}
		})
	}
}
