package apiserver

import (
	"context"
	"fmt"
	"net"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// hostPort is one published host port of a service's spec.
type hostPort struct {
	ip    string // "" for every address
	port  int32
	proto api.Protocol
	index int // in spec.ports, for the error's field
}

func hostPortsOf(svc *api.Service) []hostPort {
	if svc == nil || svc.Spec.NetworkMode == "host" || svc.Spec.NetworkMode == "none" {
		return nil // host networking publishes nothing; none has no ports
	}
	var out []hostPort
	for i, p := range svc.Spec.Ports {
		if p.HostPort == 0 {
			continue
		}
		ip := p.HostIP
		if parsed := net.ParseIP(ip); parsed != nil && parsed.IsUnspecified() {
			ip = ""
		}
		proto := p.Protocol
		if proto == "" {
			proto = api.ProtocolTCP
		}
		out = append(out, hostPort{ip: ip, port: p.HostPort, proto: proto, index: i})
	}
	return out
}

// clash: two bindings of the same port and protocol collide unless both
// name different addresses.
func (a hostPort) clash(b hostPort) bool {
	return a.port == b.port && a.proto == b.proto && (a.ip == "" || b.ip == "" || a.ip == b.ip)
}

func (a hostPort) String() string {
	ip := a.ip
	if ip == "" {
		ip = "0.0.0.0"
	}
	return fmt.Sprintf("%s:%d/%s", ip, a.port, a.proto)
}

// portClaims are the host ports of the services written earlier in one
// apply, which the store does not show yet.
type portClaims map[api.Key][]hostPort

// checkHostPorts refuses a service that would publish a host port another
// service of this installation (of any project) already publishes — Docker
// would refuse it later with a raw error on every attempt. Only ports the
// write adds are checked, so a service already in conflict can still be
// changed otherwise. Another project's service is not named: the caller
// may not see it.
func (s *Server) checkHostPorts(ctx context.Context, next, current *api.Service, stream portClaims) error {
	var added []hostPort
	for _, hp := range hostPortsOf(next) {
		old := false
		for _, c := range hostPortsOf(current) {
			if c.ip == hp.ip && c.port == hp.port && c.proto == hp.proto {
				old = true
			}
		}
		if !old {
			added = append(added, hp)
		}
	}
	if len(added) == 0 {
		return nil
	}
	self := api.KeyOf(next)
	var errs api.ErrorList
	refuse := func(hp hostPort, other api.Key) {
		holder := "a service of another project"
		if other.Project == self.Project {
			holder = "service " + other.Name
		}
		errs = append(errs, api.Invalid(api.Path("spec.ports").Index(hp.index).Child("hostPort"), hp.port,
			fmt.Sprintf("host port %s is already published by %s", hp, holder)))
	}
	for key, claims := range stream {
		if key == self {
			continue
		}
		for _, hp := range added {
			for _, c := range claims {
				if hp.clash(c) {
					refuse(hp, key)
				}
			}
		}
	}
	if len(errs) == 0 {
		err := store.Each(ctx, s.store.Services(), store.ListOptions{}, func(svc *api.Service) {
			if key := api.KeyOf(svc); key == self || svc.Metadata.DeletionTimestamp != nil {
				return
			}
			for _, hp := range added {
				for _, c := range hostPortsOf(svc) {
					if hp.clash(c) {
						refuse(hp, api.KeyOf(svc))
						return
					}
				}
			}
		})
		if err != nil {
			return fmt.Errorf("check host ports: %w", err)
		}
	}
	if stream != nil {
		stream[self] = hostPortsOf(next)
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	return nil
}
