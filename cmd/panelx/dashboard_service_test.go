package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/panelx/panelx/internal/testenv/gitserver"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/web"
)

// TestDashboardService drives the apply box and a service's page in a real
// Chromium: manifests with a refused document show the API's per-document
// errors; valid ones show their diff, then apply, and the project page
// shows the service going to Ready without a reload. On the service's page
// log lines arrive (the image prints "tick N"), the CPU and memory
// sparklines get points from the metrics WebSocket, the terminal (xterm.js)
// runs a command and shows its output (and the API's reason when there is
// no shell), keys typed into it reach the command's TTY (Ctrl-C ends it),
// a refused rollback shows the API's problem, a rollback to an
// earlier revision applies, and a service built from source shows its
// build, its log, and builds again on request. The volume browser lists
// folders with hostile names, goes into them, downloads, uploads and
// replaces a file, and shows the API's refusal of a name. Apply with prune
// shows the deletion in the diff, then deletes. No URL ever carries the
// token, and no page logs a console error. Screenshots (20-…) go to
// $PANELX_TEST_ARTIFACTS.
func TestDashboardService(t *testing.T) {
	chromium := findChromium(t)
	requireBundles(t) // the terminal is xterm.js
	e, dbURL, aliceToken := newDashboardEnv(t)
	artifacts := artifactsDir(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "dashsvc/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	git := gitserver.Start(t, "")
	repo := git.Repo(t, "site")
	commit1 := repo.Commit("main", "v1", map[string][]byte{
		"Dockerfile":  []byte("FROM " + img + "\nCOPY version.txt /data/version.txt\n"),
		"version.txt": []byte("v1"),
	})
	project := uniqueName("dsvc")

	b := newBrowser(t, chromium, artifacts)
	alice := b.tab(t, "alice")
	urls := alice.recordURLs(t)
	alice.signIn(t, e.base, aliceToken)

	// The apply box: a refused document shows the API's per-document errors.
	alice.step("apply box refused", "422")
	alice.do(t, chromedp.Click(chromedp.ID("to-apply")))
	alice.waitJS(t, `document.querySelector('h1')?.textContent === 'Apply manifests' && !!document.querySelector('#manifests')`)
	alice.setValue(t, "manifests", fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Project
metadata: {name: %[1]s}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: Not_A_Name}
spec: {replicas: -1}
`, project))
	alice.do(t, chromedp.Click(chromedp.ID("apply-diff")))
	alice.waitJS(t, `!!document.querySelector('#apply-out .problem')`)
	if got := alice.text(t, "#apply-out"); !strings.Contains(got, "422") || !strings.Contains(got, "[1].") {
		t.Errorf("the refused diff shows %q, want the API's 422 with the document's field paths", got)
	}
	if got := alice.eval(t, `document.getElementById('apply-go').disabled ? 'disabled' : 'enabled'`); got != "disabled" {
		t.Errorf("Apply is %s after a refused diff", got)
	}
	alice.shot(t, "20-apply-refused")

	// Valid manifests: the diff, then apply.
	alice.step("apply box")
	manifests := fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Project
metadata: {name: %[1]s}
spec: {displayName: Service page demo}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: web}
spec:
  image: %[2]s
  env: [{name: LOG_EVERY, value: 200ms}]
  healthcheck: {command: [/testapp, -check], interval: 1s}
  ports: [{containerPort: 8080}]
  domains: [{host: web.%[1]s.example.test}]
  volumes: [{name: data, mountPath: /data}]
---
apiVersion: panelx.dev/v1
kind: Volume
metadata: {project: %[1]s, name: data}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: site}
spec:
  build:
    git: {url: %[3]q, ref: main}
    deadline: 5m
`, project, img, repo.URL)
	alice.setValue(t, "manifests", manifests)
	alice.do(t, chromedp.Click(chromedp.ID("apply-diff")))
	alice.waitJS(t, `!!document.querySelector('#apply-out [data-dry-run="true"]')`)
	diff := alice.text(t, "#apply-out")
	for _, want := range []string{"would be created", "Project " + project, "Service " + project + "/web", "+ spec.image", img, "+ spec.build.git.url", "nothing was written"} {
		if !strings.Contains(diff, want) {
			t.Errorf("the diff lacks %q:\n%s", want, diff)
		}
	}
	if n := alice.eval(t, `String(document.querySelectorAll('#apply-out .apply-item[data-action="created"]').length)`); n != "4" {
		t.Errorf("%s objects would be created, want 4", n)
	}
	alice.shot(t, "21-apply-diff")
	alice.recordStates(t)
	alice.do(t, chromedp.Click(chromedp.ID("apply-go")))
	alice.waitJS(t, `!!document.querySelector('#apply-out [data-dry-run="false"]')`)
	if got := alice.text(t, "#apply-out"); !strings.Contains(got, "Applied: 4 created") {
		t.Errorf("after Apply: %q", got)
	}
	alice.shot(t, "22-apply-applied")

	// From the result to the project: web goes to Ready, live.
	alice.step("project after apply")
	alice.do(t, chromedp.Click(chromedp.CSS(`#apply-out a.obj[href="#/projects/`+project+`"]`)))
	alice.waitJS(t, `document.querySelector('[data-service="web"] .state')?.dataset.state === 'Ready'`, 150*time.Second)
	if seen := alice.seen(t); !containsBefore(seen, "web:Progressing", "web:Ready") {
		t.Errorf("the project page did not show web progressing, then Ready: %q", seen)
	}
	alice.waitJS(t, `document.querySelector('[data-service="site"] .state')?.dataset.state === 'Ready'`, 240*time.Second)
	alice.shot(t, "23-project-from-apply")

	// By keyboard to the service's page.
	alice.step("service page")
	alice.tabTo(t, `[data-service="web"] a.svc-link`, 20)
	alice.do(t, chromedp.KeyEvent(kb.Enter))
	alice.waitJS(t, `document.querySelector('h1')?.textContent === 'web' && document.querySelector('.page-head .state')?.dataset.state === 'Ready'`)
	status := alice.text(t, "#status")
	for _, want := range []string{img, "Running", "1/1 ready", "1, applied", "AllReplicasReady", "running",
		"web." + project + ".example.test", "routed", "certificate pending", "no edge has reported"} {
		if !strings.Contains(status, want) {
			t.Errorf("the status panel lacks %q:\n%s", want, status)
		}
	}

	// Log lines arrive, and keep arriving.
	const ticks = `[...document.querySelectorAll('#loglines .ll')].filter((l) => /\[0 stdout\]\s*tick \d+/.test(l.textContent)).length`
	alice.waitJS(t, ticks+` >= 3`, 60*time.Second)
	n1, _ := strconv.Atoi(alice.eval(t, `String(`+ticks+`)`))
	alice.waitJS(t, ticks+` > `+strconv.Itoa(n1), 30*time.Second)

	// The sparklines get points from the metrics WebSocket.
	alice.waitJS(t, `Number(document.querySelector('#spark-cpu svg').dataset.points) >= 3
		&& Number(document.querySelector('#spark-mem svg').dataset.points) >= 3
		&& document.querySelector('#spark-mem polyline').getAttribute('points').split(' ').length >= 3`, 60*time.Second)
	if mem := alice.text(t, "#spark-mem .spark-value"); strings.HasPrefix(mem, "0 B") || !strings.Contains(mem, "iB") {
		t.Errorf("the memory sparkline's caption: %q", mem)
	}
	if got := alice.text(t, "#metrics"); !strings.Contains(got, "1 replica") {
		t.Errorf("the metrics panel: %q", got)
	}
	events := alice.text(t, "#svc-events")
	for _, want := range []string{"Pulled", "Started"} {
		if !strings.Contains(events, want) {
			t.Errorf("the service's events lack %q:\n%s", want, events)
		}
	}
	alice.shot(t, "24-service")

	// The terminal: without a command the image's shell is looked for (a
	// FROM-scratch image has none): the API's reason; then a command's
	// output and exit code, and its audit event in the timeline.
	alice.step("terminal")
	alice.do(t, chromedp.Click(chromedp.ID("term-run")))
	alice.waitJS(t, `!!document.querySelector('#terminal .problem') && !document.getElementById('term-run').disabled`)
	if got := alice.text(t, "#terminal .problem"); !strings.Contains(got, "422") || !strings.Contains(got, "no shell") {
		t.Errorf("a terminal without a shell shows %q, want the API's 422 reason", got)
	}
	alice.setValue(t, "term-cmd", "/testapp -echo 'hello from the terminal'")
	alice.do(t, chromedp.Click(chromedp.ID("term-run")))
	alice.waitJS(t, `document.getElementById('term-status').dataset.exit !== undefined && !document.getElementById('term-run').disabled`)
	if got := alice.eval(t, `document.getElementById('term-status').dataset.exit`); got != "0" {
		t.Errorf("the command exited with %s", got)
	}
	if got := alice.eval(t, termText); !strings.Contains(got, "hello from the terminal") {
		t.Errorf("the terminal shows %q", got)
	}
	alice.waitJS(t, `document.getElementById('svc-events').textContent.includes('Exec')`, 30*time.Second)
	// A program that waits, and keys typed into xterm.js reach its TTY: the
	// TTY echoes them, and Ctrl-C is SIGINT to the program, which ends
	// (exit code 0: it stops on SIGINT). The screen reader mode has the
	// output as text lines.
	alice.setValue(t, "term-cmd", "/testapp -sleep")
	alice.do(t, chromedp.Click(chromedp.ID("term-run")))
	alice.waitJS(t, `document.getElementById('term-status').textContent.startsWith('Running in')
		&& document.activeElement?.classList.contains('xterm-helper-textarea')`)
	alice.typeKeys(t, "typed into xterm")
	alice.waitJS(t, termText+`.includes('typed into xterm')`)
	alice.do(t, chromedp.Click(chromedp.ID("term-reader")))
	alice.waitJS(t, `document.querySelector('#term-out .xterm-accessibility-tree')?.textContent.includes('typed into xterm')`)
	alice.shot(t, "25-service-terminal")
	alice.do(t, chromedp.Focus(chromedp.CSS(".xterm-helper-textarea")))
	alice.ctrlKey(t, 'c')
	alice.waitJS(t, `document.getElementById('term-status').dataset.exit !== undefined && !document.getElementById('term-run').disabled`)
	if got := alice.eval(t, `document.getElementById('term-status').dataset.exit + ' ' + `+termText); !strings.HasPrefix(got, "0 ") || !strings.Contains(got, "^C") {
		t.Errorf("after Ctrl-C: exit code and terminal %q", got)
	}

	// The volume's files: folders and names a browser must not take as
	// URL syntax (written through the API), browsed into, a download, an
	// upload, a replacement, and the API's refusal of a name.
	alice.step("files", "400")
	dir, file := "sub dir #1?", "ä b&c=1;.txt"
	filesAPI := e.base + "/api/v1/projects/" + project + "/volumes/data/files/"
	for _, c := range []struct{ method, path, body string }{
		{"POST", url.PathEscape(dir), ""},
		{"PUT", url.PathEscape(dir) + "/" + url.PathEscape(file), "hello from a volume"},
		{"PUT", "top.txt", "top"},
	} {
		if code, out := apiCall(t, e, c.method, filesAPI+c.path, c.body); code/100 != 2 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, code, out)
		}
	}
	alice.waitJS(t, `!document.getElementById('files').hidden && document.getElementById('files-volume-name').textContent === 'data (at /data)'`)
	alice.do(t, chromedp.Click(chromedp.ID("files-reload")))
	alice.waitJS(t, `!!document.querySelector('#files-table [data-name="top.txt"]')`)
	alice.do(t, chromedp.Click(chromedp.CSS(`#files-table button[data-name="`+dir+`"]`)))
	alice.waitJS(t, `!!document.querySelector('#files-table [data-name="`+file+`"]') && document.getElementById('files-path').textContent.includes(`+jsString(dir)+`)`)
	downloads := t.TempDir()
	alice.do(t, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		c := chromedp.FromContext(ctx)
		_, err := cdp.Call(ctx, c.Browser, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, BrowserContextID: c.BrowserContextID, DownloadPath: downloads})
		return err
	}))
	alice.do(t, chromedp.Click(chromedp.CSS(`#files-table button[data-download="`+file+`"]`)))
	alice.waitJS(t, `document.getElementById('files-result').textContent.startsWith('Downloaded')`)
	waitFor(t, 10*time.Second, func() bool {
		got, err := os.ReadFile(filepath.Join(downloads, file))
		return err == nil && string(got) == "hello from a volume"
	}, "the downloaded file in "+downloads)
	upload := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(upload, []byte("first notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	alice.do(t, chromedp.SetUploadFiles(chromedp.ID("files-upload-file"), []string{upload}))
	alice.waitJS(t, `document.getElementById('files-upload').textContent === 'Upload' && !document.getElementById('files-upload').disabled`)
	alice.do(t, chromedp.Click(chromedp.ID("files-upload")))
	alice.waitJS(t, `document.getElementById('files-result').textContent.startsWith('Uploaded notes.txt') && !!document.querySelector('#files-table [data-name="notes.txt"]')`)
	if err := os.WriteFile(upload, []byte("second notes, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	alice.do(t, chromedp.SetUploadFiles(chromedp.ID("files-upload-file"), []string{upload}))
	alice.waitJS(t, `document.getElementById('files-upload').textContent === 'Replace notes.txt'`)
	alice.do(t, chromedp.Click(chromedp.ID("files-upload")))
	alice.waitJS(t, `document.getElementById('files-result').textContent.startsWith('Replaced notes.txt')`)
	if code, got := apiCall(t, e, "GET", filesAPI+url.PathEscape(dir)+"/notes.txt", ""); code != 200 || got != "second notes, longer" {
		t.Errorf("the replaced file: %d %q", code, got)
	}
	alice.eval(t, `(() => { const input = document.getElementById('files-upload-file'); const dt = new DataTransfer();
		dt.items.add(new File(['x'], 'txt.exe‮.txt')); input.files = dt.files;
		input.dispatchEvent(new Event('change', {bubbles: true})); return 'ok'; })()`)
	alice.do(t, chromedp.Click(chromedp.ID("files-upload")))
	alice.waitJS(t, `!!document.querySelector('#files-result .problem')`)
	if got := alice.text(t, "#files-result"); !strings.Contains(got, "400") || !strings.Contains(got, "invisible formatting character") {
		t.Errorf("an upload of a name the API refuses shows %q", got)
	}
	alice.shot(t, "25b-service-files")
	alice.do(t, chromedp.Click(chromedp.ID("files-up")))
	alice.waitJS(t, `!!document.querySelector('#files-table [data-name="top.txt"]') && !document.getElementById('files-up')`)

	// A refused action shows the API's reason: no earlier revision.
	alice.step("refused rollback", "409")
	alice.do(t, chromedp.Click(chromedp.ID("rollback-prev")))
	alice.waitJS(t, `!!document.querySelector('#rollback-result .problem')`)
	if got := alice.text(t, "#rollback-result"); !strings.Contains(got, "409 Conflict") || !strings.Contains(got, "no earlier revision") || !strings.Contains(got, "(request ") {
		t.Errorf("the refused rollback shows %q, want the API's 409 problem with its request ID", got)
	}
	alice.shot(t, "26-service-rollback-refused")

	// A second revision (the CLI changes the service), then a rollback to
	// the first from the revisions table.
	alice.step("rollback")
	alice.eval(t, `window.__rev = 'here'; 'ok'`)
	e.mustRun("apply", "-f", e.write("web2.yaml", strings.Replace(manifests, "value: 200ms}]", "value: 200ms}, {name: GREETING, value: hi}]", 1)))
	alice.waitJS(t, `document.querySelectorAll('#revisions li.rev').length === 2
		&& document.querySelector('#status .generation')?.textContent === '2, applied'
		&& document.querySelector('.page-head .state')?.dataset.state === 'Ready'`, 120*time.Second)
	alice.do(t, chromedp.Click(chromedp.CSS(`#revisions button[data-revision="1"]`)))
	alice.waitJS(t, `!!document.querySelector('#rollback-result .notice')`)
	if got := alice.text(t, "#rollback-result"); !strings.Contains(got, "Rollback to revision 1") {
		t.Errorf("after the rollback: %q", got)
	}
	alice.waitJS(t, `document.querySelector('#status .generation')?.textContent === '3, applied'
		&& document.querySelector('.page-head .state')?.dataset.state === 'Ready'`, 120*time.Second)
	if got := alice.eval(t, `String(window.__rev)`); got != "here" {
		t.Errorf("the page was reloaded")
	}
	// The new replica's lines are followed too.
	n2, _ := strconv.Atoi(alice.eval(t, `String(`+ticks+`)`))
	alice.waitJS(t, ticks+` > `+strconv.Itoa(n2+2), 30*time.Second)
	alice.shot(t, "27-service-rolled-back")

	// The service built from source: its build, its log, a new build on
	// request picking up a new commit.
	alice.step("build", "404")
	alice.do(t, chromedp.Click(chromedp.CSS(`.crumbs a[href="#/projects/`+project+`"]`)))
	alice.waitJS(t, `!!document.querySelector('[data-service="site"] a.svc-link')`)
	alice.do(t, chromedp.Click(chromedp.CSS(`[data-service="site"] a.svc-link`)))
	alice.waitJS(t, `document.querySelector('h1')?.textContent === 'site' && document.querySelector('#build .build-phase')?.dataset.phase === 'Succeeded'`)
	build := alice.text(t, "#build")
	for _, want := range []string{"Succeeded", commit1[:12], "-site:", repo.URL} {
		if !strings.Contains(build, want) {
			t.Errorf("the build panel lacks %q:\n%s", want, build)
		}
	}
	alice.waitJS(t, `document.querySelector('#build .buildlog').textContent.includes('Step 2/') && document.querySelector('#build .buildlog').textContent.includes(`+jsString(commit1)+`)`)
	commit2 := repo.Commit("main", "v2", map[string][]byte{"version.txt": []byte("v2")})
	alice.do(t, chromedp.Click(chromedp.ID("build-now")))
	alice.waitJS(t, `document.querySelector('#build .action-result')?.textContent.includes('Build requested')`)
	alice.waitJS(t, `document.querySelector('#build .build-phase')?.dataset.phase === 'Succeeded'
		&& document.getElementById('build').textContent.includes(`+jsString(commit2[:12])+`)`, 180*time.Second)
	alice.waitJS(t, `document.querySelector('#build .buildlog').textContent.includes(`+jsString("commit "+commit2)+`)`)
	alice.shot(t, "28-service-build")

	// A build that never ends, cancelled from the page: Failed, cancelled,
	// while the last good build keeps serving.
	alice.step("cancel build")
	alice.waitJS(t, `document.querySelector('.page-head .state')?.dataset.state === 'Ready'`, 120*time.Second) // commit 2 rolled out
	repo.Commit("main", "hang", map[string][]byte{"Dockerfile": []byte("FROM " + img + "\nRUN [\"/testapp\", \"-sleep\"]\n")})
	alice.do(t, chromedp.Click(chromedp.ID("build-now")))
	alice.waitJS(t, `document.querySelector('#build .build-phase')?.dataset.phase === 'Building' && !document.getElementById('build-cancel').hidden
		&& document.querySelector('#build .buildlog').textContent.includes('testapp')`, 120*time.Second)
	alice.shot(t, "29-service-building")
	alice.do(t, chromedp.Click(chromedp.ID("build-cancel")))
	alice.waitJS(t, `document.querySelector('#build .action-result')?.textContent.includes('Cancel requested')`)
	alice.waitJS(t, `document.querySelector('#build .build-phase')?.dataset.phase === 'Failed' && document.getElementById('build-cancel').hidden`, 60*time.Second)
	if got := alice.text(t, "#build"); !strings.Contains(got, "cancelled") || !strings.Contains(got, commit2[:12]) {
		t.Errorf("after the cancel the build panel shows:\n%s", got)
	}
	if got := alice.eval(t, `document.querySelector('.page-head .state')?.dataset.state + ' ' + document.querySelector('#status .replicas')?.textContent`); got != "Ready 1/1 ready" {
		t.Errorf("after a cancelled build the service is %s", got)
	}
	alice.shot(t, "30-service-build-cancelled")

	// Apply with prune: manifests without the built service. The diff lists
	// its deletion (and Apply says it deletes), nothing is deleted by the
	// diff, and changing the prune option asks for a new diff.
	alice.step("prune")
	withoutSite := manifests[:strings.LastIndex(manifests, "---\n")]
	alice.eval(t, `location.hash = '#/apply'; 'ok'`)
	alice.waitJS(t, `document.querySelector('h1')?.textContent === 'Apply manifests'`)
	alice.setValue(t, "manifests", withoutSite)
	alice.do(t, chromedp.Click(chromedp.ID("apply-prune")), chromedp.Click(chromedp.ID("apply-diff")))
	pruned := `#apply-out [data-dry-run="true"] .apply-item[data-action="pruned"][data-kind="Service"][data-name="site"]`
	alice.waitJS(t, `!!document.querySelector('`+pruned+`')`)
	if got := alice.text(t, pruned); !strings.Contains(got, "would be pruned") || !strings.Contains(got, "- Service "+project+"/site: the service and its containers") {
		t.Errorf("the pruned service in the diff: %q", got)
	}
	if got := alice.eval(t, `document.querySelectorAll('#apply-out .apply-item[data-action="pruned"]').length + ' ' + document.getElementById('apply-go').textContent`); got != "1 Apply and delete 1" {
		t.Errorf("pruned items and the Apply button: %q", got)
	}
	if code, _ := apiCall(t, e, "GET", e.base+"/api/v1/projects/"+project+"/services/site", ""); code != 200 {
		t.Errorf("the diff deleted the service: %d", code)
	}
	alice.shot(t, "30b-apply-prune-diff")
	alice.do(t, chromedp.Click(chromedp.ID("apply-prune")))
	alice.waitJS(t, `document.getElementById('apply-go').disabled`)
	alice.do(t, chromedp.Click(chromedp.ID("apply-prune")))
	alice.waitJS(t, `!document.getElementById('apply-go').disabled`)
	alice.do(t, chromedp.Click(chromedp.ID("apply-go")))
	alice.waitJS(t, `!!document.querySelector('#apply-out [data-dry-run="false"] .apply-item[data-action="pruned"][data-name="site"]')`)
	if got := alice.text(t, "#apply-out h2"); !strings.Contains(got, "1 pruned") {
		t.Errorf("after Apply with prune: %q", got)
	}
	waitFor(t, 30*time.Second, func() bool {
		code, _ := apiCall(t, e, "GET", e.base+"/api/v1/projects/"+project+"/services/site", "")
		return code == 404
	}, "the pruned service to be gone")

	// Phone width: the service page and the apply box, readable.
	alice.step("phone")
	alice.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	alice.do(t, chromedp.Click(chromedp.CSS(`#apply-out a.obj[href="#/projects/`+project+`"]`)))
	alice.waitJS(t, `!!document.querySelector('[data-service="web"] a.svc-link') && !document.querySelector('[data-service="site"]')`)
	alice.do(t, chromedp.Click(chromedp.CSS(`[data-service="web"] a.svc-link`)))
	alice.waitJS(t, `document.querySelector('h1')?.textContent === 'web' && Number(document.querySelector('#spark-cpu svg').dataset.points) >= 2 && `+ticks+` > 0`)
	alice.shot(t, "31-service-phone")
	alice.shotOf(t, "#terminal", "31a-terminal-phone")
	alice.shotOf(t, "#files", "31b-files-phone")
	alice.eval(t, `location.hash = '#/apply'; 'ok'`)
	alice.waitJS(t, `document.querySelector('h1')?.textContent === 'Apply manifests'`)
	alice.do(t, chromedp.Click(chromedp.ID("apply-diff")))
	alice.waitJS(t, `!!document.querySelector('#apply-out [data-dry-run="true"]')`)
	alice.shot(t, "32-apply-phone")
	alice.do(t, chromedp.EmulateViewport(1280, 800))
	alice.do(t, chromedp.Navigate("about:blank")) // ends the streams

	// Another user sees nothing of the service, and the page opens none of
	// its streams.
	bob := b.tab(t, "bob")
	bobURLs := bob.recordURLs(t)
	bob.signIn(t, e.base, createToken(t, e.bin, dbURL, "bob"))
	bob.step("bob opens alice's service", "404")
	bob.eval(t, `location.hash = '#/projects/`+project+`/services/web'; 'ok'`)
	bob.waitJS(t, `!!document.querySelector('main .problem')`)
	if got := bob.text(t, "main .problem"); !strings.Contains(got, "404") {
		t.Errorf("bob on alice's service sees %q, want the API's 404", got)
	}
	for _, secret := range []string{"Service page demo", img, "tick", "AllReplicasReady", "Revision"} {
		if body := bob.text(t, "main"); strings.Contains(body, secret) {
			t.Errorf("bob's page of alice's service shows %q:\n%s", secret, body)
		}
	}
	for _, u := range bobURLs() {
		if strings.Contains(u, "/logs") || strings.Contains(u, "/metrics") || strings.Contains(u, "/revisions") || strings.HasPrefix(u, "ws") {
			t.Errorf("bob's page asked for %s", u)
		}
	}
	bob.shot(t, "33-service-bob-refused")
	bob.do(t, chromedp.Navigate("about:blank"))

	// The token never went into a URL; the WebSockets authenticated with
	// a subprotocol.
	all := urls()
	sockets := 0
	for _, u := range all {
		if strings.Contains(u, aliceToken) || strings.Contains(u, strings.TrimPrefix(aliceToken, "pnx_")) {
			t.Errorf("a URL carries the token: %s", u)
		}
		if strings.HasPrefix(u, "ws") {
			sockets++
		}
	}
	if sockets < 3 {
		t.Errorf("%d WebSockets opened, want the metrics stream and two terminals at least: %q", sockets, all)
	}
	b.checkConsole(t)
}

// typeKeys types into the focused element as a keyboard does: one keydown
// carrying the character and a keyup per key (chromedp's SendKeys adds a
// char event as well, which xterm.js takes as a second key press).
func (tb *tab) typeKeys(t testing.TB, text string) {
	t.Helper()
	tb.do(t, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, r := range text {
			for _, ev := range []input.DispatchKeyEventParams{
				{Type: input.DispatchKeyEventTypeKeyDown, Key: string(r), Text: string(r)},
				{Type: input.DispatchKeyEventTypeKeyUp, Key: string(r)},
			} {
				if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, ev); err != nil {
					return err
				}
			}
		}
		return nil
	}))
}

