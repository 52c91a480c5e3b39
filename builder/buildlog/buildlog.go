// Package buildlog keeps the logs of the builds a server runs, for the
// API to serve; it has no Docker in it (the HTTP layer never touches
// Docker).
package buildlog

import (
	"sync"

	"github.com/panelx/panelx/api"
)

// maxLines bounds the log kept of a build: the newest lines stay.
const maxLines = 10000

// Logs keeps the newest build log of each service in memory (a restart
// forgets them; the status and the image stay) and lets readers follow a
// build as it runs.
type Logs struct {
	mu   sync.Mutex
	logs map[api.Key]*BuildLog
}

// NewLogs returns an empty set of logs.
func New() *Logs { return &Logs{logs: map[api.Key]*BuildLog{}} }

// BuildLog is the log of one build.
type BuildLog struct {
	l       *Logs
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
	b := &BuildLog{l: l, running: true, changed: make(chan struct{})}
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

// Finish ends the log: readers following it stop.
func (b *BuildLog) Finish() {
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	if b.running {
		b.running = false
		close(b.changed)
	}
}

// Read returns the lines of the service's newest build from line from on
// (counting lines dropped from the front), whether the build still runs,
// and a channel closed when there is more. ok is false when no build of
// the service ran since this process started.
func (l *Logs) Read(key api.Key, from int) (lines []string, next int, running bool, more <-chan struct{}, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.logs[key]
	if !ok {
		return nil, 0, false, nil, false
	}
	i := max(from-b.dropped, 0)
	if i < len(b.lines) {
		lines = append(lines, b.lines[i:]...)
	}
	return lines, b.dropped + len(b.lines), b.running, b.changed, true
}
