package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/panelx/panelx/edge"
	"github.com/panelx/panelx/edge/certstore"
	"github.com/panelx/panelx/internal/version"
)

type edgeConfig struct {
	server, token, tokenFile string
	dataDir                  string
	httpAddr, httpsAddr      string
	adminAddr                string
	databaseURL              string
	acme                     bool
	acmeCA, acmeStaging      string
	acmeEmail, acmeRoots     string
	retryMin, retryMax       time.Duration
	challenges               []string
	timeout                  time.Duration
	id, name                 string
}

func newEdgeCmd(g *globalFlags) *cobra.Command {
	cfg := &edgeConfig{}
	cmd := &cobra.Command{
		Use:   "edge",
		Short: "Run the edge: the HTTPS reverse proxy that serves services on their domains",
		Long: `Run the edge, PanelX's data plane: it listens on --http and --https, sends each
request to a ready replica of the service whose spec.domains names the request's
host (and path), and gets certificates from an ACME CA (Let's Encrypt by default:
running it means agreeing to the CA's terms) or serves the ones uploaded.

It follows the server's API (--server) with an edge token (--token, or the file
--token-file, which the server writes on its first start), keeps the last route
table in <data-dir>/edge, and keeps serving it while the server is down,
restarting or killed, and after its own restart. With --database-url (the
server's PostgreSQL), certificates, the ACME account and ACME locks live in the
database, so several edges share them; otherwise in <data-dir>/edge.

/metrics, /healthz and /readyz are served on --admin-listen (keep it on
loopback: managed containers cannot reach it there). SIGTERM stops it after the
requests in flight.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // best effort on exit
			return runEdge(cmd.Context(), cfg, log)
		},
	}
	env := newEnvFlags(cmd.Flags())
	env.String(&cfg.server, "server", "PANELX_EDGE_SERVER", "http://127.0.0.1:8080", "the PanelX server's API the edge follows")
	env.Secret(&cfg.token, "token", "PANELX_EDGE_TOKEN", "an edge token (panelx token create --edge); never printed")
	env.String(&cfg.tokenFile, "token-file", "PANELX_EDGE_TOKEN_FILE", "", "read the edge token from this file (default: <data-dir>/"+edgeTokenFile+")")
	env.String(&cfg.dataDir, "data-dir", "PANELX_DATA_DIR", defaultDataDir(), "the edge keeps its state in <data-dir>/edge")
	env.String(&cfg.httpAddr, "http", "PANELX_EDGE_HTTP", edge.DefaultHTTPAddr, "address for plain HTTP (ACME HTTP-01 challenges, redirects)")
	env.String(&cfg.httpsAddr, "https", "PANELX_EDGE_HTTPS", edge.DefaultHTTPSAddr, "address for HTTPS (HTTP/2; ACME TLS-ALPN-01 challenges)")
	env.String(&cfg.adminAddr, "admin-listen", "PANELX_EDGE_ADMIN_LISTEN", edge.DefaultAdminAddr, "address of /metrics, /healthz, /readyz (empty: none)")
	env.Secret(&cfg.databaseURL, "database-url", "PANELX_DATABASE_URL", "PostgreSQL URL: keep certificates and ACME locks there, shared by every edge; never printed")
	env.Bool(&cfg.acme, "acme", "PANELX_ACME", true, "order certificates from the ACME CA (false: serve uploaded certificates only)")
	env.String(&cfg.acmeCA, "acme-ca", "PANELX_ACME_CA", certmagic.LetsEncryptProductionCA, "the ACME CA's directory URL")
	env.String(&cfg.acmeStaging, "acme-staging-ca", "PANELX_ACME_STAGING_CA", "",
		"a CA retries try first, sparing the real one's rate limits (default: Let's Encrypt staging with the default CA, none otherwise)")
	env.String(&cfg.acmeEmail, "acme-email", "PANELX_ACME_EMAIL", "", "contact address of the ACME account")
	env.String(&cfg.acmeRoots, "acme-ca-roots", "PANELX_ACME_CA_ROOTS", "", "PEM file of roots to trust for the ACME CA's own HTTPS (a private CA)")
	env.List(&cfg.challenges, "acme-challenges", "PANELX_ACME_CHALLENGES", []string{edge.ChallengeHTTP01, edge.ChallengeTLSALPN01},
		"ACME challenges to answer: http-01 (needs --http reachable on port 80), tls-alpn-01 (needs --https on 443), comma-separated")
	env.Duration(&cfg.retryMin, "acme-retry-min", "PANELX_ACME_RETRY_MIN", 30*time.Second, "first wait after a failed certificate order (it doubles)")
	env.Duration(&cfg.retryMax, "acme-retry-max", "PANELX_ACME_RETRY_MAX", time.Hour, "longest wait between certificate orders")
	env.Duration(&cfg.timeout, "timeout", "PANELX_EDGE_TIMEOUT", edge.DefaultTimeout, "how long a replica may take to answer when its domain sets no timeout")
	env.String(&cfg.id, "id", "PANELX_EDGE_ID", "", "this edge's id in reports (default: made once, kept in <data-dir>/edge/edge-id)")
	env.String(&cfg.name, "name", "PANELX_EDGE_NAME", "", "this edge's name in reports (default: the hostname)")
	cmd.PreRunE = func(*cobra.Command, []string) error { return env.Err() }
	return cmd
}

func runEdge(ctx context.Context, cfg *edgeConfig, log *zap.Logger) error {
	log.Info("starting edge", zap.String("version", version.String()))
	u, err := url.Parse(cfg.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--server %q: want the server's URL, such as http://127.0.0.1:8080", cfg.server)
	}
	token := strings.TrimSpace(cfg.token)
	if token == "" {
		path := cfg.tokenFile
		if path == "" {
			path = filepath.Join(cfg.dataDir, edgeTokenFile)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("no edge token: set --token or PANELX_EDGE_TOKEN, or make %s readable (the server writes it on its first start; `panelx token create --edge` makes one): %w", path, err)
		}
		token = strings.TrimSpace(string(data))
	}
	opts := edge.Options{
		HTTPAddr: cfg.httpAddr, HTTPSAddr: cfg.httpsAddr, AdminAddr: cfg.adminAddr,
		StateDir: filepath.Join(cfg.dataDir, "edge"), Server: cfg.server, Token: token,
		ID: cfg.id, Name: cfg.name, DefaultTimeout: cfg.timeout, Log: log, Registry: newRegistry(),
		ACME: edge.ACMEOptions{Directory: cfg.acmeCA, Staging: cfg.acmeStaging, Email: cfg.acmeEmail, Disabled: !cfg.acme,
			RetryMin: cfg.retryMin, RetryMax: cfg.retryMax, Challenges: cfg.challenges},
	}
	if cfg.acmeStaging == "" && cfg.acmeCA == certmagic.LetsEncryptProductionCA {
		opts.ACME.Staging = certmagic.LetsEncryptStagingCA
	}
	if cfg.acmeRoots != "" {
		pem, err := os.ReadFile(cfg.acmeRoots)
		if err != nil {
			return fmt.Errorf("--acme-ca-roots: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--acme-ca-roots %s: no PEM certificate in it", cfg.acmeRoots)
		}
		opts.ACME.TrustedRoots = pool
	}
	if cfg.databaseURL != "" {
		pool, err := pgxpool.New(ctx, cfg.databaseURL)
		if err != nil {
			return errors.New("--database-url: invalid connection string (check its syntax; the password is not shown)")
		}
		defer pool.Close()
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = pool.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("certificate storage: connect to the database: %w", err)
		}
		opts.ACME.Storage = certstore.New(pool)
		log.Info("certificates are kept in PostgreSQL, shared with the other edges")
	}
	e, err := edge.New(opts)
	if err != nil {
		return err
	}
	return e.Run(ctx)
}