// ctrlKey presses Ctrl and a letter in the focused element.
func (tb *tab) ctrlKey(t testing.TB, letter rune) {
	t.Helper()
	up := unicode.ToUpper(letter)
	tb.do(t, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			ev := input.DispatchKeyEventParams{Type: typ, Key: string(letter), Code: "Key" + string(up),
				WindowsVirtualKeyCode: int64(up), NativeVirtualKeyCode: int64(up), Modifiers: int64(chromedp.ModifierCtrl)}
			if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, ev); err != nil {
				return err
			}
		}
		return nil
	}))
}

// requireBundles: the npm bundles must be in the binary (make ui).
func requireBundles(t testing.TB) {
	t.Helper()
	if err := web.Built(); err != nil {
		t.Fatal(err)
	}
}

// termText is the text of the terminal's buffer (term.js's hook).
const termText = `document.getElementById('term-out').panelxText()`

func artifactsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("PANELX_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// signIn opens the page and signs in with the token.
func (tb *tab) signIn(t testing.TB, base, token string) {
	t.Helper()
	tb.step("sign in")
	tb.do(t, chromedp.Navigate(base+"/"))
	tb.waitJS(t, `!!document.querySelector('#signin input#token')`)
	tb.do(t, chromedp.SendKeys(chromedp.ID("token"), token+"\n"))
	tb.waitJS(t, `document.querySelector('h1')?.textContent === 'Projects' && document.querySelector('#live')?.textContent === 'Live'`)
}

// setValue sets a field's value as typing would (an input event).
func (tb *tab) setValue(t testing.TB, id, value string) {
	t.Helper()
	tb.eval(t, `(() => { const el = document.getElementById(`+jsString(id)+`); el.value = `+jsString(value)+`;
		el.dispatchEvent(new Event('input', {bubbles: true})); return 'ok'; })()`)
}

// tabTo presses Tab until the selector has the focus.
func (tb *tab) tabTo(t testing.TB, selector string, most int) {
	t.Helper()
	tb.eval(t, `document.activeElement?.blur(); 'ok'`)
	for i := 0; tb.eval(t, `document.activeElement?.matches(`+jsString(selector)+`) ? 'yes' : 'no'`) != "yes"; i++ {
		if i == most {
			t.Fatalf("%d Tabs did not reach %s (focus on %s)", most, selector, tb.eval(t, `document.activeElement?.outerHTML.slice(0, 80) ?? 'nothing'`))
		}
		tb.do(t, chromedp.KeyEvent(kb.Tab))
	}
}

// recordStates records, in the page, every service state the project page
// shows (read back with seen).
func (tb *tab) recordStates(t testing.TB) {
	t.Helper()
	tb.eval(t, `window.__seen = [];
		new MutationObserver(() => {
			for (const el of document.querySelectorAll('[data-service] .state')) {
				const v = el.closest('[data-service]').dataset.service + ':' + el.dataset.state;
				if (!window.__seen.includes(v)) window.__seen.push(v);
			}
		}).observe(document.getElementById('main'), {subtree: true, childList: true, characterData: true}); 'ok'`)
}

// recordURLs records the URL of every request and WebSocket of the tab.
func (tb *tab) recordURLs(t testing.TB) func() []string {
	t.Helper()
	var mu sync.Mutex
	var urls []string
	err := chromedp.Listen(tb.ctx, func(ev any) {
		var u string
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			u = ev.Request.URL
		case *network.EventWebSocketCreated:
			u = ev.URL
		default:
			return
		}
		mu.Lock()
		urls = append(urls, u)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), urls...)
	}
}

func containsBefore(list []string, first, then string) bool {
	i := -1
	for k, v := range list {
		if v == then {
			i = k
			break
		}
	}
	for _, v := range list[:max(i, 0)] {
		if v == first {
			return true
		}
	}
	return false
}

func waitFor(t testing.TB, limit time.Duration, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
