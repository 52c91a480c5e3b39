package main

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/jackc/pgx/v5"

	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testenv/pgserver"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store/postgres"
)

// twoServers is two `panelx server` processes on one PostgreSQL database.
type twoServers struct {
	t     *testing.T
	dbURL string
	procs [2]*exec.Cmd
	bases [2]string
	logs  [2]*syncLog
}

func startTwoServers(t *testing.T, bin, dbURL string) *twoServers {
	t.Helper()
	ts := &twoServers{t: t, dbURL: dbURL}
	for i := range 2 {
		ts.procs[i], ts.bases[i], ts.logs[i] = startServer(t, bin, "PANELX_DATABASE_URL="+dbURL, "PANELX_DATA_DIR="+t.TempDir(),
			"PANELX_CONTAINER_METRICS=false")
		i := i
		t.Cleanup(func() {
			_ = ts.procs[i].Process.Signal(syscall.SIGCONT)
			if t.Failed() {
				t.Logf("server %d log:\n%s", i, ts.logs[i])
			}
		})
	}
	return ts
}

var leaderRe = regexp.MustCompile(`"msg":"acting as the leader","epoch":(\d+)`)

// leader returns which server leads and its epoch, waiting for one.
func (ts *twoServers) leader(exclude int) (int, int64) {
	ts.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		epoch, err := leaseEpoch(ts.dbURL)
		if err == nil {
			for i := range 2 {
				if i == exclude {
					continue
				}
				for _, m := range leaderRe.FindAllStringSubmatch(ts.logs[i].String(), -1) {
					if e, _ := strconv.ParseInt(m[1], 10, 64); e == epoch {
						return i, epoch
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	ts.t.Fatal("no server leads")
	return -1, 0
}

func leaseEpoch(dbURL string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var epoch int64
	err = conn.QueryRow(ctx, `SELECT epoch FROM panelx.leases WHERE name = 'controller' AND expires_at > now()`).Scan(&epoch)
	return epoch, err
}

// containerCreates records the epoch label of every container created by
// this installation from now on.
type containerCreates struct {
	mu     sync.Mutex
	epochs []string
	cancel context.CancelFunc
}

func watchCreates(t *testing.T, instance string) *containerCreates {
	t.Helper()
	docker := testenv.Docker(t)
	ctx, cancel := context.WithCancel(context.Background())
	cc := &containerCreates{cancel: cancel}
	t.Cleanup(cancel)
	msgs, errs := docker.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", "container"), filters.Arg("event", "create"),
		filters.Arg("label", reconcile.LabelInstance+"="+instance))})
	go func() {
		for {
			select {
			case m := <-msgs:
				cc.mu.Lock()
				cc.epochs = append(cc.epochs, m.Actor.Attributes[reconcile.LabelEpoch])
				cc.mu.Unlock()
			case <-errs:
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // subscribed
	return cc
}

func (cc *containerCreates) taken() []string {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return append([]string(nil), cc.epochs...)
}

// TestPausedLeaderIsFenced: two servers on one database. The leader is
// paused (SIGSTOP); the stand-by takes the lease once it expires and
// converges a new change; when the old leader resumes (SIGCONT) it makes
// no mutating Docker call — no container is created with its epoch — and
// stands down.
func TestPausedLeaderIsFenced(t *testing.T) {
	docker := testenv.Docker(t)
	dbURL := testenv.NewDatabase(t)
	bin := buildPanelx(t)
	// Registered before the servers start, so it runs after they are
	// killed: a server still running would re-create what it removes.
	var instance string
	t.Cleanup(func() {
		if instance != "" {
			testenv.RemoveLabelled(docker, reconcile.LabelInstance+"="+instance)
		}
	})
	ts := startTwoServers(t, bin, dbURL)
	st, err := postgres.Open(context.Background(), dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	instance, err = st.InstallationID(context.Background())
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "token", "create", "--user", "alice", "--database-url", dbURL).Output()
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(out))
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))

	old, oldEpoch := ts.leader(-1)
	standby := 1 - old
	api := apiClient{t: t, base: ts.bases[standby], token: token}
	project := uniqueName("shop")
	api.must(201, "POST", "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": project}})
	svc := func(name string, replicas int) map[string]any {
		return map[string]any{"metadata": map[string]any{"name": name}, "spec": map[string]any{"image": img, "replicas": replicas}}
	}
	api.must(201, "POST", "/api/v1/projects/"+project+"/services", svc("first", 2))
	waitReadyAPI(t, api, project, "first", time.Minute)

	// Pause the leader, then change things through the stand-by.
	if err := ts.procs[old].Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	api.must(201, "POST", "/api/v1/projects/"+project+"/services", svc("second", 2))
	api.must(200, "PUT", "/api/v1/projects/"+project+"/services/first", svc("first", 3))
	newLeader, newEpoch := ts.leader(old)
	took := time.Since(paused)
	if newLeader != standby || newEpoch <= oldEpoch {
		t.Fatalf("after the pause: leader %d epoch %d (was %d epoch %d)", newLeader, newEpoch, old, oldEpoch)
	}
	waitReadyAPI(t, api, project, "second", time.Minute)
	waitReadyAPI(t, api, project, "first", time.Minute)
	t.Logf("leader paused: the stand-by took the lease after %v and converged the change after %v", took, time.Since(paused))
	if took > 15*time.Second {
		t.Errorf("takeover took %v, more than 15 s", took)
	}

	// Resume the old leader with work for it pending: it must do nothing.
	creates := watchCreates(t, instance)
	time.Sleep(3 * time.Second) // the old leader stays paused a while longer
	if err := ts.procs[old].Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	api.must(201, "POST", "/api/v1/projects/"+project+"/services", svc("third", 1))
	waitReadyAPI(t, api, project, "third", time.Minute)
	time.Sleep(3 * time.Second)
	for _, e := range creates.taken() {
		if e != strconv.FormatInt(newEpoch, 10) {
			t.Errorf("a container was created with epoch %q after the old leader (epoch %d) resumed; the leader's is %d", e, oldEpoch, newEpoch)
		}
	}
	if n := len(creates.taken()); n == 0 {
		t.Error("no container creation seen at all: the check saw nothing")
	}
	if !strings.Contains(ts.logs[old].String(), "standing down") {
		t.Errorf("the resumed leader did not stand down:\n%s", ts.logs[old])
	}
}

