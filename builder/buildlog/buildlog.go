// Package buildlog keeps the logs of the builds a server runs, for the
// API to serve; it has no Docker in it (the HTTP layer never touches
// Docker).
package buildlog

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/panelx/panelx/api"
)

// maxLines bounds the log kept of a build: the newest lines stay.
const maxLines = 10000

// Logs keeps the newest build log of each service and lets readers follow
// a build as it runs. With a directory, a finished log is also written
// there (<dir>/<project>/<service>.log), so a restart keeps it.
type Logs struct {
	mu   sync.Mutex
	logs map[api.Key]*BuildLog
	dir  string
}

// New returns an empty set of logs kept in memory only.
func New() *Logs { return &Logs{logs: map[api.Key]*BuildLog{}} }

// NewDir returns logs that are also kept in dir once a build ends.
func NewDir(dir string) *Logs { return &Logs{logs: map[api.Key]*BuildLog{}, dir: dir} }

// file is where the service's finished log is kept ("" without a
// directory, or for names that are not DNS labels).
func (l *Logs) file(key api.Key) string {
	if l.dir == "" || len(api.ValidateName("", key.Project)) > 0 || len(api.ValidateName("", key.Name)) > 0 {
		return ""
	}
	return filepath.Join(l.dir, key.Project, key.Name+".log")
}

// Forget drops a service's log (the service is gone).
func (l *Logs) Forget(key api.Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.logs, key)
	if f := l.file(key); f != "" {
		_ = os.Remove(f)
		_ = os.Remove(filepath.Dir(f)) // only when empty
	}
}

// BuildLog is the log of one build.
type BuildLog struct {
	l       *Logs
	key     api.Key
	lines   []string
	dropped int
	running bool
	// changed is closed (and replaced) whenever a line arrives or the
	// build ends.
	changed chan struct{}
}

// Start begins a new log for the service's build, replacing the last one.
func (l *Logs) Start(key api.Key) *BuildLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.logs[key]; ok && old.running {
		old.running = false
		close(old.changed)
	}
	b := &BuildLog{l: l, key: key, running: true, changed: make(chan struct{})}
	l.logs[key] = b
	return b
}

// Add appends a line.
func (b *BuildLog) Add(line string) {
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	if !b.running {
		return
	}
	b.lines = append(b.lines, line)
	if len(b.lines) > maxLines {
		n := len(b.lines) - maxLines
		b.lines, b.dropped = append([]string(nil), b.lines[n:]...), b.dropped+n
	}
	close(b.changed)
	b.changed = make(chan struct{})
}

// Finish ends the log: readers following it stop; it is written to the
// directory, if any, replacing the service's last one whole.
func (b *BuildLog) Finish() {
	b.l.mu.Lock()
	if !b.running {
		b.l.mu.Unlock()
		return
	}
	b.running = false
	close(b.changed)
	lines := b.lines
	current := b.l.logs[b.key] == b
	b.l.mu.Unlock()
	if f := b.l.file(b.key); f != "" && current {
		_ = writeLines(f, lines) // a log that cannot be kept is still served from memory
	}
}

func writeLines(name string, lines []string) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".log-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	for _, l := range lines {
		w.WriteString(l)
		w.WriteByte('\n')
	}
	if err := errors.Join(w.Flush(), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// loadLocked reads the service's kept log, when this process has none.
func (l *Logs) loadLocked(key api.Key) (*BuildLog, bool) {
	f := l.file(key)
	if f == "" {
		return nil, false
	}
	data, err := os.ReadFile(f)
	if errors.Is(err, fs.ErrNotExist) || err != nil {
		return nil, false
	}
	var lines []string
	if len(data) > 0 {
		lines = strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	b := &BuildLog{l: l, key: key, lines: lines, changed: make(chan struct{})}
	l.logs[key] = b
	return b, true
}

// Read returns the lines of the service's newest build from line from on
// (counting lines dropped from the front), whether the build still runs,
// and a channel closed when there is more. ok is false when no build of
// the service ran since this process started and none is kept.
func (l *Logs) Read(key api.Key, from int) (lines []string, next int, running bool, more <-chan struct{}, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.logs[key]
	if !ok {
		if b, ok = l.loadLocked(key); !ok {
			return nil, 0, false, nil, false
		}
	}
	i := max(from-b.dropped, 0)
	if i < len(b.lines) {
		lines = append(lines, b.lines[i:]...)
	}
	return lines, b.dropped + len(b.lines), b.running, b.changed, true
}
