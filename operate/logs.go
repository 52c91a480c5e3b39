package operate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/errdefs"

	"github.com/panelx/panelx/naming"
)

// Streams of a LogLine.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	// StreamSystem lines come from Docker or PanelX, not from the
	// container: a log stream that failed, a container follow mode picked up.
	StreamSystem = "system"
)

// DefaultMaxLineBytes is the default LogOptions.MaxLineBytes.
const DefaultMaxLineBytes = 64 * 1024

// Follow-mode merging: a line is held until lines of the other replicas
// with an earlier timestamp had a chance to arrive.
const (
	// followDelay: a line is released once its Docker timestamp is this old.
	followDelay = 100 * time.Millisecond
	// followMaxHold releases a line held this long whatever its timestamp
	// says (a daemon whose clock runs ahead).
	followMaxHold = time.Second
	// followStartWait: at the start, lines wait (at most this long) until
	// every replica delivered its first line, so the backlogs interleave.
	followStartWait = 500 * time.Millisecond
)

// LogTarget names the service whose logs to read.
type LogTarget struct {
	Instance string // the installation (dev.panelx.instance label)
	Project  string
	Service  string
	// Replica restricts the logs to one replica index; nil means all.
	Replica *int
}

// LogOptions map onto Docker's log options.
type LogOptions struct {
	// Follow keeps streaming new lines until the context ends.
	Follow bool
	// Tail is the number of past lines of each replica container; nil
	// means all of them. With Follow, 0 gives only new lines.
	Tail *int
	// Since drops lines older than this (zero: no bound). ParseSince turns
	// "10m" or an RFC 3339 time into one.
	Since time.Time
	// MaxLineBytes splits longer lines into pieces of at most this many
	// bytes (Partial set on all but the last). 0 means DefaultMaxLineBytes;
	// values below 1024 are raised to 1024.
	MaxLineBytes int
}

// LogLine is one line of one replica.
type LogLine struct {
	// Replica is the replica index; -1 on a StreamSystem line that is
	// about no container in particular.
	Replica   int
	Container string // container name
	Stream    string // StreamStdout, StreamStderr or StreamSystem
	// Time is Docker's timestamp of the line; it is always filled
	// (PanelX always asks Docker for timestamps, to merge replicas), so the
	// API's "timestamps" parameter is only a question of rendering it.
	Time time.Time
	// Text is the line without its newline (and without the CR of TTY
	// output). It is not checked for valid UTF-8.
	Text string
	// Partial marks a piece of a line longer than MaxLineBytes; the line
	// goes on in the next LogLine of the same container and stream.
	Partial bool
}

// Logs streams the logs of a service's replica containers (stopped ones
// too: their logs are what explains a crash), merged into one channel.
//
// Without Follow, the channel delivers every line in timestamp order across
// replicas and closes. With Follow it stays open until ctx ends; lines are
// ordered within a short window (followDelay) and may arrive out of order
// across replicas beyond it. A container that appears or (re)starts while
// following — a replacement for a replica index, a restart — is picked up:
// a StreamSystem line announces it, and its lines follow (a restarted
// container resumes after its last line). The stream of a container that
// stops or is removed simply ends.
//
// Memory is bounded: each replica holds at most one line of at most
// MaxLineBytes, and a consumer that does not read blocks the producers
// (the channel is unbuffered), which in turn stop reading from Docker.
func Logs(ctx context.Context, cli Docker, target LogTarget, opts LogOptions) (<-chan LogLine, error) {
	if err := checkLogArgs(target, opts); err != nil {
		return nil, err
	}
	opts = normalize(opts)
	ctx, cancel := context.WithCancel(ctx)
	m := newMerger(target, opts, containerLogs(cli))
	// Subscribe before listing, so a container starting in between is
	// seen by one or the other (or both: sources are unique by ID).
	if opts.Follow {
		m.events, m.eventErrs = cli.Events(ctx, events.ListOptions{Filters: m.eventFilter()})
	}
	list, err := listReplicas(ctx, cli, target.Instance, target.Project, target.Service, target.Replica)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("logs: %w", err)
	}
	go m.run(ctx, cancel, list)
	return m.out, nil
}

