package builder_test

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"

	"github.com/panelx/panelx/builder"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testenv/gitserver"
	"github.com/panelx/panelx/internal/testimage"
)

// TestBuildFromGit: a repository served over smart HTTP is cloned at a
// branch, its context — without what .dockerignore leaves out — built
// FROM an image of the test registry, and the image holds the commit's
// files; a Dockerfile that fails gives the builder's line.
func TestBuildFromGit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	docker := testenv.Docker(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	base := reg.Push(t, "builder-test/base:1", testimage.Image(t, testimage.ImageOptions{Version: "base"}))
	srv := gitserver.Start(t, "")
	repo := srv.Repo(t, "shop")
	commit := repo.Commit("main", "first", map[string][]byte{
		"app/Dockerfile":    []byte("FROM " + base + "\nARG GREETING\nCOPY . /data/\nLABEL greeting=$GREETING\n"),
		"app/.dockerignore": []byte("secret.txt\n*.log\n"),
		"app/version.txt":   []byte("v1"),
		"app/secret.txt":    []byte("do not ship"),
		"app/debug.log":     []byte("noise"),
		"README.md":         []byte("outside the context"),
	})

	dir := t.TempDir()
	got, err := builder.Clone(ctx, repo.URL, "main", builder.GitAuth{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got != commit {
		t.Fatalf("cloned %s, pushed %s", got, commit)
	}
	tag := "panelx-build-test/shop-web:" + commit[:12]
	t.Cleanup(func() { _, _ = docker.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true}) })
	buildCtx, err := builder.Context(dir, "app", "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var steps, lines []string
	id, err := builder.Build(ctx, docker, buildCtx, builder.Options{Tag: tag, Dockerfile: "Dockerfile",
		Args: map[string]string{"GREETING": "hello"}, Memory: 256 << 20, Labels: map[string]string{"dev.panelx.commit": commit},
		Log: func(l string) { lines = append(lines, l) }, Step: func(s string) { steps = append(steps, s) }})
	buildCtx.Close()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, strings.Join(lines, "\n"))
	}
	inspect, _, err := docker.ImageInspectWithRaw(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if inspect.ID != id || inspect.Config.Labels["greeting"] != "hello" || inspect.Config.Labels["dev.panelx.commit"] != commit {
		t.Errorf("image %s (want %s), labels %v", inspect.ID, id, inspect.Config.Labels)
	}
	if len(steps) != 5 || !strings.HasPrefix(steps[2], "Step 3/5 : COPY") { // the labels are a last step
		t.Errorf("steps %q", steps)
	}
	files := imageFiles(t, tag, "/data")
	for _, want := range []string{"data/version.txt", "data/Dockerfile"} {
		if _, ok := files[want]; !ok {
			t.Errorf("%s missing from the image: %v", want, files)
		}
	}
	for _, left := range []string{"data/secret.txt", "data/debug.log", "data/README.md"} {
		if _, ok := files[left]; ok {
			t.Errorf("%s is in the image", left)
		}
	}
	if files["data/version.txt"] != "v1" {
		t.Errorf("version.txt holds %q", files["data/version.txt"])
	}

	// A step that fails: the builder's own line.
	repo.Commit("broken", "broken", map[string][]byte{"app/Dockerfile": []byte("FROM " + base + "\nCOPY missing.txt /data/\n")})
	dir2 := t.TempDir()
	if _, err := builder.Clone(ctx, repo.URL, "broken", builder.GitAuth{}, dir2); err != nil {
		t.Fatal(err)
	}
	buildCtx, err = builder.Context(dir2, "app", "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer buildCtx.Close()
	_, err = builder.Build(ctx, docker, buildCtx, builder.Options{Tag: "panelx-build-test/shop-web:broken"})
	var be *builder.BuildError
	if !errors.As(err, &be) || !strings.Contains(be.Line, "missing.txt") {
		t.Errorf("broken build: %v", err)
	}
}

// TestBuildDeadline: a build past its deadline stops, and leaves no
// container of its own behind.
func TestBuildDeadline(t *testing.T) {
	t.Parallel()
	docker := testenv.Docker(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	// An image of this test's own (other tests run hanging builds of
	// their own): the containers left are found by it.
	base := reg.Push(t, "builder-test/slow:1", testimage.Image(t, testimage.ImageOptions{Labels: map[string]string{"dev.panelx.test": t.Name() + time.Now().String()}}))
	srv := gitserver.Start(t, "")
	repo := srv.Repo(t, "slow")
	repo.Commit("main", "slow", map[string][]byte{"Dockerfile": []byte("FROM " + base + "\nLABEL dev.panelx.test=deadline\nRUN [\"/testapp\", \"-sleep\"]\n")})
	dir := t.TempDir()
	if _, err := builder.Clone(context.Background(), repo.URL, "", builder.GitAuth{}, dir); err != nil {
		t.Fatal(err)
	}
	buildCtx, err := builder.Context(dir, "", "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer buildCtx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = builder.Build(ctx, docker, buildCtx, builder.Options{Tag: "panelx-build-test/slow:x"})
	if err == nil || time.Since(start) > 20*time.Second {
		t.Fatalf("a build past its deadline: %v after %v", err, time.Since(start))
	}
	// The engine removes the step's container once it sees the client go.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		list, err := docker.ContainerList(context.Background(), container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("ancestor", base))})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cancelled build left %d container(s): %+v", len(list), list[0].Command)
		}
	}
}

// TestCloneCredentials: a private repository refuses a clone without its
// token, with a message saying what to do; with it the clone works; the
// token is in no error.
func TestCloneCredentials(t *testing.T) {
	t.Parallel()
	const token = "tok-3d2f1c0b9a8e"
	srv := gitserver.Start(t, token)
	repo := srv.Repo(t, "private")
	repo.Commit("main", "x", map[string][]byte{"Dockerfile": []byte("FROM scratch\n")})
	ctx := context.Background()
	_, err := builder.Clone(ctx, repo.URL, "main", builder.GitAuth{}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "secretRef") {
		t.Errorf("no credentials: %v", err)
	}
	_, err = builder.Clone(ctx, repo.URL, "main", builder.GitAuth{Password: "wrong-" + token}, t.TempDir())
	if err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("wrong credentials: %v", err)
	}
	if _, err := builder.Clone(ctx, repo.URL, "main", builder.GitAuth{Password: token}, t.TempDir()); err != nil {
		t.Errorf("with the token: %v", err)
	}
	if _, err := builder.Clone(ctx, repo.URL, "no-such-branch", builder.GitAuth{Password: token}, t.TempDir()); err == nil {
		t.Error("a missing ref cloned")
	}
}

