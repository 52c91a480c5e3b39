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