// checkLogArgs refuses a negative tail or replica.
func checkLogArgs(target LogTarget, opts LogOptions) error {
	if opts.Tail != nil && *opts.Tail < 0 {
		return errors.New("logs: tail must not be negative")
	}
	if target.Replica != nil && *target.Replica < 0 {
		return errors.New("logs: replica must not be negative")
	}
	return nil
}

// normalize bounds MaxLineBytes.
func normalize(opts LogOptions) LogOptions {
	switch {
	case opts.MaxLineBytes == 0:
		opts.MaxLineBytes = DefaultMaxLineBytes
	case opts.MaxLineBytes < minLineBytes:
		opts.MaxLineBytes = minLineBytes
	}
	return opts
}

func newMerger(target LogTarget, opts LogOptions, openLogs logOpener) *logMerger {
	return &logMerger{
		target: target, opts: opts, openLogs: openLogs,
		out:   make(chan LogLine),
		items: make(chan srcItem),
		srcs:  map[int]*logSource{},
		byID:  map[string]int{},
	}
}

// logOpener opens the log stream of one source and tells whether it is a
// TTY's (raw) rather than stdcopy-multiplexed.
type logOpener func(ctx context.Context, c replicaContainer, opts container.LogsOptions) (io.ReadCloser, bool, error)

// containerLogs opens a container's logs on the local engine.
func containerLogs(cli Docker) logOpener {
	return func(ctx context.Context, c replicaContainer, opts container.LogsOptions) (io.ReadCloser, bool, error) {
		var tty bool
		err := withTimeout(ctx, func(ctx context.Context) error {
			in, err := cli.ContainerInspect(ctx, c.ID)
			if err == nil && in.Config != nil {
				tty = in.Config.Tty
			}
			return err
		})
		if err != nil {
			return nil, false, err
		}
		rc, err := cli.ContainerLogs(ctx, c.ID, opts)
		return rc, tty, err
	}
}

// ParseSince turns "" (no bound), a duration ("15m", meaning that long
// before now), an RFC 3339 time or Unix seconds ("1700000000.5") into a time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("since %q: negative duration", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < math.MaxInt32*4 {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("since %q: want a duration (15m), an RFC 3339 time or Unix seconds", s)
}

// dockerTime formats a time the way Docker's since parameter takes it.
func dockerTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// logSource is one container's log stream as the merger sees it.
type logSource struct {
	c       replicaContainer
	initial bool // listed at the start (not found while following)
	seen    bool // delivered a line or ended
	head    *LogLine
	waiting bool          // asked for a line that has not come yet
	ended   bool          // the stream ended; head is its last line
	reopen  bool          // the container restarted: follow it again once this stream ends
	token   chan struct{} // the merger's permission to send one line
	arrived time.Time
	// cancel ends the stream early (a Swarm task that is over: its follow
	// stream would stay open); closing marks it, so its end is no failure.
	cancel  context.CancelFunc
	closing bool
	// over is when the source's task was first seen over (Swarm).
	over time.Time
}

type srcItem struct {
	src  int
	line piece
	done bool
	err  error
}

// logMerger owns every source; sources run in their own goroutines and
// send one line at a time, each after receiving a token.
type logMerger struct {
	target   LogTarget
	opts     LogOptions
	openLogs logOpener
	out      chan LogLine
	items    chan srcItem

	events    <-chan events.Message
	eventErrs <-chan error
	// tasks delivers the service's Swarm tasks while following (nil on the
	// single engine), taskErrs the failures of looking them up.
	tasks    <-chan []replicaContainer
	taskErrs <-chan error
	taskFail bool // the last lookup failed (said once)

	srcs   map[int]*logSource
	byID   map[string]int       // container ID → active source
	resume map[string]time.Time // container ID → where a restart resumes
	nextID int
	start  time.Time
	wg     sync.WaitGroup
}

func (m *logMerger) eventFilter() filters.Args {
	f := serviceFilter(m.target.Instance, m.target.Project, m.target.Service, m.target.Replica)
	f.Add("type", "container")
	f.Add("event", "start")
	f.Add("event", "rename")
	return f
}