// waitReadyAPI waits until a service is Ready at its generation with every
// old container gone.
func waitReadyAPI(t *testing.T, c apiClient, project, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		status, _ := c.do("GET", "/api/v1/projects/"+project+"/services/"+name, nil)
		if status == 200 {
			s := c.service(project, name)
			if reconcile.ServiceReady(&s) {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s/%s never Ready", project, name)
}

// TestDatabaseRestartsUnderReplacements: two servers on one PostgreSQL
// that restarts five times while a service's spec keeps changing faster
// than its replacements become ready. A replica never has more than one
// extra container, and containers are created by one term at a time
// (their epochs never go back).
func TestDatabaseRestartsUnderReplacements(t *testing.T) {
	docker := testenv.Docker(t)
	pg := pgserver.Start(t)
	dbURL := pg.NewDatabase(t)
	bin := buildPanelx(t)
	// Registered before the servers start, so it runs after they are
	// killed: a server still running would re-create what it removes.
	var instance string
	t.Cleanup(func() {
		if instance != "" {
			testenv.RemoveLabelled(docker, reconcile.LabelInstance+"="+instance)
		}
	})
	ts := startTwoServers(t, bin, dbURL)
	st, err := postgres.Open(context.Background(), dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	instance, err = st.InstallationID(context.Background())
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "token", "create", "--user", "alice", "--database-url", dbURL).Output()
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(out))
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	apis := []apiClient{{t: t, base: ts.bases[0], token: token}, {t: t, base: ts.bases[1], token: token}}
	project := uniqueName("shop")
	apis[0].must(201, "POST", "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": project}})
	spec := func(v int) map[string]any {
		return map[string]any{"metadata": map[string]any{"name": "web"}, "spec": map[string]any{"image": img, "replicas": 2,
			"env":         []any{map[string]any{"name": "V", "value": strconv.Itoa(v)}},
			"healthcheck": map[string]any{"command": []string{"/testapp", "-check"}, "interval": "1s"}}}
	}
	apis[0].must(201, "POST", "/api/v1/projects/"+project+"/services", spec(0))
	waitReadyAPI(t, apis[0], project, "web", time.Minute)

	// Watch: containers per replica, and the epochs of creates in order.
	creates := watchCreates(t, instance)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu       sync.Mutex
		maxPer   int
		overflow []string
	)
	go func() {
		for ctx.Err() == nil {
			cs, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
				filters.Arg("label", reconcile.LabelInstance+"="+instance), filters.Arg("label", reconcile.LabelService+"=web"))})
			if err == nil {
				per := map[string][]string{}
				for _, c := range cs {
					r := c.Labels[reconcile.LabelReplica]
					per[r] = append(per[r], strings.TrimPrefix(c.Names[0], "/")+"("+c.State+")")
				}
				mu.Lock()
				for _, names := range per {
					maxPer = max(maxPer, len(names))
					if len(names) > 2 {
						overflow = append(overflow, strings.Join(names, " "))
					}
				}
				mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	// Changes every 300 ms through either server (503s while the database
	// restarts are expected and retried by the next change).
	var version atomic.Int64
	go func() {
		for i := 1; ctx.Err() == nil; i++ {
			status, _ := apis[i%2].do("PUT", "/api/v1/projects/"+project+"/services/web", spec(i))
			if status == 200 {
				version.Store(int64(i))
			}
			time.Sleep(300 * time.Millisecond)
		}
	}()
	for i := 0; i < 5; i++ {
		time.Sleep(2 * time.Second)
		pg.Restart(t)
	}
	time.Sleep(2 * time.Second)
	cancel()
	final := int(version.Load())
	apis[0].must(200, "PUT", "/api/v1/projects/"+project+"/services/web", spec(final+1))
	waitReadyAPI(t, apis[0], project, "web", 2*time.Minute)

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d changes applied; at most %d containers per replica; epochs of the creates: %v", final, maxPer, creates.taken())
	if len(overflow) > 0 {
		t.Errorf("a replica had more than one extra container: %v", overflow)
	}
	var last int64
	for _, e := range creates.taken() {
		n, _ := strconv.ParseInt(e, 10, 64)
		if n < last {
			t.Errorf("a container of epoch %d was created after one of epoch %d: two actors", n, last)
		}
		last = max(last, n)
	}
}