// TestContextStaysInTheRepository: a context directory or Dockerfile that
// leads out of the clone through a symbolic link is refused.
func TestContextStaysInTheRepository(t *testing.T) {
	dir := t.TempDir()
	if err := symlink("/etc", filepath.Join(dir, "etc")); err != nil {
		t.Fatal(err)
	}
	if _, err := builder.Context(dir, "etc", "Dockerfile"); err == nil || !strings.Contains(err.Error(), "leads out of the build") {
		t.Errorf("context through a link to /etc: %v", err)
	}
	if _, err := builder.Context(dir, "", "etc/passwd"); err == nil || !strings.Contains(err.Error(), "leads out of the build") {
		t.Errorf("Dockerfile through a link to /etc: %v", err)
	}
}

// imageFiles reads the files under dir of an image, by path.
func imageFiles(t *testing.T, ref, dir string) map[string]string {
	t.Helper()
	ctx := context.Background()
	docker := testenv.Docker(t)
	c, err := docker.ContainerCreate(ctx, &container.Config{Image: ref}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	rc, _, err := docker.CopyFromContainer(ctx, c.ID, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out[h.Name] = string(data)
	}
}

// TestContextLeavesGitOut: the clone's .git is not sent to the builder.
func TestContextLeavesGitOut(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"Dockerfile": "FROM scratch\n", ".git/HEAD": "ref: refs/heads/main\n", "app.txt": "x"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := builder.Context(dir, "", "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if strings.Contains(strings.Join(names, " "), ".git") || len(names) != 2 {
		t.Errorf("context holds %q", names)
	}
}

func TestNeedsBuildKit(t *testing.T) {
	for _, tt := range []struct {
		dockerfile string
		want       bool
	}{
		{"FROM alpine\nCOPY --chown=1:1 --from=build /a /b\nRUN make\n", false},
		{"# syntax=docker/dockerfile:1\nFROM alpine\n", true},
		{"# escape=`\n# syntax=docker/dockerfile:1.4\nFROM alpine\n", true},
		{"FROM alpine\n# syntax=docker/dockerfile:1\n", false}, // a comment, not a directive
		{"FROM golang\nRUN --mount=type=cache,target=/root/.cache go build ./...\n", true},
		{"FROM scratch\ncopy --chmod=0600 key /key\n", true},
		{"FROM scratch\nCOPY --link . /app\n", true},
		{"FROM alpine\nRUN <<EOF\necho hi\nEOF\n", true},
		{"FROM alpine\nRUN echo '--mount is just text here'\n", false},
	} {
		got, why := builder.NeedsBuildKit([]byte(tt.dockerfile))
		if got != tt.want {
			t.Errorf("NeedsBuildKit(%q) = %v (%q), want %v", tt.dockerfile, got, why, tt.want)
		}
	}
}

// TestBuildWithBuildKit: a Dockerfile only BuildKit builds (COPY
// --chmod) is built by it from a streamed context, with its steps and
// output in the log; a failing step gives BuildKit's error line.
func TestBuildWithBuildKit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	docker := testenv.Docker(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	base := reg.Push(t, "builder-test/bk-base:1", testimage.Image(t, testimage.ImageOptions{Version: "bk"}))
	dir := t.TempDir()
	dockerfile := "FROM " + base + "\nCOPY --chmod=0600 version.txt /data/version.txt\n"
	for name, body := range map[string]string{"Dockerfile": dockerfile, "version.txt": "v-bk"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if need, _ := builder.NeedsBuildKit([]byte(dockerfile)); !need {
		t.Fatal("COPY --chmod is not seen as BuildKit's")
	}
	tag := "panelx-build-test/bk:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() { _, _ = docker.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true}) })
	build := func(dockerfile string) (string, []string, []string, error) {
		os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644)
		rc, err := builder.Context(dir, "", "Dockerfile")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		var steps, lines []string
		id, err := builder.Build(ctx, docker, rc, builder.Options{Tag: tag, Dockerfile: "Dockerfile", BuildKit: true,
			Log: func(l string) { lines = append(lines, l) }, Step: func(s string) { steps = append(steps, s) }})
		return id, steps, lines, err
	}
	id, steps, lines, err := build(dockerfile)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, strings.Join(lines, "\n"))
	}
	inspect, _, err := docker.ImageInspectWithRaw(ctx, tag)
	if err != nil || inspect.ID != id {
		t.Fatalf("image %v (%v), want %s", inspect.ID, err, id)
	}
	if len(steps) == 0 || !strings.Contains(steps[len(steps)-1], "COPY --chmod=0600") {
		t.Errorf("steps %q\nlog:\n%s", steps, strings.Join(lines, "\n"))
	}
	if got := imageFiles(t, tag, "/data/version.txt")["version.txt"]; got != "v-bk" {
		t.Errorf("the image holds %q", got)
	}

	_, _, lines, err = build("FROM " + base + "\nCOPY --chmod=0600 missing.txt /data/\n")
	var be *builder.BuildError
	if !errors.As(err, &be) || !strings.Contains(be.Line, "missing.txt") {
		t.Errorf("a failing step: %v\n%s", err, strings.Join(lines, "\n"))
	}
}

