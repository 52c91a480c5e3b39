package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/panelx/panelx/internal/testimage"
)

// BenchmarkComposeUploadToServed measures a Compose service built from a
// local directory (a 100 MB context of random, incompressible files):
//
//   - change → new version served: `panelx apply -f compose.yaml` (pack,
//     upload, build, roll out) until it serves, against the same by hand
//     (`docker build` of the directory, `docker run` until it serves),
//     interleaved;
//
//   - the server's peak memory (VmHWM) before and after those uploads,
//     which must be streamed to disk, not held.
//
//     go test -run '^$' -bench ComposeUploadToServed -benchtime 1x ./cmd/panelx/
//
// PANELX_BENCH_ROUNDS sets the interleaved rounds (default 3).
func BenchmarkComposeUploadToServed(b *testing.B) {
	rounds := benchRounds()
	e := newCLIEnv(b)
	reg := testimage.StartRegistry(b, testimage.RegistryOptions{})
	base := reg.Push(b, uniqueName("bench")+"/base:1", testimage.Image(b, testimage.ImageOptions{}))
	dir := b.TempDir()
	app := filepath.Join(dir, "app")
	for name, data := range randomFiles(b, 100, 1<<20) {
		p := filepath.Join(app, "deps", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	writeFile(b, filepath.Join(app, "Dockerfile"), "FROM "+base+"\nCOPY deps/ /deps/\nCOPY version.txt /data/version.txt\n")
	writeFile(b, filepath.Join(app, "version.txt"), "v0")
	project, port := uniqueName("bench"), freeTCPPort(b)
	compose := filepath.Join(dir, "compose.yaml")
	writeFile(b, compose, fmt.Sprintf("name: %s\nservices:\n  app:\n    build: ./app\n    environment: {DATA_DIR: /data}\n    ports: [\"127.0.0.1:%d:8080\"]\n", project, port))
	e.mustRun("apply", "-f", compose, "--wait", "--timeout", "300s")
	before := peakRSS(b, e.server.Process.Pid)

	url := fmt.Sprintf("http://127.0.0.1:%d/files/version.txt", port)
	serves := func(url, want string) { waitServes(b, url, want) }
	var panelx, manual []time.Duration
	for i := 1; i <= rounds; i++ {
		version := fmt.Sprintf("v%d", i)
		writeFile(b, filepath.Join(app, "version.txt"), version)
		start := time.Now()
		e.mustRun("apply", "-f", compose) // then until it serves, as by hand
		serves(url, version)
		panelx = append(panelx, time.Since(start))

		start = time.Now()
		tag := "panelx-bench-manual/upload:" + version
		run(b, "docker", "build", "--quiet", "-t", tag, app)
		name := uniqueName("manual")
		hostPort := freeTCPPort(b)
		run(b, "docker", "run", "-d", "--name", name, "-e", "DATA_DIR=/data", "-p", fmt.Sprintf("127.0.0.1:%d:8080", hostPort), tag)
		serves(fmt.Sprintf("http://127.0.0.1:%d/files/version.txt", hostPort), version)
		manual = append(manual, time.Since(start))
		_ = exec.Command("docker", "rm", "-f", name).Run()
		_ = exec.Command("docker", "rmi", "-f", tag).Run()
	}
	after := peakRSS(b, e.server.Process.Pid)
	b.ReportMetric(median(panelx).Seconds(), "panelx-s")
	b.ReportMetric(median(manual).Seconds(), "manual-s")
	b.ReportMetric(median(panelx).Seconds()/median(manual).Seconds(), "panelx/manual")
	b.ReportMetric(float64(before)/(1<<20), "peak-rss-before-MiB")
	b.ReportMetric(float64(after)/(1<<20), "peak-rss-after-MiB")
	b.Logf("change → served, 100 MB context: panelx apply %v, by hand %v (medians of %d interleaved rounds: %v vs %v)", median(panelx), median(manual), rounds, panelx, manual)
	b.Logf("server peak RSS %.1f MiB before the uploads, %.1f MiB after", float64(before)/(1<<20), float64(after)/(1<<20))
}
