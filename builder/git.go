// Package builder builds a service's image from a git repository: it
// clones with go-git, streams the context (honouring .dockerignore) to the
// Docker Engine's build API and tags the image by commit. No shell, no git
// or docker command is run. Manager queues the builds of all services and
// bounds them.
package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"
)

// GitAuth are the credentials of a private repository: over HTTP a token,
// or a user name and password; over SSH a deploy key and the host keys to
// trust. Empty for a public one.
type GitAuth struct {
	Username string
	Password string // or token
	// SSHKey is a PEM private key, SSHPassphrase its passphrase if any;
	// KnownHosts are known_hosts lines, the only host keys accepted.
	SSHKey, SSHPassphrase, KnownHosts string
}

// method is how to sign in to url.
func (a GitAuth) method(url string) (transport.AuthMethod, error) {
	if IsSSHURL(url) {
		return a.sshAuth(url)
	}
	if a.Password == "" {
		return nil, nil
	}
	user := a.Username
	if user == "" {
		user = "x-access-token" // GitHub, Gitea and GitLab accept any name with a token
	}
	return &githttp.BasicAuth{Username: user, Password: a.Password}, nil
}

// secrets lists what must never reach a log line.
func (a GitAuth) secrets() []string {
	var out []string
	for _, s := range []string{a.Password, a.SSHKey, a.SSHPassphrase} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

var commitRe = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Clone checks ref (a branch, a tag or a full commit hash; "" for the
// remote's HEAD) of url out into dir and returns the commit. Branches and
// tags are fetched shallow.
func Clone(ctx context.Context, url, ref string, auth GitAuth, dir string) (string, error) {
	method, err := auth.method(url)
	if err != nil {
		return "", fmt.Errorf("clone %s: %w", url, err)
	}
	opts := &git.CloneOptions{URL: url, Auth: method, Depth: 1, SingleBranch: true, Tags: git.NoTags}
	var repo *git.Repository
	switch {
	case commitRe.MatchString(ref):
		// A commit: the whole history, then check it out.
		opts.Depth, opts.SingleBranch = 0, false
		repo, err = clone(ctx, dir, opts)
		if err == nil {
			err = checkout(repo, plumbing.NewHash(ref))
		}
	case ref == "":
		repo, err = clone(ctx, dir, opts)
	default:
		opts.ReferenceName = plumbing.NewBranchReferenceName(ref)
		repo, err = clone(ctx, dir, opts)
		if errors.Is(err, plumbing.ErrReferenceNotFound) || isNoMatchingRef(err) {
			if rmErr := emptyDir(dir); rmErr != nil {
				return "", rmErr
			}
			opts.ReferenceName = plumbing.NewTagReferenceName(ref)
			repo, err = clone(ctx, dir, opts)
		}
	}
	if err != nil {
		return "", fmt.Errorf("clone %s%s: %w", url, atRef(ref), cleanGitError(err, auth))
	}
	head, err := repo.Head()
	if err != nil {
		return "", fmt.Errorf("clone %s%s: %w", url, atRef(ref), err)
	}
	return head.Hash().String(), nil
}

// largeObject is the size from which go-git reads an object from the
// packfile when it is needed instead of holding it: a repository of large
// files is cloned in bounded memory.
const largeObject = 256 << 10

// clone clones into dir with a bounded object cache.
func clone(ctx context.Context, dir string, opts *git.CloneOptions) (*git.Repository, error) {
	st := filesystem.NewStorageWithOptions(osfs.New(filepath.Join(dir, ".git")), cache.NewObjectLRU(8*cache.MiByte),
		filesystem.Options{LargeObjectThreshold: largeObject})
	return git.CloneContext(ctx, st, osfs.New(dir), opts)
}

// emptyDir removes what a failed clone left in dir.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func checkout(repo *git.Repository, hash plumbing.Hash) error {
	wt, err := repo.Worktree()
	if err != nil {
		return err
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: hash, Force: true}); err != nil {
		return fmt.Errorf("commit %s: %w", hash, err)
	}
	return nil
}

func atRef(ref string) string {
	if ref == "" {
		return ""
	}
	return "@" + ref
}

// isNoMatchingRef: go-git says so in words when a branch does not exist.
func isNoMatchingRef(err error) bool {
	return err != nil && strings.Contains(err.Error(), "couldn't find remote ref")
}

// cleanGitError keeps credentials out of the message.
func cleanGitError(err error, auth GitAuth) error {
	msg := redact(err.Error(), auth.secrets())
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired):
		msg = "the repository asks for credentials (set build.git.secretRef)"
	case errors.Is(err, transport.ErrAuthorizationFailed):
		msg = "the repository refused the credentials of build.git.secretRef"
	case errors.Is(err, transport.ErrRepositoryNotFound):
		msg = "repository not found"
	}
	if msg != err.Error() {
		return errors.New(msg)
	}
	return err
}

// redact replaces each secret in s.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

// Head returns the commit ref names on the remote (a branch, a tag, or ""
// for the remote's HEAD) without cloning: what a poll compares with the
// last build. A commit hash is its own head.
func Head(ctx context.Context, url, ref string, auth GitAuth) (string, error) {
	if commitRe.MatchString(ref) {
		return ref, nil
	}
	method, err := auth.method(url)
	if err != nil {
		return "", fmt.Errorf("list %s: %w", url, err)
	}
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: method})
	if err != nil {
		return "", fmt.Errorf("list %s: %w", url, cleanGitError(err, auth))
	}
	want := []plumbing.ReferenceName{plumbing.NewBranchReferenceName(ref), plumbing.NewTagReferenceName(ref)}
	if ref == "" {
		want = []plumbing.ReferenceName{plumbing.HEAD}
	}
	byName := map[plumbing.ReferenceName]*plumbing.Reference{}
	for _, r := range refs {
		byName[r.Name()] = r
	}
	for _, name := range want {
		r, ok := byName[name]
		if !ok {
			continue
		}
		if r.Type() == plumbing.SymbolicReference {
			if r, ok = byName[r.Target()]; !ok {
				continue
			}
		}
		return r.Hash().String(), nil
	}
	return "", fmt.Errorf("list %s: no ref %q", url, ref)
}