// TestBuildKitPrivateBase: BuildKit builds FROM an image of a registry
// that wants a password once PullBases has pulled it with the login
// (Engine 20.10's BuildKit asks a client session for credentials, which
// this client does not run: without the pull the build fails).
func TestBuildKitPrivateBase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	docker := testenv.Docker(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{Username: "builder", Password: "pw-bk-51"})
	base := reg.Push(t, uniqueRepo(t)+"/base:1", testimage.Image(t, testimage.ImageOptions{Version: "bk-private"}))
	t.Cleanup(func() { _, _ = docker.ImageRemove(context.Background(), base, image.RemoveOptions{Force: true}) })
	dockerfile := "FROM " + base + " AS app\nFROM app\nCOPY --chmod=0600 Dockerfile /data/Dockerfile\n"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	auth := map[string]registry.AuthConfig{reg.Host(): {ServerAddress: reg.Host(), Username: "builder", Password: "pw-bk-51"}}
	tag := "panelx-build-test/bk-private:1"
	t.Cleanup(func() { _, _ = docker.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true}) })
	build := func() error {
		rc, err := builder.Context(dir, "", "Dockerfile")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		_, err = builder.Build(ctx, docker, rc, builder.Options{Tag: tag, Dockerfile: "Dockerfile", BuildKit: true, Auth: auth})
		return err
	}
	if err := build(); err == nil {
		t.Log("this engine's BuildKit pulled the private base without a session")
	}
	var logged []string
	if err := builder.PullBases(ctx, docker, []byte(dockerfile), auth, func(l string) { logged = append(logged, l) }); err != nil {
		t.Fatal(err)
	}
	if len(logged) != 1 || strings.Contains(strings.Join(logged, ""), "pw-bk-51") {
		t.Errorf("PullBases said %q (one pull, the stage name skipped, no password)", logged)
	}
	if err := build(); err != nil {
		t.Fatalf("build after PullBases: %v", err)
	}
	wrong := map[string]registry.AuthConfig{reg.Host(): {ServerAddress: reg.Host(), Username: "builder", Password: "wrong"}}
	docker.ImageRemove(ctx, base, image.RemoveOptions{Force: true})
	if err := builder.PullBases(ctx, docker, []byte(dockerfile), wrong, func(string) {}); err == nil {
		t.Error("a wrong password pulled")
	}
}

