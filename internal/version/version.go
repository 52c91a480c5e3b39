// Package version holds build information, set with -ldflags at build time
// (see the Makefile).
package version

import "runtime"

// Set by the linker: -X github.com/panelx/panelx/internal/version.Version=…
var (
	Version = "dev"
	Commit  = "unknown"
	Date    = "unknown"
)

// String describes the build in one line.
func String() string {
	return "panelx " + Version + " (commit " + Commit + ", built " + Date + ", " + runtime.Version() + ")"
}
