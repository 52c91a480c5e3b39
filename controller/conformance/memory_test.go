package conformance_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panelx/panelx/controller/conformance"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/reconcile/memruntime"
	"github.com/panelx/panelx/store/sqlite"
)

// TestConformanceInMemory runs the suite on the in-memory runtime with the
// embedded store: the controller's whole loop, no engine.
func TestConformanceInMemory(t *testing.T) {
	conformance.Run(t, memoryTarget)
}

var privatePorts atomic.Int32

func memoryTarget(t *testing.T) conformance.Target {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	instance := "mem-" + hex.EncodeToString(b)
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "panelx.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := memruntime.NewRegistry()
	rt := memruntime.New(instance, reg)
	return conformance.Target{
		Instance: instance,
		Runtime:  rt,
		Store:    s,
		Registry: memRegistry{reg, "127.0.0.1:5000"},
		PrivateRegistry: func(t testing.TB, username, password string) conformance.Registry {
			host := fmt.Sprintf("127.0.0.1:%d", 6000+privatePorts.Add(1))
			reg.RequireAuth(host, username, password)
			return memRegistry{reg, host}
		},
		Outside: memOutside{rt.Outside()},
		Timeout: 20 * time.Second,
	}
}

type memRegistry struct {
	*memruntime.Registry
	host string
}

func (r memRegistry) Host() string { return r.host }

func (r memRegistry) Push(_ testing.TB, repoTag, version string) string {
	return r.Registry.Push(r.host+"/"+repoTag, version)
}

type memOutside struct{ memruntime.Outside }

func (o memOutside) RemoveContainer(_ context.Context, id string) error {
	return o.Outside.RemoveContainer(id)
}

func (o memOutside) StopContainer(_ context.Context, id string) error {
	return o.Outside.StopContainer(id)
}

func (o memOutside) RemoveNetwork(_ context.Context, name string) error {
	return o.RemoveNetworkForce(name)
}

func (o memOutside) RunContainer(_ context.Context, name, image string, labels map[string]string, start bool) (string, error) {
	if err := o.Pull(image); err != nil {
		return "", err
	}
	return o.Outside.RunContainer(name, image, labels, start)
}

func (o memOutside) Squat(ctx context.Context, project, service, image string) (func(context.Context) error, error) {
	name := reconcile.ContainerName(project, service, 0)
	id, err := o.RunContainer(ctx, name, image, nil, false)
	if err != nil {
		return nil, err
	}
	return func(context.Context) error {
		if c, ok := o.Inspect(id); !ok || c.Name != name {
			return fmt.Errorf("container %s gone or renamed", name)
		}
		return nil
	}, nil
}

func (o memOutside) Container(_ context.Context, id string) (string, bool, error) {
	c, ok := o.Inspect(id)
	if !ok {
		return "", false, fmt.Errorf("no such container %s", id)
	}
	return c.Name, c.State == "running", nil
}
