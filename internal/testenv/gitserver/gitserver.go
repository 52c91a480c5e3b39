// Package gitserver serves git repositories made in a test over smart
// HTTP on 127.0.0.1, through Debian's `git http-backend` (CGI), optionally
// behind a token. Commits are made with go-git and pushed in-process.
package gitserver

import (
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Server is a git HTTP server for one test.
type Server struct {
	URL   string // http://127.0.0.1:port
	root  string
	token string
	// Fetches counts the clones and fetches served.
	Fetches atomic.Int64
}

// Start serves the repositories of a temporary directory. With a token,
// every request must carry it as the basic-auth password.
func Start(t testing.TB, token string) *Server {
	t.Helper()
	backend := "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		// CI installs git; a machine without it cannot run these tests.
		if p, lerr := exec.LookPath("git"); lerr == nil {
			out, _ := exec.Command(p, "--exec-path").Output()
			backend = filepath.Join(string(trimNL(out)), "git-http-backend")
		}
		if _, err := os.Stat(backend); err != nil {
			t.Fatalf("git http-backend not found (apt-get install git): %v", err)
		}
	}
	s := &Server{root: t.TempDir(), token: token}
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + s.root, "GIT_HTTP_EXPORT_ALL=1"}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.token != "" {
			if _, pw, ok := r.BasicAuth(); !ok || pw != s.token {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		if r.URL.Query().Get("service") == "git-upload-pack" {
			s.Fetches.Add(1)
		}
		h.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	s.URL = "http://" + l.Addr().String()
	return s
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Repo is a repository of the server with a working copy to commit from.
type Repo struct {
	t    testing.TB
	URL  string
	work *git.Repository
	dir  string
	bare string
}

// Repo creates an empty repository served at <URL>/<name>.git.
func (s *Server) Repo(t testing.TB, name string) *Repo {
	t.Helper()
	bare := filepath.Join(s.root, name+".git")
	repo, err := git.PlainInit(bare, true)
	if err != nil {
		t.Fatal(err)
	}
	// The remote's HEAD is main, as on the forges.
	if err := repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName("main"))); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	work, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := work.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{bare}}); err != nil {
		t.Fatal(err)
	}
	return &Repo{t: t, URL: s.URL + "/" + name + ".git", work: work, dir: dir, bare: bare}
}

// Commit writes the files (nil content removes one), commits them and
// pushes the branch; it returns the commit hash.
func (r *Repo) Commit(branch, message string, files map[string][]byte) string {
	r.t.Helper()
	wt, err := r.work.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(r.dir, filepath.FromSlash(name))
		if content == nil {
			if _, err := wt.Remove(name); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if filepath.Base(name) == "testapp" {
			mode = 0o755
		}
		if err := os.WriteFile(p, content, mode); err != nil {
			r.t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			r.t.Fatal(err)
		}
	}
	sig := &object.Signature{Name: "test", Email: "test@example.test", When: time.Now()}
	hash, err := wt.Commit(message, &git.CommitOptions{Author: sig, AllowEmptyCommits: true})
	if err != nil {
		r.t.Fatal(err)
	}
	ref := plumbing.NewBranchReferenceName(branch)
	if err := r.work.Storer.SetReference(plumbing.NewHashReference(ref, hash)); err != nil {
		r.t.Fatal(err)
	}
	spec := config.RefSpec(ref.String() + ":" + ref.String())
	if err := r.work.Push(&git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Force: true}); err != nil && err != git.NoErrAlreadyUpToDate {
		r.t.Fatal(err)
	}
	return hash.String()
}

// Root is the directory holding the repositories.
func (s *Server) Root() string { return s.root }
