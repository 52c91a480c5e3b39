package store

import (
	"context"

	"github.com/panelx/panelx/api"
)

// BackupStore is implemented by backends that record backup runs (both
// do); the controller and the API reach the runs through it.
type BackupStore interface {
	BackupRuns() BackupRuns
}

// BackupRunFilter narrows a list of runs.
type BackupRunFilter struct {
	Volume string
	Op     api.BackupOp
	Phase  api.BackupPhase
	Limit  int // newest first; 0 means 100, at most 1000
}

// BackupRuns stores backup and restore runs. A run's row goes with its
// project's. At most one run of a volume is Running at a time: a second
// (Create or Update to Running) fails with ErrConflict.
type BackupRuns interface {
	// Create stores a new run; ID and CreatedAt are set by the store.
	Create(ctx context.Context, run api.BackupRun) (api.BackupRun, error)
	// Get returns a run of the project (ErrNotFound otherwise).
	Get(ctx context.Context, project, id string) (api.BackupRun, error)
	// List returns a project's runs, newest first.
	List(ctx context.Context, project string, f BackupRunFilter) ([]api.BackupRun, error)
	// Update writes everything but the ID, project, volume, op, trigger
	// and creation time, only while the stored phase is from (ErrConflict
	// otherwise): a run's state moves by compare-and-set.
	Update(ctx context.Context, run api.BackupRun, from api.BackupPhase) (api.BackupRun, error)
	// Open lists the Pending and Running runs of every project, oldest first.
	Open(ctx context.Context) ([]api.BackupRun, error)
}
