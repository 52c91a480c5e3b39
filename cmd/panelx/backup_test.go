package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testenv/seaweedfs"
	"github.com/panelx/panelx/internal/testimage"
)

// backupEnv is a server with backups, a workload mounting volumes, and a
// real S3 server.
type backupEnv struct {
	*cliEnv
	project, app, backupDir, metrics string
}

func (b *backupEnv) put(t *testing.T, path string, body []byte) {
	t.Helper()
	var lastErr error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		req, _ := http.NewRequest("PUT", b.app+"/files/"+path, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		lastErr = err
	}
	t.Fatalf("workload PUT %s: %v", path, lastErr)
}

// get reads a file through the workload, waiting for it to answer (a
// restore stops and starts it).
func (b *backupEnv) get(t *testing.T, path string) []byte {
	t.Helper()
	var lastErr error
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		resp, err := http.Get(b.app + "/files/" + path)
		if err == nil {
			data, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && rerr == nil {
				return data
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, data)
		}
		lastErr = err
	}
	t.Fatalf("workload GET %s: %v", path, lastErr)
	return nil
}

func (b *backupEnv) runs(t *testing.T, volume string) []api.BackupRun {
	t.Helper()
	var runs []api.BackupRun
	if err := json.Unmarshal([]byte(b.mustRun("backup", "list", volume, "-p", b.project, "-o", "json")), &runs); err != nil {
		t.Fatal(err)
	}
	return runs
}

func (b *backupEnv) newest(t *testing.T, volume string, op api.BackupOp) api.BackupRun {
	t.Helper()
	for _, r := range b.runs(t, volume) {
		if r.Op == op {
			return r
		}
	}
	t.Fatalf("no %s run of %s", op, volume)
	return api.BackupRun{}
}