func (m *logMerger) run(ctx context.Context, cancel context.CancelFunc, initial []replicaContainer) {
	defer func() {
		cancel()
		m.wg.Wait() // sources end with ctx; none may send after close
		close(m.out)
	}()
	m.start = time.Now()
	m.resume = map[string]time.Time{}
	tail := "all"
	if m.opts.Tail != nil {
		tail = strconv.Itoa(*m.opts.Tail)
	}
	for _, c := range initial {
		m.open(ctx, c, m.opts.Since, tail, true)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if !m.emitReady(ctx) {
			return
		}
		if !m.opts.Follow && len(m.srcs) == 0 {
			return
		}
		if d, ok := m.nextDeadline(); ok {
			timer.Reset(time.Until(d))
		}
		select {
		case it := <-m.items:
			if !m.apply(ctx, it) {
				return
			}
		case ev, ok := <-m.events:
			if !ok {
				m.events = nil
			} else if !m.handleEvent(ctx, ev) {
				return
			}
		case list := <-m.tasks:
			if !m.handleTasks(ctx, list) {
				return
			}
		case err := <-m.taskErrs:
			if !m.taskFail && ctx.Err() == nil && !m.system(ctx, "", -1, "looking for new tasks failed (trying again): "+err.Error()) {
				return
			}
			m.taskFail = true
		case err := <-m.eventErrs:
			// The events stream failed (or closed): lines keep coming from
			// the containers already followed.
			m.events, m.eventErrs = nil, nil
			if err != nil && ctx.Err() == nil && !m.system(ctx, "", -1, "not watching for new containers any more: "+err.Error()) {
				return
			}
		case <-timer.C:
		case <-ctx.Done():
			return
		}
	}
}

// open starts streaming one container.
func (m *logMerger) open(ctx context.Context, c replicaContainer, since time.Time, tail string, initial bool) {
	id := m.nextID
	m.nextID++
	sctx, scancel := context.WithCancel(ctx)
	src := &logSource{c: c, initial: initial, waiting: true, token: make(chan struct{}, 1), cancel: scancel}
	src.token <- struct{}{}
	m.srcs[id] = src
	m.byID[c.ID] = id
	if _, ok := m.resume[c.ID]; !ok {
		m.resume[c.ID] = time.Now()
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer scancel()
		err := m.stream(sctx, id, c, since, tail, src.token)
		select {
		case m.items <- srcItem{src: id, done: true, err: err}:
		case <-ctx.Done():
		}
	}()
}

