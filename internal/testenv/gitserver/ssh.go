package gitserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"net"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// SSHServer serves the same repositories over SSH, read-only: the exec
// request `git-upload-pack '<path>'` runs Debian's git-upload-pack on the
// repository, for a client holding the one key it accepts.
type SSHServer struct {
	// Host is 127.0.0.1:port; KnownHosts is the known_hosts line of its
	// host key.
	Host       string
	KnownHosts string
	// ClientKey is the PEM private key it accepts (a deploy key).
	ClientKey []byte
}

// StartSSH serves s's repositories over SSH too.
func (s *Server) StartSSH(t testing.TB) *SSHServer {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "deploy key")
	if err != nil {
		t.Fatal(err)
	}
	accepted, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if string(key.Marshal()) == string(accepted.Marshal()) {
			return nil, nil
		}
		return nil, fmt.Errorf("unknown key")
	}}
	cfg.AddHostKey(hostSigner)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serveSSH(c, cfg)
		}
	}()
	host := l.Addr().String()
	_, port, _ := net.SplitHostPort(host)
	return &SSHServer{
		Host:       host,
		KnownHosts: fmt.Sprintf("[127.0.0.1]:%s %s", port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostSigner.PublicKey())))),
		ClientKey:  pem.EncodeToMemory(block),
	}
}

func (s *Server) serveSSH(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			return
		}
		go s.serveSession(ch, requests)
	}
}

// serveSession runs git-upload-pack for an exec request naming a
// repository of the server; anything else is refused.
func (s *Server) serveSession(ch ssh.Channel, requests <-chan *ssh.Request) {
	defer ch.Close()
	for req := range requests {
		if req.Type != "exec" || len(req.Payload) < 4 {
			_ = req.Reply(false, nil)
			continue
		}
		cmd := string(req.Payload[4:])
		repo, ok := strings.CutPrefix(cmd, "git-upload-pack ")
		repo = strings.Trim(repo, "'\"")
		dir := filepath.Join(s.root, path.Clean("/"+repo))
		if !ok || !strings.HasSuffix(dir, ".git") {
			_ = req.Reply(false, nil)
			continue
		}
		_ = req.Reply(true, nil)
		s.Fetches.Add(1)
		run := exec.Command("git-upload-pack", dir)
		run.Stdin, run.Stdout, run.Stderr = ch, ch, ch.Stderr()
		status := uint32(0)
		if err := run.Run(); err != nil {
			status = 1
		}
		payload := make([]byte, 4)
		binary.BigEndian.PutUint32(payload, status)
		_, _ = ch.SendRequest("exit-status", false, payload)
		return
	}
}

// SSHURL is the repository's ssh:// address on srv.
func (r *Repo) SSHURL(srv *SSHServer) string {
	return "ssh://git@" + srv.Host + "/" + filepath.Base(r.bare)
}
