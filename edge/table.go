package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/panelx/panelx/api/routing"
)

// routesFile holds the last table the edge received, so that it serves
// the same routes after a restart even when the server is unreachable. It
// holds uploaded certificates' keys: mode 0600.
const routesFile = "routes.json"

// state is one route table, indexed, as the proxy reads it (swapped whole,
// never changed in place).
type state struct {
	table  routing.Table
	index  *routing.Index
	active map[string]bool // every endpoint IP of the table
	hosts  map[string]bool // every host with a route
}

func newState(t routing.Table) *state {
	st := &state{table: t, index: routing.NewIndex(t), active: map[string]bool{}, hosts: map[string]bool{}}
	for _, r := range t.Routes {
		st.hosts[r.Host] = true
		for _, ip := range r.Endpoints {
			st.active[ip] = true
		}
	}
	return st
}

// activeIPs lists the endpoint IPs, sorted.
func (st *state) activeIPs() []string {
	out := make([]string, 0, len(st.active))
	for ip := range st.active {
		out = append(out, ip)
	}
	slices.Sort(out)
	return out
}

// loadTable reads the table kept in dir; ok is false when there is none.
// A file that does not hold an intact table is an error: serving half a
// table would be worse than waiting for the server.
func loadTable(dir string) (routing.Table, bool, error) {
	var t routing.Table
	data, err := os.ReadFile(filepath.Join(dir, routesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return t, false, nil
	}
	if err != nil {
		return t, false, fmt.Errorf("read kept routes: %w", err)
	}
	if err := json.Unmarshal(data, &t); err != nil {
		return t, false, fmt.Errorf("read kept routes %s: %w", filepath.Join(dir, routesFile), err)
	}
	if !t.Valid() {
		return t, false, fmt.Errorf("kept routes %s do not match their version; ignoring them", filepath.Join(dir, routesFile))
	}
	return t, true, nil
}

// saveTable writes the table atomically: a crash leaves the old file or
// the new one, never a mix.
func saveTable(dir string, t routing.Table) error {
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode routes: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, routesFile), data, 0o600)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // make the rename itself durable
		d.Close()
	}
	return nil
}