func uniqueRepo(t *testing.T) string {
	return fmt.Sprintf("builder-test-%d", time.Now().UnixNano())
}

// TestCloneOverSSH: a repository behind SSH is cloned and listed with a
// deploy key, trusting only the host keys given; an unknown host key, a
// missing key and a key the server does not accept are refused, and no
// error shows the private key.
func TestCloneOverSSH(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := gitserver.Start(t, "")
	sshSrv := srv.StartSSH(t)
	repo := srv.Repo(t, "private")
	commit := repo.Commit("main", "first", map[string][]byte{"Dockerfile": []byte("FROM scratch\n")})
	url := repo.SSHURL(sshSrv)
	auth := builder.GitAuth{SSHKey: string(sshSrv.ClientKey), KnownHosts: sshSrv.KnownHosts}

	got, err := builder.Clone(ctx, url, "main", auth, t.TempDir())
	if err != nil || got != commit {
		t.Fatalf("clone over SSH: %s, %v (want %s)", got, err, commit)
	}
	if head, err := builder.Head(ctx, url, "main", auth); err != nil || head != commit {
		t.Errorf("head over SSH: %s, %v", head, err)
	}

	other := gitserver.Start(t, "").StartSSH(t) // another host key, another accepted key
	for name, tt := range map[string]struct {
		auth builder.GitAuth
		want string
	}{
		"no key":           {builder.GitAuth{}, "sshPrivateKey and knownHosts"},
		"unknown host key": {builder.GitAuth{SSHKey: auth.SSHKey, KnownHosts: other.KnownHosts}, "key is unknown"},
		"key not accepted": {builder.GitAuth{SSHKey: string(other.ClientKey), KnownHosts: auth.KnownHosts}, "unable to authenticate"},
		"not a key":        {builder.GitAuth{SSHKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n-----END OPENSSH PRIVATE KEY-----\n", KnownHosts: auth.KnownHosts}, "sshPrivateKey"},
	} {
		_, err := builder.Clone(ctx, url, "main", tt.auth, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
}
