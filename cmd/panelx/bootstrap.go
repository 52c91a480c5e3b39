package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/panelx/panelx/apiserver/auth"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

// bootstrapTokenFile is where a server on the embedded store without JWT
// authentication leaves its first API token, so `make run` gives a usable
// installation with no extra step.
const bootstrapTokenFile = "admin-token"

// bootstrapToken creates an API token for user when no user has a way in
// yet: only with the embedded store (one server on one host), without JWT
// configuration, when user has no token and the file was never written.
// The token goes to a file readable by its owner only, never to the log.
func bootstrapToken(ctx context.Context, st store.Store, dataDir, user, serverURL string, log *zap.Logger) error {
	path := filepath.Join(dataDir, bootstrapTokenFile)
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return nil // written before (or unreadable): leave it alone
	}
	existing, err := st.Tokens().List(ctx, user)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		return nil
	}
	plain, hash, err := auth.GenerateAPIToken()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write the bootstrap token: %w", err)
	}
	if _, err := fmt.Fprintln(f, plain); err != nil {
		f.Close()
		return fmt.Errorf("write the bootstrap token: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write the bootstrap token: %w", err)
	}
	if _, err := st.Tokens().Create(ctx, store.APIToken{UserID: user, Name: "bootstrap", Prefix: auth.TokenPrefix(plain), Hash: hash}); err != nil {
		_ = os.Remove(path)
		return err
	}
	log.Info("no authentication was configured: created an API token for the first user; log in with it",
		zap.String("user", user), zap.String("tokenFile", path),
		zap.String("login", "panelx login --server "+serverURL+" < "+path))
	return nil
}

// loginURL is the URL a client on this host reaches the listener at: the
// real port, and localhost for an address that listens everywhere.
func loginURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// edgeTokenFile is where the server leaves a token for `panelx edge` on
// the same host, so the edge needs no setup.
const edgeTokenFile = "edge-token"

// bootstrapEdgeToken writes an edge token to <dataDir>/edge-token when the
// file does not exist. The token reads every project's routes and uploaded
// certificate keys: the file is the server's own (mode 0600), like the
// embedded database beside it.
func bootstrapEdgeToken(ctx context.Context, st store.Store, dataDir string, log *zap.Logger) error {
	path := filepath.Join(dataDir, edgeTokenFile)
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("write the edge token: %w", err)
	}
	plain, hash, err := auth.GenerateAPIToken()
	if err != nil {
		return err
	}
	tok, err := st.Tokens().Create(ctx, store.APIToken{UserID: authz.EdgeUserID, Name: "edge (bootstrap)", Prefix: auth.TokenPrefix(plain), Hash: hash})
	if err != nil {
		return fmt.Errorf("write the edge token: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = fmt.Fprintln(f, plain)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		_ = st.Tokens().Delete(ctx, authz.EdgeUserID, tok.ID)
		_ = os.Remove(path)
		return fmt.Errorf("write the edge token: %w", err)
	}
	log.Info("wrote a token for `panelx edge` on this host", zap.String("tokenFile", path))
	return nil
}
