package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/builder"
	"github.com/panelx/panelx/builder/buildctx"
	"github.com/panelx/panelx/builder/buildlog"
	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/internal/dockerclient"
	"github.com/panelx/panelx/internal/version"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/web"
)

type serverConfig struct {
	backend         backendFlags
	listen          string
	migrate         bool
	shutdownTimeout time.Duration

	api           apiConfig
	bootstrapUser string
	supabase      bool
	backups       backupConfig
	runtime       runtimeConfig
	dashboard     web.Config
	secretKeyFile string
	profiler      bool
	edgeToken     bool
	drainTimeout  time.Duration

	controller       bool
	containerMetrics bool
	metricsListen    string
	workers          int
	teardownParallel int
	resyncInterval   time.Duration
	pullInterval     time.Duration
	maxUploadBytes   int
	buildRepository  string
	buildConcurrency int
	buildLogs        *buildlog.Logs
	buildContextDir  string
	maxBuildContext  int
	buildContexts    *buildctx.Store
}

func newServerCmd(g *globalFlags) *cobra.Command {
	cfg := &serverConfig{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the PanelX server: API, reconcile loop and metrics",
		Long: `Run the PanelX server. It migrates the database schema (unless --migrate=false),
starts the reconcile loop against the Docker Engine at DOCKER_HOST (default: the
local socket), and serves the REST API on --listen under /api/v1 (OpenAPI
document at /api/v1/openapi.json), with /healthz (the process is alive) and
/readyz (the database is reachable and migrated).

Callers authenticate with Supabase JWTs (--jwt-secret and/or --jwks-url) or
PanelX API tokens; with neither JWT setting only API tokens work — create the
first with ` + "`panelx token create --user <id>`" + `.

State lives in PostgreSQL when --database-url is set, otherwise in an embedded
SQLite database in --data-dir. Several servers may share one PostgreSQL
database: one runs the reconcile loop, the others stand by and take over.
SIGTERM or Ctrl-C stops it gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // best effort on exit
			return runServer(cmd.Context(), cfg, log)
		},
	}
	env := newEnvFlags(cmd.Flags())
	cfg.backend.register(env)
	env.String(&cfg.listen, "listen", "PANELX_LISTEN", ":8080", "address to serve the API on")
	env.Bool(&cfg.migrate, "migrate", "PANELX_MIGRATE", true, "apply pending database migrations at start")
	env.Duration(&cfg.shutdownTimeout, "shutdown-timeout", "PANELX_SHUTDOWN_TIMEOUT", 30*time.Second, "how long to let requests finish on shutdown")
	env.Bool(&cfg.controller, "controller", "PANELX_CONTROLLER", true, "run the reconcile loop (false: serve the API only)")
	env.Bool(&cfg.containerMetrics, "container-metrics", "PANELX_CONTAINER_METRICS", true, "collect CPU, memory, network and block I/O of the managed containers for /metrics and the live stream")
	env.String(&cfg.metricsListen, "metrics-listen", "PANELX_METRICS_LISTEN", "", "also serve /metrics, without authentication, on this address (e.g. 127.0.0.1:9464; empty: only on the API listener, for administrators)")
	env.Bool(&cfg.profiler, "profiler", "PANELX_PROFILER", false, "also serve Go's profiler (/debug/pprof/) on the metrics listener (needs --metrics-listen; keep it private)")
	env.Int(&cfg.workers, "workers", "PANELX_WORKERS", controller.DefaultWorkers, "keys reconciled in parallel")
	env.Int(&cfg.teardownParallel, "teardown-parallel", "PANELX_TEARDOWN_PARALLEL", reconcile.DefaultTeardownParallel, "containers stopped and removed at once in the background (deletions, scale-downs)")
	env.Duration(&cfg.resyncInterval, "resync-interval", "PANELX_RESYNC_INTERVAL", controller.DefaultResyncInterval, "period of the full resync safety net")
	env.Duration(&cfg.pullInterval, "pull-interval", "PANELX_PULL_INTERVAL", controller.DefaultPullInterval, "how often services with imagePullPolicy Always look for a moved tag")
	env.String(&cfg.buildRepository, "build-repository", "PANELX_BUILD_REPOSITORY", builder.DefaultRepository, "services built from source are tagged <repository>/<project>-<service>:<commit-12>-<request-8>")
	env.Int(&cfg.buildConcurrency, "build-concurrency", "PANELX_BUILD_CONCURRENCY", 1, "builds that run at once on this host (the others wait, Queued)")
	env.String(&cfg.buildContextDir, "build-context-dir", "PANELX_BUILD_CONTEXT_DIR", "",
		"where uploaded build contexts are kept (default: <data-dir>/build-contexts; with several servers, a directory they share)")
	env.Int(&cfg.maxBuildContext, "max-build-context", "PANELX_MAX_BUILD_CONTEXT", buildctx.DefaultMaxBytes, "largest uploaded build context, in bytes uncompressed")
	env.Int(&cfg.maxUploadBytes, "max-upload-bytes", "PANELX_MAX_UPLOAD_BYTES", apiserver.DefaultMaxUploadBytes, "largest file upload into a volume")
	cfg.api.register(env)
	cfg.backups.register(env)
	cfg.runtime.register(env)
	env.Bool(&cfg.supabase, "supabase", "PANELX_SUPABASE", false,
		"with --migrate, also apply the Supabase profile (grants, row level security, Realtime publication; docs/supabase.md)")
	env.String(&cfg.dashboard.SupabaseURL, "supabase-url", "PANELX_SUPABASE_URL", "",
		"the Supabase project's URL (https://<ref>.supabase.co): with --supabase-anon-key the dashboard offers email/password sign-in through Supabase Auth (needs --jwt-secret or --jwks-url)")
	env.String(&cfg.dashboard.SupabaseAnonKey, "supabase-anon-key", "PANELX_SUPABASE_ANON_KEY", "",
		"the Supabase project's anon (publishable) key, for the dashboard's sign-in (public by design: every browser gets it)")
	env.String(&cfg.bootstrapUser, "bootstrap-user", "PANELX_BOOTSTRAP_USER", "admin",
		"embedded store without JWT settings: on first start, write an API token for this user to <data-dir>/"+bootstrapTokenFile+"; the user is a server administrator (empty: neither)")
	env.Bool(&cfg.edgeToken, "edge-token", "PANELX_BOOTSTRAP_EDGE_TOKEN", true,
		"on first start, write a token for `panelx edge` on this host to <data-dir>/"+edgeTokenFile+" (mode 0600)")
	env.String(&cfg.secretKeyFile, "secret-key-file", "PANELX_SECRET_KEY_FILE", "",
		"master key file sealing secrets and registry passwords (default with the embedded database: <data-dir>/"+secretKeyFile+", generated on first start; with PostgreSQL required for secrets — every server needs the same file)")
	env.Duration(&cfg.drainTimeout, "edge-drain-timeout", "PANELX_EDGE_DRAIN_TIMEOUT", reconcile.DefaultDrainTimeout,
		"how long a replica taken out of the edge's routes waits for the edges to finish its requests before it is stopped anyway")
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if err := env.Err(); err != nil {
			return err
		}
		if err := cfg.api.check(); err != nil {
			return err
		}
		if _, err := cfg.dashboard.ContentSecurityPolicy(); err != nil {
			return fmt.Errorf("PANELX_SUPABASE_URL, PANELX_SUPABASE_ANON_KEY: %w", err)
		}
		if cfg.dashboard.SupabaseURL != "" && cfg.api.verifier == nil {
			return errors.New("PANELX_SUPABASE_URL needs PANELX_JWT_SECRET or PANELX_JWKS_URL: the API must verify the tokens Supabase Auth issues")
		}
		return nil
	}
	return cmd
}

func runServer(ctx context.Context, cfg *serverConfig, log *zap.Logger) error {
	log.Info("starting", zap.String("version", version.String()))
	st, closeStore, err := cfg.backend.open(ctx, log)
	if err != nil {
		return err
	}
	defer closeStore()
	if cfg.migrate {
		applied, err := st.Migrate(ctx)
		if err != nil {
			return err
		}
		log.Info("database schema is up to date", zap.Int("applied", len(applied)))
		if cfg.supabase {
			if err := applySupabaseProfile(ctx, st); err != nil {
				return err
			}
			log.Info("applied the Supabase profile")
		}
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	defer ln.Close() // once serving, the HTTP server owns it
	if cfg.backend.databaseURL == "" && cfg.api.verifier == nil && cfg.bootstrapUser != "" {
		if err := bootstrapToken(ctx, st, cfg.backend.dataDir, cfg.bootstrapUser, loginURL(ln.Addr()), log); err != nil {
			return err
		}
		// One server, one host, no identity provider: whoever holds the
		// first token owns the installation, so it is an administrator
		// (ports below 1024, host access, /metrics) without more settings.
		if !slices.Contains(cfg.api.adminUsers, cfg.bootstrapUser) {
			cfg.api.adminUsers = append(cfg.api.adminUsers, cfg.bootstrapUser)
		}
	}
	if cfg.edgeToken {
		if err := bootstrapEdgeToken(ctx, st, cfg.backend.dataDir, log); err != nil {
			log.Warn("no edge token written", zap.Error(err))
		}
	}
	keyring := loadKeyring(cfg.secretKeyFile, &cfg.backend, log)
	checkSealed(ctx, st, keyring, log)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reg := newRegistry()
	ctlMetrics := controller.NewMetrics(reg)
	stats := &lazyStats{}
	ops := &lazyOperations{}
	cfg.buildLogs = buildlog.NewDir(filepath.Join(cfg.backend.dataDir, "build-logs"))
	if cfg.buildContextDir == "" {
		cfg.buildContextDir = filepath.Join(cfg.backend.dataDir, "build-contexts")
	}
	cfg.buildContexts = buildctx.NewStore(cfg.buildContextDir, int64(cfg.maxBuildContext))
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	fail := func(err error) {
		if err != nil && ctx.Err() == nil {
			errc <- err
			cancel()
		}
	}
	if cfg.controller || cfg.containerMetrics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail(runDockerSide(ctx, cfg, st, keyring, reg, ctlMetrics, stats, ops, log))
		}()
	}
	if cfg.metricsListen != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail(serveMetricsListener(ctx, cfg.metricsListen, reg, cfg.profiler, log))
		}()
	}
	cfg.api.logSummary(log)
	opts := cfg.api.options()
	opts.Store, opts.Logger = st, log
	opts.Metrics, opts.Gatherer = reg, reg
	if cfg.containerMetrics {
		opts.Stats = stats // without the collector the stream says so (503), not an empty list
	}
	opts.Operations, opts.MaxUploadBytes = ops, int64(cfg.maxUploadBytes)
	opts.Keyring = keyring
	opts.BuildLogs, opts.BuildContexts = cfg.buildLogs, cfg.buildContexts
	// The dashboard this configuration asks for (its Supabase settings).
	if opts.Dashboard, err = web.New(cfg.dashboard); err != nil {
		return err
	}
	h := apiserver.New(opts)
	wg.Add(1)
	go func() { defer wg.Done(); h.FollowChanges(ctx) }()
	log.Info("serving API", zap.String("addr", ln.Addr().String()))
	serveErr := apiserver.Serve(ctx, ln, h.Handler(), cfg.shutdownTimeout, log, h.StopStreams)
	cancel()
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	if err := errors.Join(append(errs, serveErr)...); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// runDockerSide connects to Docker and, once the schema is there, serves
// logs, terminals and files, runs the container metrics collector and
// (when enabled) the controller until ctx ends.
func runDockerSide(ctx context.Context, cfg *serverConfig, st migrator, keyring *seal.Keyring, reg prometheus.Registerer, m *controller.Metrics, stats *lazyStats, ops *lazyOperations, log *zap.Logger) error {
	cli, err := dockerclient.New(ctx)
	if err != nil {
		return fmt.Errorf("%w (is dockerd running? set DOCKER_HOST, or --controller=false --container-metrics=false to serve the API only)", err)
	}
	defer cli.Close()
	instance, err := waitForSchema(ctx, st, log)
	if err != nil {
		return err
	}
	ops.p.Store(startOperations(ctx, cli, instance, cfg.runtime.kind, log))
	defer ops.p.Store(nil) // the client closes: 503 rather than errors
	if cfg.containerMetrics {
		src, err := startContainerMetrics(ctx, cli, instance, reg, log)
		if err != nil {
			return err
		}
		stats.set(src)
	}
	if !cfg.controller {
		<-ctx.Done()
		return nil
	}
	log.Info("reconciling Docker", zap.String("docker", cli.DaemonHost()), zap.String("instance", instance))
	rt, err := newRuntime(ctx, cfg.runtime, cli, instance, m, log)
	if err != nil {
		return err
	}
	ctl, err := controller.New(controller.Options{
		Store:            st,
		Runtime:          rt,
		Instance:         instance,
		Log:              log,
		Workers:          cfg.workers,
		TeardownParallel: cfg.teardownParallel,
		ResyncInterval:   cfg.resyncInterval,
		PullInterval:     cfg.pullInterval,
		DrainTimeout:     cfg.drainTimeout,
		Metrics:          m,
		Keyring:          keyring,
		Docker:           cli,
		BuildLogs:        cfg.buildLogs,
		BuildRepository:  cfg.buildRepository,
		BuildConcurrency: cfg.buildConcurrency,
		BuildContexts:    cfg.buildContexts,
		Backups:          newBackups(cfg, cli, rt, st, keyring, instance, reg, log),
	})
	if err != nil {
		return err
	}
	if err := ctl.Run(ctx); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	return nil
}

// lazyStats is the API's live-stats source, set once the collector runs.
type lazyStats struct {
	p atomic.Pointer[apiserver.StatsSource]
}

func (l *lazyStats) set(s apiserver.StatsSource) { l.p.Store(&s) }

func (l *lazyStats) ProjectStats(project string) []apiserver.ContainerStats {
	if s := l.p.Load(); s != nil {
		return (*s).ProjectStats(project)
	}
	return nil
}

// waitForSchema waits until the database is migrated (a server started with
// --migrate=false serves /readyz meanwhile) and returns the installation ID.
func waitForSchema(ctx context.Context, st migrator, log *zap.Logger) (string, error) {
	for {
		err := st.Ready(ctx)
		if err == nil {
			return st.InstallationID(ctx)
		}
		log.Warn("reconcile loop waits for the database", zap.Error(err))
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}
