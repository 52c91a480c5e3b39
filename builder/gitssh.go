package builder

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"

	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// scpLikeRe is git's scp-like SSH address: user@host:path.
var scpLikeRe = regexp.MustCompile(`^([A-Za-z0-9._-]+)@([A-Za-z0-9.-]+):([^/].*)$`)

// IsSSHURL says whether a repository address is reached over SSH:
// ssh://[user@]host[:port]/path or git@host:path.
func IsSSHURL(u string) bool {
	if scpLikeRe.MatchString(u) {
		return true
	}
	p, err := url.Parse(u)
	return err == nil && p.Scheme == "ssh"
}

// sshUser is the user an SSH address names (git by default).
func sshUser(u string) string {
	if m := scpLikeRe.FindStringSubmatch(u); m != nil {
		return m[1]
	}
	if p, err := url.Parse(u); err == nil && p.User != nil && p.User.Username() != "" {
		return p.User.Username()
	}
	return "git"
}

// sshAuth signs in with the deploy key, trusting only the host keys of
// KnownHosts: a host that is not listed is refused (no trust on first use).
func (a GitAuth) sshAuth(u string) (*gitssh.PublicKeys, error) {
	if a.SSHKey == "" || a.KnownHosts == "" {
		return nil, errors.New("an SSH repository needs build.git.secretRef with the keys sshPrivateKey and knownHosts (the host's line of `ssh-keyscan HOST`)")
	}
	keys, err := gitssh.NewPublicKeys(sshUser(u), []byte(a.SSHKey), a.SSHPassphrase)
	if err != nil {
		return nil, fmt.Errorf("the sshPrivateKey of build.git.secretRef: %s", redact(err.Error(), a.secrets()))
	}
	cb, err := hostKeys(a.KnownHosts)
	if err != nil {
		return nil, err
	}
	keys.HostKeyCallback = cb
	return keys, nil
}

// hostKeys reads known_hosts lines (knownhosts wants a file: it is read at
// once and removed).
func hostKeys(lines string) (ssh.HostKeyCallback, error) {
	f, err := os.CreateTemp("", "panelx-known-hosts-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(lines + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	cb, err := knownhosts.New(f.Name())
	if err != nil {
		return nil, fmt.Errorf("the knownHosts of build.git.secretRef: %w", err)
	}
	return cb, nil
}
