package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/naming"
)

// BenchmarkBackup1GiB: a backup of a 1 GiB volume (half random bytes,
// half text-like) to the local target, against `tar -czf` of the same
// directory on the host, interleaved; and the peak memory of `panelx
// server` during the backups. Run with -benchtime 1x:
//
//	go test -run '^$' -bench Backup1GiB -benchtime 1x ./cmd/panelx/
func BenchmarkBackup1GiB(b *testing.B) {
	if _, err := exec.LookPath("tar"); err != nil {
		testenv.Missing(b, "tar")
	}
	backupDir := b.TempDir()
	e := newCLIEnv(b, "PANELX_BACKUP_DIR="+backupDir, "PANELX_BACKUP_TICK=100ms")
	reg := testimage.StartRegistry(b, testimage.RegistryOptions{})
	img := reg.Push(b, "shop/web:1", testimage.Image(b, testimage.ImageOptions{Version: "1"}))
	port := freeTCPPort(b)
	project := uniqueName("bkb")
	e.mustRun("apply", "--wait", "--timeout", "180s", "-f", e.write("shop.yaml", fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Project
metadata: {name: %[1]s}
---
apiVersion: panelx.dev/v1
kind: Volume
metadata: {project: %[1]s, name: data}
spec:
  backup:
    target: {local: {}}
    retention: {keepLast: 1}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: web}
spec:
  image: %[2]s
  env: [{name: DATA_DIR, value: /data}]
  ports: [{containerPort: 8080, hostPort: %[3]d, hostIP: 127.0.0.1}]
  volumes: [{name: data, mountPath: /data}]
`, project, img, port)))
	// The volume's directory on the host, for the peer.
	out, err := exec.Command("docker", "volume", "inspect", "-f", "{{.Mountpoint}}", naming.VolumeName(project, "data")).Output()
	if err != nil {
		b.Fatalf("docker volume inspect: %v", err)
	}
	mount := strings.TrimSpace(string(out))
	const fileSize, files = 64 << 20, 16
	words := strings.Fields("the quick brown fox jumps over a lazy dog while postgres writes pages of tuples into its heap " +
		"index btree vacuum checkpoint wal segment replica backup restore volume container service project panelx")
	rng := mrand.New(mrand.NewPCG(1, 2))
	for i := range files {
		f, err := os.Create(filepath.Join(mount, fmt.Sprintf("f%02d", i)))
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		if i%2 == 0 {
			buf := make([]byte, 1<<20)
			for range fileSize >> 20 {
				for j := range buf {
					buf[j] = byte(rng.Uint32())
				}
				_, _ = w.Write(buf)
			}
		} else {
			for n := 0; n < fileSize; {
				k, _ := w.WriteString(words[rng.IntN(len(words))] + " ")
				n += k
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	_ = exec.Command("sync").Run()

	// Sample the server's resident memory while the backups run.
	var peakRSS atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if kb := rssKiB(e.server.Process.Pid); kb > peakRSS.Load() {
				peakRSS.Store(kb)
			}
		}
	}()
	baseRSS := rssKiB(e.server.Process.Pid)
	const rounds = 3
	var ours, peer, server []time.Duration
	var archiveBytes int64
	peerDir := b.TempDir()
	b.ResetTimer()
	for r := range rounds {
		// PanelX: request → Succeeded (read back and verified).
		t0 := time.Now()
		out := e.mustRun("backup", "create", "data", "-p", project, "--wait", "--timeout", "30m")
		ours = append(ours, time.Since(t0))
		var runs []api.BackupRun
		if err := json.Unmarshal([]byte(e.mustRun("backup", "list", "data", "-p", project, "-o", "json", "--limit", "1")), &runs); err != nil || len(runs) == 0 {
			b.Fatalf("backup list: %v (%s)", err, out)
		}
		server = append(server, runs[0].FinishedAt.Sub(*runs[0].StartedAt))
		archiveBytes = runs[0].Bytes
		// The peer: tar -czf of the same directory on the host.
		t0 = time.Now()
		dst := filepath.Join(peerDir, fmt.Sprintf("peer-%d.tar.gz", r))
		if out, err := exec.Command("tar", "-czf", dst, "-C", mount, ".").CombinedOutput(); err != nil {
			b.Fatalf("tar: %v\n%s", err, out)
		}
		peer = append(peer, time.Since(t0))
		fi, _ := os.Stat(dst)
		b.Logf("round %d: panelx %v (server %v, archive %d bytes), tar -czf %v (%d bytes)", r+1, ours[r].Round(time.Millisecond),
			server[r].Round(time.Millisecond), archiveBytes, peer[r].Round(time.Millisecond), fi.Size())
		_ = os.Remove(dst)
	}
	b.StopTimer()
	close(stop)
	med := func(d []time.Duration) time.Duration {
		s := append([]time.Duration(nil), d...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	const gib = float64(files * fileSize)
	mbps := func(d time.Duration) float64 { return gib / d.Seconds() / (1 << 20) }
	b.ReportMetric(mbps(med(ours)), "panelx-MiB/s")
	b.ReportMetric(mbps(med(peer)), "tar-czf-MiB/s")
	b.ReportMetric(med(ours).Seconds()/med(peer).Seconds(), "time-ratio")
	b.ReportMetric(float64(peakRSS.Load())/1024, "server-peak-RSS-MiB")
	b.Logf("median: panelx %v (%.1f MiB/s; server-side run %v), tar -czf %v (%.1f MiB/s): panelx takes %.2fx tar's time; server RSS %d MiB before, peak %d MiB during",
		med(ours).Round(time.Millisecond), mbps(med(ours)), med(server).Round(time.Millisecond), med(peer).Round(time.Millisecond), mbps(med(peer)),
		med(ours).Seconds()/med(peer).Seconds(), baseRSS/1024, peakRSS.Load()/1024)
}

// rssKiB reads a process's resident set size (VmRSS) in KiB.
func rssKiB(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	return 0
}
