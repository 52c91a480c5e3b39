// Package migrations holds the numbered SQL schema files of each backend,
// embedded into the binary. They are applied by goose (see store/postgres and
// store/sqlite).
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed postgres/*.sql
var postgres embed.FS

//go:embed sqlite/*.sql
var sqlite embed.FS

// SupabaseProfile is the SQL of the Supabase profile (grants, row level
// security, Realtime publication), applied on request after the numbered
// PostgreSQL migrations; it is idempotent.
//
//go:embed supabase/profile.sql
var SupabaseProfile string

// Postgres returns the PostgreSQL migrations, named NNNNN_description.sql.
func Postgres() fs.FS {
	sub, err := fs.Sub(postgres, "postgres")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}

// Sqlite returns the SQLite migrations, named NNNNN_description.sql.
func Sqlite() fs.FS {
	sub, err := fs.Sub(sqlite, "sqlite")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}
