package main

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testenv/gitserver"
	"github.com/panelx/panelx/internal/testimage"
)

// BenchmarkBuildPushToServed measures, in one run and interleaved:
//
//   - push → new version served: a commit and `panelx build`, until the
//     service serves it, against the same steps by hand (git clone,
//     docker build, docker run until it serves);
//
//   - a build whose dependency layer is unchanged (cache hit) against the
//     first build of that layer;
//
//   - the server's peak memory (VmHWM) before and after a build of a
//     200 MB context, which must be streamed, not held.
//
//     go test -run '^$' -bench BuildPushToServed -benchtime 1x ./cmd/panelx/
//
// PANELX_BENCH_ROUNDS sets the interleaved rounds (default 3).
func BenchmarkBuildPushToServed(b *testing.B) {
	rounds := benchRounds()
	e := newCLIEnv(b)
	reg := testimage.StartRegistry(b, testimage.RegistryOptions{})
	base := reg.Push(b, uniqueName("bench")+"/base:1", testimage.Image(b, testimage.ImageOptions{}))
	git := gitserver.Start(b, "")
	repo := git.Repo(b, "app")
	deps := randomFiles(b, 20, 1<<20) // a 20 MB "dependency" layer
	files := map[string][]byte{
		"Dockerfile":  []byte("FROM " + base + "\nCOPY deps/ /deps/\nCOPY version.txt /data/version.txt\n"),
		"version.txt": []byte("v0"),
	}
	for name, data := range deps {
		files["deps/"+name] = data
	}
	repo.Commit("main", "v0", files)
	project, port := uniqueName("bench"), freeTCPPort(b)
	e.mustRun("apply", "-f", e.write("app.yaml", fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Project
metadata: {name: %[1]s}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: app}
spec:
  build: {git: {url: %[2]q, ref: main}}
  env: [{name: DATA_DIR, value: /data}]
  ports: [{containerPort: 8080, hostPort: %[3]d, hostIP: 127.0.0.1}]
`, project, repo.URL, port)), "--wait", "--timeout", "300s")
	url := fmt.Sprintf("http://127.0.0.1:%d/files/version.txt", port)
	serves := func(url, want string) { waitServes(b, url, want) }
	buildTime := func() time.Duration {
		st := e.service(project, "app").Status.Build
		if st == nil || st.StartedAt == nil || st.FinishedAt == nil {
			b.Fatalf("no finished build: %+v", st)
		}
		return st.FinishedAt.Sub(*st.StartedAt)
	}
	first := buildTime() // the dependency layer built cold

	var panelx, manual, cached []time.Duration
	for i := 1; i <= rounds; i++ {
		version := fmt.Sprintf("v%d", i)
		// PanelX: a push and a build request, until the new version serves.
		start := time.Now()
		repo.Commit("main", version, map[string][]byte{"version.txt": []byte(version)})
		e.mustRun("build", "app", "-p", project)
		serves(url, version)
		panelx = append(panelx, time.Since(start))
		cached = append(cached, buildTime())

		// By hand: git clone, docker build, docker run until it serves.
		start = time.Now()
		dir := b.TempDir()
		run(b, "git", "clone", "--quiet", "--depth", "1", "--branch", "main", repo.URL, dir)
		tag := "panelx-bench-manual/app:" + version
		run(b, "docker", "build", "--quiet", "-t", tag, dir)
		hostPort := freeTCPPort(b)
		name := uniqueName("manual")
		run(b, "docker", "run", "-d", "--name", name, "-e", "DATA_DIR=/data", "-p", fmt.Sprintf("127.0.0.1:%d:8080", hostPort), tag)
		serves(fmt.Sprintf("http://127.0.0.1:%d/files/version.txt", hostPort), version)
		manual = append(manual, time.Since(start))
		_ = exec.Command("docker", "rm", "-f", name).Run()
		_ = exec.Command("docker", "rmi", "-f", tag).Run()
	}
	b.ReportMetric(median(panelx).Seconds(), "panelx-s")
	b.ReportMetric(median(manual).Seconds(), "manual-s")
	b.ReportMetric(median(panelx).Seconds()/median(manual).Seconds(), "panelx/manual")
	b.ReportMetric(first.Seconds(), "cold-build-s")
	b.ReportMetric(median(cached).Seconds(), "cached-build-s")
	b.Logf("push → served: panelx %v, by hand %v (medians of %d interleaved rounds: %v vs %v)", median(panelx), median(manual), rounds, panelx, manual)
	b.Logf("build: dependency layer cold %v, cached %v (%v)", first, median(cached), cached)

	// A 200 MB context: the server's peak memory before and after.
	before := peakRSS(b, e.server.Process.Pid)
	big := randomFiles(b, 200, 1<<20)
	bigFiles := map[string][]byte{"Dockerfile": []byte("FROM " + base + "\nCOPY version.txt /data/version.txt\n"), "version.txt": []byte("big")}
	for name, data := range big {
		bigFiles["big/"+name] = data
	}
	repo.Commit("main", "big", bigFiles)
	start := time.Now()
	e.mustRun("build", "app", "-p", project)
	serves(url, "big")
	after := peakRSS(b, e.server.Process.Pid)
	b.ReportMetric(float64(before)/(1<<20), "peak-rss-before-MiB")
	b.ReportMetric(float64(after)/(1<<20), "peak-rss-after-200MB-MiB")
	b.Logf("200 MB context: built and served in %v; server peak RSS %.1f MiB before, %.1f MiB after", time.Since(start), float64(before)/(1<<20), float64(after)/(1<<20))
	if st := e.service(project, "app").Status.Build; st.Phase != api.BuildSucceeded {
		b.Fatalf("the 200 MB build: %+v", st)
	}
}

// benchRounds is PANELX_BENCH_ROUNDS, the interleaved rounds of a
// benchmark against a peer (default 3).
func benchRounds() int {
	if n, err := strconv.Atoi(os.Getenv("PANELX_BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// waitServes waits until url answers want (at most 5 minutes).
func waitServes(tb testing.TB, url, want string) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if code, body := httpGetQuiet(url); code == 200 && body == want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s never served %q", url, want)
		}
	}
}

func randomFiles(tb testing.TB, n, size int) map[string][]byte {
	out := map[string][]byte{}
	for i := range n {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		out[fmt.Sprintf("part-%03d.bin", i)] = data
	}
	return out
}

func run(tb testing.TB, name string, args ...string) {
	tb.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// peakRSS is a process's peak resident set (VmHWM), in bytes.
func peakRSS(tb testing.TB, pid int) int64 {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	tb.Fatal("no VmHWM")
	return 0
}

func httpGetQuiet(url string) (int, string) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	data := make([]byte, 64)
	n, _ := resp.Body.Read(data)
	return resp.StatusCode, string(data[:n])
}
