// Package conformance is the end-to-end suite every runtime passes, as
// store/storetest is for the stores: a controller on a fresh store drives
// the runtime under test, and the suite checks what the services report
// and what the engine holds — through the reconcile.Runtime interface
// itself wherever it can, and through a Target's Outside handle for what a
// person at the engine does behind PanelX's back.
//
// It runs on the Docker Engine (controller tests, real Docker in CI) and on
// the in-memory runtime (seconds: what takes time there is the loop's own
// waiting — MinReadyTime, pull backoff). A runtime that does not
// pass a test yet names it in Target.Pending with the reason: the test is
// skipped with that reason, never silently.
package conformance

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"k8s.io/client-go/util/workqueue"

	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store"
)

// Target is one runtime under test, with a world of its own: a fresh store,
// an installation ID no other test uses, a registry.
type Target struct {
	// Instance is the installation the runtime acts for.
	Instance string
	Runtime  reconcile.Runtime
	// Store is empty and migrated; the target closes it.
	Store store.Store
	// Registry serves the test images.
	Registry Registry
	// PrivateRegistry starts a registry that wants these credentials.
	PrivateRegistry func(t testing.TB, username, password string) Registry
	Outside         Outside
	// HTTP: replicas run the test image's program and answer on the
	// host ports they publish (not in memory).
	HTTP bool
	// HostIP is the address services publish ports on ("" means every
	// address: Swarm cannot bind one); tests reach them on 127.0.0.1.
	HostIP string
	// ReplicaName is the engine's name of replica index of a service
	// (default reconcile.ContainerName).
	ReplicaName func(project, service string, index int) string
	// Timeout bounds each wait (default 90 s).
	Timeout time.Duration
	// Pending names the tests this runtime does not pass yet, with why.
	Pending map[string]string
	// Configure, when set, adjusts the controller's options.
	Configure func(*controller.Options)
}

// Registry is where test images come from.
type Registry interface {
	Host() string
	// Push stores an image whose program reports APP_VERSION=version
	// under repo:tag of this registry (a push to a tag moves it) and
	// returns its reference.
	Push(t testing.TB, repoTag, version string) string
}

// Outside changes the engine as a person at it would: no owner check, no
// PanelX involved.
type Outside interface {
	// RemoveContainer is docker rm -f.
	RemoveContainer(ctx context.Context, id string) error
	// StopContainer is docker stop.
	StopContainer(ctx context.Context, id string) error
	// RemoveNetwork disconnects every container from the network and
	// removes it (docker network disconnect -f …; docker network rm).
	RemoveNetwork(ctx context.Context, name string) error
	// RunContainer pulls image and creates a container of it with this
	// name and labels (nil: none), started when start; the test image's
	// program sleeps with "-sleep".
	RunContainer(ctx context.Context, name, image string, labels map[string]string, start bool) (string, error)
	// Container says what a container (anyone's) is now.
	Container(ctx context.Context, id string) (name string, running bool, err error)
	// Squat makes an object of no installation that holds the name the
	// runtime needs for the service's first replica (a container's name
	// on one engine, a service's on Swarm); held says whether it is still
	// there, unchanged.
	Squat(ctx context.Context, project, service, image string) (held func(context.Context) error, err error)
}

// Factory makes a Target for one test; cleanups go to t.Cleanup.
type Factory func(t *testing.T) Target

type test struct {
	name string
	fn   func(e *env)
}

var tests = []test{
	{"ServiceLifecycle", testServiceLifecycle},
	{"ScaleAndStartFirst", testScaleAndStartFirst},
	{"RepairsDrift", testRepairsDrift},
	{"RepairsNetworkDrift", testRepairsNetworkDrift},
	{"ForeignObjectsAreNeverTouched", testForeignObjects},
	{"ImageErrorsDegradeAndRecover", testImageErrors},
	{"PullAlwaysFollowsAMovedTag", testPullAlways},
	{"ProjectDeleteRemovesExactlyItsObjects", testProjectDelete},
	{"VolumeDeleteWaitsForUsers", testVolumeDeleteWaits},
}

// Tests are the names of the suite's tests.
func Tests() []string {
	var out []string
	for _, tc := range tests {
		out = append(out, tc.name)
	}
	return out
}

// Run runs the whole suite, each test in parallel on a Target of its own.
func Run(t *testing.T, newTarget Factory) {
	RunOnly(t, newTarget, Tests()...)
}

// RunOnly runs the named tests of the suite.
func RunOnly(t *testing.T, newTarget Factory, names ...string) {
	for _, tc := range tests {
		want := false
		for _, n := range names {
			want = want || n == tc.name
		}
		if !want {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := newTarget(t)
			if why, ok := tg.Pending[tc.name]; ok {
				t.Skipf("pending on this runtime: %s", why)
			}
			tc.fn(newEnv(t, tg))
		})
	}
}

// env is one test's world, with its controller running.
type env struct {
	t   *testing.T
	ctx context.Context
	Target
	log  *zap.Logger
	stop func()
}

func newEnv(t *testing.T, tg Target) *env {
	if tg.Timeout <= 0 {
		tg.Timeout = 90 * time.Second
	}
	if tg.ReplicaName == nil {
		tg.ReplicaName = reconcile.ContainerName
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, Target: tg, log: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))}
	return e
}

// options are fast settings for tests.
func (e *env) options() controller.Options {
	opts := controller.Options{
		Store:          e.Store,
		Runtime:        e.Runtime,
		Instance:       e.Instance,
		Log:            e.log,
		ResyncInterval: 30 * time.Second,
		PullInterval:   time.Second,
		RateLimiter:    workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Key](100*time.Millisecond, 2*time.Second),
	}
	if e.Configure != nil {
		e.Configure(&opts)
	}
	return opts
}

// start runs a controller until the test ends.
func (e *env) start() {
	e.t.Helper()
	c, err := controller.New(e.options())
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			e.t.Errorf("controller: %v", err)
		}
	}()
	e.t.Cleanup(func() { cancel(); <-done })
}