func (b *backupEnv) metric(t *testing.T, prefix string) string {
	t.Helper()
	body := httpBody(t, b.metrics)
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(strings.TrimPrefix(line, prefix))
		}
	}
	return ""
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBackupEndToEnd: a volume written by the workload is backed up to a
// local directory and to S3 (SeaweedFS), with a hook that runs before the
// copy; the data changes; a restore brings back the original bytes, which
// the workload reads. A damaged archive is refused with the volume
// untouched; an unreachable target and a full disk fail with the reason,
// the metric and the event, never Succeeded; retention removes exactly the
// expired archives.
func TestBackupEndToEnd(t *testing.T) {
	backupDir := t.TempDir()
	metricsPort := freeTCPPort(t)
	e := newSealedCLIEnv(t, "PANELX_BACKUP_DIR="+backupDir, "PANELX_BACKUP_TICK=200ms",
		fmt.Sprintf("PANELX_METRICS_LISTEN=127.0.0.1:%d", metricsPort))
	s3 := seaweedfs.Start(t, "backups")
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	port := freeTCPPort(t)
	b := &backupEnv{cliEnv: e, project: uniqueName("bk"), app: fmt.Sprintf("http://127.0.0.1:%d", port), backupDir: backupDir,
		metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)}

	// A full disk: a 1 MiB tmpfs where the "full" local target lives.
	full := filepath.Join(backupDir, b.project, "full")
	if err := os.MkdirAll(full, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", full, "tmpfs", 0, "size=1m"); err != nil {
		testenv.Missing(t, "a tmpfs for the full-disk case (needs root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(full, syscall.MNT_DETACH) })

	e.mustRun("apply", "--wait", "--timeout", "180s", "-f", e.write("shop.yaml", fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Project
metadata: {name: %[1]s}
---
apiVersion: panelx.dev/v1
kind: Secret
metadata: {project: %[1]s, name: s3}
spec: {data: {accessKeyID: %[4]s, secretAccessKey: %[5]s}}
---
apiVersion: panelx.dev/v1
kind: Volume
metadata: {project: %[1]s, name: data}
spec:
  backup:
    target: {local: {path: nightly}}
    retention: {keepLast: 2}
    hook: {service: web, command: [/testapp, -copy, /vol/data/live.db, /vol/data/dump.sql]}
---
apiVersion: panelx.dev/v1
kind: Volume
metadata: {project: %[1]s, name: blob}
spec:
  backup:
    target: {s3: {endpoint: "%[6]s", bucket: backups, prefix: panelx, insecure: true, credentialsSecret: s3}}
---
apiVersion: panelx.dev/v1
kind: Volume
metadata: {project: %[1]s, name: dead}
spec:
  backup:
    target: {s3: {endpoint: "127.0.0.1:%[7]d", bucket: backups, insecure: true, credentialsSecret: s3}}
    deadline: 20s
---
apiVersion: panelx.dev/v1
kind: Volume
metadata: {project: %[1]s, name: big}
spec:
  backup:
    target: {local: {path: full}}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: web}
spec:
  image: %[2]s
  env: [{name: DATA_DIR, value: /vol}]
  ports: [{containerPort: 8080, hostPort: %[3]d, hostIP: 127.0.0.1}]
  volumes:
  - {name: data, mountPath: /vol/data}
  - {name: blob, mountPath: /vol/blob}
  - {name: dead, mountPath: /vol/dead}
  - {name: big, mountPath: /vol/big}
`, b.project, img, port, seaweedfs.AccessKey, seaweedfs.SecretKey, s3.Endpoint, freeTCPPort(t))))

	original := randomBytes(t, 300<<10)
	blob := randomBytes(t, 2<<20)
	b.put(t, "data/live.db", original)
	b.put(t, "blob/obj.bin", blob)
	b.put(t, "dead/x", []byte("x"))
	b.put(t, "big/noise", randomBytes(t, 4<<20)) // incompressible: more than the tmpfs holds

	// Backups to the local directory (with the hook) and to S3.
	out := b.mustRun("backup", "create", "data", "-p", b.project, "--wait", "--timeout", "120s")
	if !strings.Contains(out, "Succeeded") {
		t.Fatalf("backup create: %s", out)
	}
	first := b.newest(t, "data", api.BackupOpBackup)
	if first.Phase != api.BackupSucceeded || first.Bytes == 0 || len(first.SHA256) != 64 || !strings.HasPrefix(first.Key, "data/") {
		t.Fatalf("first backup %+v", first)
	}
	archive := filepath.Join(backupDir, b.project, "nightly", first.Key)
	if fi, err := os.Stat(archive); err != nil || fi.Size() != first.Bytes {
		t.Fatalf("archive %s: %v", archive, err)
	}
	if _, err := os.Stat(archive + ".json"); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	b.mustRun("backup", "create", "blob", "-p", b.project, "--wait", "--timeout", "120s")
	s3run := b.newest(t, "blob", api.BackupOpBackup)
	if s3run.Phase != api.BackupSucceeded || !strings.HasPrefix(s3run.Target, "s3://backups/panelx") {
		t.Fatalf("s3 backup %+v", s3run)
	}
	cli, err := s3.Client()
	if err != nil {
		t.Fatal(err)
	}
	info, err := cli.StatObject(context.Background(), "backups", "panelx/"+s3run.Key, minio.StatObjectOptions{})
	if err != nil || info.Size != s3run.Bytes {
		t.Fatalf("S3 object %s: %+v %v", s3run.Key, info, err)
	}
	if v := b.metric(t, fmt.Sprintf(`panelx_backup_last_success_timestamp_seconds{project="%s",volume="data"}`, b.project)); v == "" || v == "0" {
		t.Errorf("last success metric: %q", v)
	}

	// The data changes; restores bring back the original bytes.
	b.put(t, "data/live.db", []byte("changed"))
	b.put(t, "blob/obj.bin", []byte("changed too"))
	b.mustRun("backup", "restore", "data", "-p", b.project, "--from", first.ID, "--overwrite", "--wait", "--timeout", "180s")
	if got := b.get(t, "data/live.db"); !bytes.Equal(got, original) {
		t.Fatalf("restored live.db: %d bytes, want the original %d", len(got), len(original))
	}
	// The hook ran before the copy: its dump is in the archive.
	if got := b.get(t, "data/dump.sql"); !bytes.Equal(got, original) {
		t.Fatalf("restored dump.sql: %d bytes", len(got))
	}
	b.mustRun("backup", "restore", "blob", "-p", b.project, "--from", s3run.ID, "--overwrite", "--wait", "--timeout", "180s")
	if got := b.get(t, "blob/obj.bin"); !bytes.Equal(got, blob) {
		t.Fatalf("restored obj.bin from S3: %d bytes", len(got))
	}
	// Into a new volume: created by the restore, holding the archive's bytes.
	b.mustRun("backup", "restore", "blob", "-p", b.project, "--from", s3run.ID, "--to", "blob-copy", "--wait", "--timeout", "180s")
	copied := filepath.Join(t.TempDir(), "obj.bin")
	b.mustRun("cp", "blob-copy:obj.bin", copied, "-p", b.project)
	if got, err := os.ReadFile(copied); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("obj.bin restored into a new volume: %d bytes, %v", len(got), err)
	}
	if out, code := b.run("", "backup", "restore", "blob", "-p", b.project, "--from", s3run.ID, "--to", "blob-copy"); code == 0 || !strings.Contains(out, "overwrite") {
		t.Errorf("restore into an existing volume without --overwrite: %d %s", code, out)
	}
	events := b.mustRun("events", "-p", b.project, "--limit", "200")
	for _, want := range []string{"BackupHookSucceeded", "StoppedForRestore", "StartedAfterRestore", "Restored"} {
		if !strings.Contains(events, want) {
			t.Errorf("events lack %s:\n%s", want, events)
		}
	}
	// Without --overwrite a restore is refused.
	if out, code := b.run("", "backup", "restore", "data", "-p", b.project, "--from", first.ID); code == 0 || !strings.Contains(out, "overwrite") {
		t.Errorf("restore without --overwrite: %d %s", code, out)
	}

	// A damaged archive is refused, and the volume keeps what it has.
	b.put(t, "data/live.db", []byte("current"))
	raw, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0x55
	if err := os.WriteFile(archive, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := b.run("", "backup", "restore", "data", "-p", b.project, "--from", first.ID, "--overwrite", "--wait", "--timeout", "120s"); code == 0 || !strings.Contains(out, "damaged") {
		t.Errorf("restore of a damaged archive: %d %s", code, out)
	}
	if got := b.get(t, "data/live.db"); string(got) != "current" {
		t.Errorf("the volume changed after a refused restore: %q", got)
	}

	// An unreachable target and a full disk: Failed with the reason, the
	// metric and a Warning event; never Succeeded.
	for _, tc := range []struct{ volume, reason string }{{"dead", "connect"}, {"big", "no space left"}} {
		out, code := b.run("", "backup", "create", tc.volume, "-p", b.project, "--wait", "--timeout", "120s")
		if code == 0 || !strings.Contains(out, tc.reason) {
			t.Errorf("backup of %s: %d %s", tc.volume, code, out)
		}
		for _, r := range b.runs(t, tc.volume) {
			if r.Phase == api.BackupSucceeded {
				t.Errorf("%s: a run Succeeded: %+v", tc.volume, r)
			}
		}
		if v := b.metric(t, fmt.Sprintf(`panelx_backup_failures_total{kind="backup",project="%s",volume="%s"}`, b.project, tc.volume)); v != "1" {
			t.Errorf("%s: failures metric %q", tc.volume, v)
		}
		if !strings.Contains(b.mustRun("events", "-p", b.project, "--limit", "200"), "BackupFailed") {
			t.Errorf("%s: no BackupFailed event", tc.volume)
		}
		vol := b.mustRun("get", "volume", tc.volume, "-p", b.project, "-o", "json")
		if !strings.Contains(vol, `"BackupHealthy"`) || !strings.Contains(vol, `"BackupFailed"`) {
			t.Errorf("%s: no BackupHealthy=False condition:\n%s", tc.volume, vol)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(full, "big")); len(ents) != 0 {
		t.Errorf("the full disk kept %d file(s) of a failed backup", len(ents))
	}

	// Retention keepLast 2: after two more backups, exactly the oldest of
	// the three is removed (its archive and manifest), the others stay.
	for range 2 {
		b.mustRun("backup", "create", "data", "-p", b.project, "--wait", "--timeout", "120s")
	}
	var kept, pruned []api.BackupRun
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		kept, pruned = nil, nil
		for _, r := range b.runs(t, "data") {
			if r.Op == api.BackupOpBackup && r.Phase == api.BackupSucceeded {
				if r.Pruned != nil {
					pruned = append(pruned, r)
				} else {
					kept = append(kept, r)
				}
			}
		}
		if len(pruned) == 1 || time.Now().After(deadline) {
			break
		}
	}
	if len(kept) != 2 || len(pruned) != 1 || pruned[0].ID != first.ID {
		t.Fatalf("retention kept %d, pruned %d (want the first, %s)", len(kept), len(pruned), first.ID)
	}
	if _, err := os.Stat(archive); !os.IsNotExist(err) {
		t.Errorf("the pruned archive is still there: %v", err)
	}
	for _, r := range kept {
		if _, err := os.Stat(filepath.Join(backupDir, b.project, "nightly", r.Key)); err != nil {
			t.Errorf("kept archive %s: %v", r.Key, err)
		}
	}
}

// TestBackupKilledMidway: a server killed (SIGKILL) in the middle of a
// backup leaves no archive marked good; the next server records the run
// as Failed.
func TestBackupKilledMidway(t *testing.T) {
	backupDir := t.TempDir()
	e := newCLIEnv(t, "PANELX_BACKUP_DIR="+backupDir, "PANELX_BACKUP_TICK=200ms")
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	port := freeTCPPort(t)
	b := &backupEnv{cliEnv: e, project: uniqueName("bkk"), app: fmt.Sprintf("http://127.0.0.1:%d", port)}
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
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: web}
spec:
  image: %[2]s
  env: [{name: DATA_DIR, value: /data}]
  ports: [{containerPort: 8080, hostPort: %[3]d, hostIP: 127.0.0.1}]
  volumes: [{name: data, mountPath: /data}]
`, b.project, img, port)))
	chunk := randomBytes(t, 16<<20)
	for i := range 12 { // 192 MiB of incompressible data: seconds of work
		b.put(t, fmt.Sprintf("f%02d", i), chunk)
	}
	run := b.mustRun("backup", "create", "data", "-p", b.project)
	id := strings.Fields(run)[1]
	dir := filepath.Join(backupDir, b.project, "data")
	var partial string
	for deadline := time.Now().Add(60 * time.Second); partial == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ents, _ := os.ReadDir(dir)
		for _, en := range ents {
			if fi, err := en.Info(); err == nil && strings.Contains(en.Name(), ".partial-") && fi.Size() > 1<<20 {
				partial = en.Name()
			}
		}
	}
	if partial == "" {
		t.Fatal("the backup never got under way")
	}
	if err := e.server.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = e.server.Wait()
	ents, _ := os.ReadDir(dir)
	for _, en := range ents {
		if !strings.Contains(en.Name(), ".partial-") {
			t.Errorf("after the kill the target holds %s, which is not a temporary object", en.Name())
		}
	}
	// A new server (same database) ends the run as Failed, never Succeeded.
	server, base, logs := startServer(t, e.bin, "PANELX_DATABASE_URL="+e.dbURL, "PANELX_DATA_DIR="+t.TempDir(),
		"PANELX_BACKUP_DIR="+backupDir, "PANELX_BACKUP_TICK=200ms")
	defer func() {
		if t.Failed() {
			t.Logf("second server log:\n%s", logs)
		}
	}()
	_ = server
	e.env[0] = "PANELX_SERVER=" + base
	var got api.BackupRun
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		got = b.newest(t, "data", api.BackupOpBackup)
		if got.Phase.Finished() {
			break
		}
	}
	if got.ID != id || got.Phase != api.BackupFailed || !strings.Contains(got.Reason, "interrupted") {
		t.Fatalf("run after the kill: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, strings.TrimSuffix(partial, partial[strings.Index(partial, ".partial-"):])+".json")); err == nil {
		t.Error("a manifest exists for the killed run's archive")
	}
}
