package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/internal/backupdocker"
	"github.com/panelx/panelx/internal/operations"
	"github.com/panelx/panelx/operate"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

// backupConfig is the server's backup settings.
type backupConfig struct {
	dir     string
	tick    time.Duration
	disable bool
}

func (b *backupConfig) register(env *envFlags) {
	env.String(&b.dir, "backup-dir", "PANELX_BACKUP_DIR", "",
		"where local backup targets keep archives: <dir>/<project>/<spec.backup.target.local.path> (default: <data-dir>/backups)")
	env.Duration(&b.tick, "backup-tick", "PANELX_BACKUP_TICK", time.Second, "how often the leader looks at backup schedules and requested runs")
	env.Bool(&b.disable, "backups-disabled", "PANELX_BACKUPS_DISABLED", false, "run no backups or restores on this server (runs stay Pending)")
}

// newBackups makes the controller's backup manager over Docker; nil when
// disabled (then requested runs wait for a server that runs them).
func newBackups(cfg *serverConfig, cli operate.Docker, rt reconcile.Runtime, st store.Store, keyring *seal.Keyring, instance string, reg prometheus.Registerer, log *zap.Logger) *controller.Backups {
	if cfg.backups.disable {
		return nil
	}
	dir := cfg.backups.dir
	if dir == "" {
		dir = filepath.Join(cfg.backend.dataDir, "backups")
	}
	helper, err := os.Executable()
	if err == nil {
		err = operations.CheckHelperBinary(helper)
	}
	if err != nil {
		log.Warn("restores are disabled: no static panelx binary to run as the volume helper", zap.Error(err))
		helper = ""
	}
	mover, _ := rt.(reconcile.VolumeMover) // moves between nodes: the swarm runtime
	b, err := controller.NewBackups(controller.BackupOptions{
		Mover: mover, Instance: instance,
		Store: st, Keyring: keyring, Dir: dir, Log: log, Tick: cfg.backups.tick, Metrics: controller.NewBackupMetrics(reg),
		Docker: &backupdocker.Docker{CLI: cli, Instance: instance, HelperBinary: helper},
	})
	if err != nil {
		log.Warn("backups are disabled", zap.Error(err))
		return nil
	}
	return b
}
