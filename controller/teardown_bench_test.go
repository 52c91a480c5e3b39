package controller_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store"
)

// BenchmarkTeardown100 (hot paths c): deleting a project of 100 running
// services until its row, containers and network are gone, against
// `docker compose down` of the same 100 containers (when a Compose v2
// binary is at $PANELX_BENCH_COMPOSE: build it from source into a
// temporary directory, see docs/architecture.md), interleaved, in the same
// run. (A third peer, 100 parallel `docker rm -f` of containers on the
// default bridge, deadlocked Engine 20.10's libnetwork here: it is not
// run.)
func BenchmarkTeardown100(b *testing.B) {
	const services = 100
	e := newEnv(b)
	opts := e.controllerOptions()
	if v := os.Getenv("BENCH_TEARDOWN_PARALLEL"); v != "" {
		opts.TeardownParallel, _ = strconv.Atoi(v)
	}
	e.startController(opts)
	img := e.image("bench/web:1", "1")
	compose := os.Getenv("PANELX_BENCH_COMPOSE")
	composeLabel := "bench.panelx.compose=" + e.instance
	b.Cleanup(func() { testenv.RemoveLabelled(e.docker, composeLabel) })
	w := watchReady(e)

	var panelx, composeDown []time.Duration
	composeStuck, networkStuck := 0, 0
	for i := 0; i < b.N; i++ {
		// PanelX: up (not timed), then delete the project.
		shop := e.uniq(fmt.Sprintf("td%d", i))
		e.createProject(shop)
		w.createReady(e, shop, services, img)
		start := time.Now()
		if _, err := e.store.Projects().Delete(e.ctx, api.Key{Name: shop}, store.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		var containersGone time.Time
		for {
			if containersGone.IsZero() && len(e.containersOf(reconcile.LabelProject+"="+shop)) == 0 {
				containersGone = time.Now()
			}
			_, err := e.store.Projects().Get(e.ctx, api.Key{Name: shop})
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			if time.Since(start) > 3*time.Minute && !containersGone.IsZero() {
				// Engine 20.10 sometimes keeps a stale endpoint on a
				// network whose containers were removed at once ("has
				// active endpoints", until dockerd restarts; Compose trips
				// on it too). PanelX retries and says so in the project's
				// events; the round is counted, not timed.
				b.Logf("round %d: containers gone after %v; the network is stuck in the engine: %v", i,
					containersGone.Sub(start).Round(time.Millisecond), lastEvent(e, shop))
				networkStuck++
				break
			}
			if time.Since(start) > 3*time.Minute {
				left := e.containersOf(reconcile.LabelProject + "=" + shop)
				svcs, _ := e.store.Services().List(e.ctx, store.ListOptions{Project: shop})
				var states []string
				for _, c := range left {
					states = append(states, c.Names[0]+" "+c.State+" "+c.Status)
				}
				b.Fatalf("project %s not removed after 3 minutes: %d service rows, containers %v", shop, len(svcs.Items), states)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if time.Since(start) < 3*time.Minute {
			panelx = append(panelx, time.Since(start))
		}
		b.Logf("round %d: containers gone after %v, project row after %v", i, containersGone.Sub(start).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		if n := len(e.containersOf(reconcile.LabelProject + "=" + shop)); n != 0 {
			b.Fatalf("%d containers left after the project was removed", n)
		}

		// Compose: the same 100 containers, up (not timed), down.
		if compose != "" {
			name := strings.ToLower(e.uniq(fmt.Sprintf("cd%d", i)))
			file := filepath.Join(b.TempDir(), "compose.yaml")
			var y strings.Builder
			y.WriteString("services:\n")
			for j := 0; j < services; j++ {
				fmt.Fprintf(&y, "  svc-%d:\n    image: %s\n    pull_policy: never\n    labels: {%q: %q}\n", j, img, "bench.panelx.compose", e.instance)
			}
			if err := os.WriteFile(file, []byte(y.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			run := func(args ...string) error {
				cmd := exec.CommandContext(e.ctx, compose, append([]string{"-f", file, "-p", name}, args...)...)
				if out, err := cmd.CombinedOutput(); err != nil {
					return fmt.Errorf("compose %v: %v\n%s", args, err, out)
				}
				return nil
			}
			if err := run("up", "-d", "--wait"); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			// Engine 20.10 may keep a stale endpoint ("network … has active
			// endpoints"): Compose then fails. Such a round is counted, not
			// timed, as PanelX's are.
			if err := run("down"); err != nil {
				composeStuck++
				b.Logf("round %d: compose down failed: %v", i, strings.SplitN(err.Error(), "\n", 2)[0])
			} else {
				composeDown = append(composeDown, time.Since(start))
			}
		}
	}
	if len(panelx) == 0 {
		b.Fatalf("no round removed its project (%d stuck on the engine)", networkStuck)
	}
	b.ReportMetric(ms(percentile(panelx, 50)), "panelx-p50-ms")
	b.ReportMetric(float64(networkStuck), "engine-stuck-networks")
	if len(composeDown) > 0 {
		b.ReportMetric(ms(percentile(composeDown, 50)), "compose-down-p50-ms")
		b.ReportMetric(float64(percentile(panelx, 50))/float64(percentile(composeDown, 50)), "panelx/compose")
		b.ReportMetric(float64(composeStuck), "compose-down-failed")
	} else {
		b.Log("PANELX_BENCH_COMPOSE not set: no Compose comparison")
	}
}

// containersOf lists the containers carrying a label, by Docker.
func (e *env) containersOf(label string) []container.Summary {
	e.t.Helper()
	cs, err := e.docker.ContainerList(e.ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", label))})
	if err != nil {
		e.t.Fatal(err)
	}
	return cs
}

// lastEvent is the newest event of a project, for a failure's message.
func lastEvent(e *env, project string) string {
	evs := e.events(project)
	if len(evs) == 0 {
		return "no event"
	}
	ev := evs[len(evs)-1]
	return ev.Reason + ": " + ev.Message
}