// stream reads one source's logs and sends its lines to the merger.
func (m *logMerger) stream(ctx context.Context, src int, c replicaContainer, since time.Time, tail string, token <-chan struct{}) error {
	rc, tty, err := m.openLogs(ctx, c, container.LogsOptions{
		ShowStdout: true, ShowStderr: true, Timestamps: true,
		// A task that is over has all its lines: following it would wait
		// forever (Swarm keeps a task's follow stream open).
		Follow: m.opts.Follow && !c.Ended, Tail: tail, Since: dockerTime(since),
	})
	if err != nil {
		return err
	}
	defer rc.Close()
	// A read blocked on a quiet container ends when ctx does.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	emit := func(p piece) error {
		select {
		case <-token:
		case <-ctx.Done():
			return ctx.Err()
		}
		if p.Time.IsZero() {
			p.Time = time.Now() // Docker's own messages carry no timestamp
		}
		select {
		case m.items <- srcItem{src: src, line: p}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if tty {
		return parseRaw(rc, m.opts.MaxLineBytes, emit)
	}
	return parseMultiplexed(rc, m.opts.MaxLineBytes, emit)
}

// apply takes a source's line or end; false means the consumer is gone.
func (m *logMerger) apply(ctx context.Context, it srcItem) bool {
	src, ok := m.srcs[it.src]
	if !ok {
		return true
	}
	src.seen = true
	if it.done {
		// The end comes without a token: the last line may still be held.
		src.ended, src.waiting = true, false
		if src.head == nil {
			m.drop(it.src)
		}
		if m.byID[src.c.ID] == it.src {
			delete(m.byID, src.c.ID)
		}
		if it.err != nil && ctx.Err() == nil && !src.closing && !errdefs.IsNotFound(it.err) {
			return m.system(ctx, src.c.Name, src.c.Replica, "log stream failed: "+it.err.Error())
		}
		if src.reopen {
			m.open(ctx, src.c, m.resume[src.c.ID], "all", false)
		}
		return true
	}
	l := LogLine{Replica: src.c.Replica, Container: src.c.Name, Stream: it.line.Stream,
		Time: it.line.Time, Text: it.line.Text, Partial: it.line.Partial}
	src.head, src.waiting, src.arrived = &l, false, time.Now()
	m.resume[src.c.ID] = l.Time.Add(time.Nanosecond)
	return true
}

func (m *logMerger) drop(id int) { delete(m.srcs, id) }

// handleEvent picks up a container that started (new, or restarted after
// its stream ended) and follows renames.
func (m *logMerger) handleEvent(ctx context.Context, ev events.Message) bool {
	id := ev.Actor.ID
	name := ev.Actor.Attributes["name"]
	if ev.Action == events.ActionRename {
		if s, ok := m.byID[id]; ok && name != "" {
			m.srcs[s].c.Name = name
		}
		return true
	}
	if s, active := m.byID[id]; active {
		// A restart: the current stream ends with the old run (if it
		// has not yet), then the container is opened again.
		m.srcs[s].reopen = true
		return true
	}
	idx, err := strconv.Atoi(ev.Actor.Attributes[naming.LabelReplica])
	if err != nil || idx < 0 {
		return true
	}
	since, known := m.resume[id]
	if !known {
		since = m.opts.Since
	}
	c := replicaContainer{ID: id, Name: name, Replica: idx, Running: true}
	if !m.system(ctx, name, idx, "following container "+name) {
		return false
	}
	m.open(ctx, c, since, "all", false)
	return true
}

// system sends a StreamSystem line at once (outside the ordering).
func (m *logMerger) system(ctx context.Context, name string, replica int, text string) bool {
	select {
	case m.out <- LogLine{Replica: replica, Container: name, Stream: StreamSystem, Time: time.Now(), Text: text}:
		return true
	case <-ctx.Done():
		return false
	}
}

// emitReady sends every head the ordering allows; false if ctx ended.
func (m *logMerger) emitReady(ctx context.Context) bool {
	for {
		id, src := m.minHead()
		if src == nil || !m.releasable(src, time.Now()) {
			return true
		}
		select {
		case m.out <- *src.head:
		case <-ctx.Done():
			return false
		}
		src.head = nil
		if src.ended {
			m.drop(id)
			continue
		}
		src.waiting = true
		src.token <- struct{}{}
	}
}

// minHead is the source whose pending line is the oldest (ties: the
// source opened first, so one container's lines keep their order).
func (m *logMerger) minHead() (int, *logSource) {
	best, bestID := (*logSource)(nil), -1
	for id, s := range m.srcs {
		if s.head == nil {
			continue
		}
		if best == nil || s.head.Time.Before(best.head.Time) || (s.head.Time.Equal(best.head.Time) && id < bestID) {
			best, bestID = s, id
		}
	}
	return bestID, best
}

// releasable: with every source's next line known, the oldest goes. While
// following, sources wait on Docker indefinitely, so a line goes once it
// is followDelay old (or held followMaxHold), after the start-up wait.
func (m *logMerger) releasable(head *logSource, now time.Time) bool {
	if !m.anyWaiting() {
		return true
	}
	if !m.opts.Follow {
		return false
	}
	if m.inStartup(now) {
		return false
	}
	return !head.head.Time.After(now.Add(-followDelay)) || now.Sub(head.arrived) >= followMaxHold
}

func (m *logMerger) anyWaiting() bool {
	for _, s := range m.srcs {
		if s.waiting {
			return true
		}
	}
	return false
}

// inStartup: some source listed at the start has not delivered anything
// yet, and the start-up wait is not over.
func (m *logMerger) inStartup(now time.Time) bool {
	if now.Sub(m.start) >= followStartWait {
		return false
	}
	for _, s := range m.srcs {
		if s.initial && !s.seen {
			return true
		}
	}
	return false
}

// nextDeadline is when the oldest held line becomes releasable by time.
func (m *logMerger) nextDeadline() (time.Time, bool) {
	if !m.opts.Follow {
		return time.Time{}, false
	}
	_, src := m.minHead()
	if src == nil {
		return time.Time{}, false
	}
	d := src.head.Time.Add(followDelay)
	if hold := src.arrived.Add(followMaxHold); hold.Before(d) {
		d = hold
	}
	if end := m.start.Add(followStartWait); d.Before(end) && m.inStartup(time.Now()) {
		d = end
	}
	return d, true
}
