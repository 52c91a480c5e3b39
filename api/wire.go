package api

import (
	"encoding/json"
	"fmt"
	"time"
)

// The wire types of the REST API besides the manifests: problem
// documents, events, the watch stream, logs, the terminal, volume files
// and apply results. They are defined once, here, and used by the server
// (apiserver), the Go client (client) and the stores alike.

// Problem is an RFC 9457 problem document, with PanelX's field errors.
type Problem struct {
	Type      string        `json:"type"`
	Title     string        `json:"title"`
	Status    int           `json:"status"`
	Detail    string        `json:"detail,omitempty"`
	Instance  string        `json:"instance,omitempty"`
	RequestID string        `json:"requestId,omitempty"`
	Errors    []*FieldError `json:"errors,omitempty"`
}

// Problem types a client may want to tell apart; the others are
// about:blank.
const (
	ProblemDatabaseUnavailable = "https://panelx.dev/problems/database-unavailable"
	ProblemNoSpace             = "https://panelx.dev/problems/no-space"
)

// EventType is Normal or Warning, as in Kubernetes.
type EventType string

const (
	EventNormal  EventType = "Normal"
	EventWarning EventType = "Warning"
)

// Event is a notable step in a resource's life. Repeats of the same event
// (same object, type, reason and message) raise Count instead of adding rows.
type Event struct {
	ID             int64     `json:"id"`
	Project        string    `json:"project"`
	Kind           Kind      `json:"kind"`
	Name           string    `json:"name"`
	Type           EventType `json:"type"`
	Reason         string    `json:"reason"`
	Message        string    `json:"message"`
	Count          int32     `json:"count"`
	FirstTimestamp time.Time `json:"firstTimestamp"`
	LastTimestamp  time.Time `json:"lastTimestamp"`
}

// WatchEvent is one event of the watch stream. Type is ADDED, MODIFIED or
// DELETED for objects, SYNCED once the current state has been sent (and
// after every resync), and ERROR just before the server ends the stream.
type WatchEvent struct {
	Type    string `json:"type"`
	Kind    Kind   `json:"kind,omitempty"`
	Object  Object `json:"object,omitempty"`
	Message string `json:"message,omitempty"`
}

// UnmarshalJSON decodes the object as its kind says.
func (e *WatchEvent) UnmarshalJSON(data []byte) error {
	var raw struct {
		Type    string          `json:"type"`
		Kind    Kind            `json:"kind"`
		Object  json.RawMessage `json:"object"`
		Message string          `json:"message"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*e = WatchEvent{Type: raw.Type, Kind: raw.Kind, Message: raw.Message}
	if len(raw.Object) == 0 || string(raw.Object) == "null" {
		return nil
	}
	obj, err := New(raw.Kind)
	if err != nil {
		return fmt.Errorf("watch event: %w", err)
	}
	if err := json.Unmarshal(raw.Object, obj); err != nil {
		return fmt.Errorf("watch event: decode %s: %w", raw.Kind, err)
	}
	e.Object = obj
	return nil
}

// LogLine is one line of one replica's logs.
type LogLine struct {
	// Replica is the replica index; -1 on a system line about no
	// container in particular.
	Replica   int    `json:"replica"`
	Container string `json:"container,omitempty"`
	// Stream is stdout, stderr, or system (a line from PanelX or Docker:
	// a container picked up while following, a stream that failed, the
	// reason a stream ends).
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
	Text   string    `json:"text"`
	// Partial marks a piece of a longer line, continued in the next line
	// of the same container and stream.
	Partial bool `json:"partial,omitempty"`
}

// ExecClientMessage is a control message from a terminal's client (a text
// frame; terminal input travels in binary frames).
type ExecClientMessage struct {
	Type    string   `json:"type"`              // start | resize
	Cmd     []string `json:"cmd,omitempty"`     // start: the argument vector; empty: a shell of the image
	Replica int      `json:"replica,omitempty"` // start: the replica index (default 0)
	Rows    uint     `json:"rows,omitempty"`    // start (optional) and resize: 1–1000
	Cols    uint     `json:"cols,omitempty"`
}

// ExecServerMessage is a control message to the client (a text frame;
// terminal output travels in binary frames).
type ExecServerMessage struct {
	// Type is "started" (the process runs), "exit" (with Code, just
	// before a normal close) or "error" (with Status and Message, just
	// before a close with code 4000+Status or 1008).
	Type      string `json:"type"`
	Container string `json:"container,omitempty"`
	Code      *int   `json:"code,omitempty"`
	Status    int    `json:"status,omitempty"`
	Message   string `json:"message,omitempty"`
}

// FileList is a directory of a volume.
type FileList struct {
	// Path is the directory, relative to the volume root ("" is the root).
	Path  string     `json:"path"`
	Items []FileItem `json:"items"`
	// Truncated: the directory has more entries than were listed.
	Truncated bool `json:"truncated"`
}

// FileItem is one directory entry. Symbolic links are shown as links,
// with their target as stored, and never followed.
type FileItem struct {
	Name string `json:"name"`
	// Type is file, dir, symlink or other (device, FIFO, socket).
	Type string `json:"type"`
	Size int64  `json:"size"`
	// Mode is the octal Unix mode ("0644", "4755"); ModeBits the same
	// number.
	Mode       string    `json:"mode"`
	ModeBits   uint32    `json:"modeBits"`
	ModTime    time.Time `json:"mtime"`
	UID        int       `json:"uid"`
	GID        int       `json:"gid"`
	LinkTarget string    `json:"linkTarget,omitempty"`
}

// ApplyAction says what applying did (or, in a dry run, would do) to an
// object.
type ApplyAction string

const (
	ApplyCreated    ApplyAction = "created"
	ApplyConfigured ApplyAction = "configured"
	ApplyUnchanged  ApplyAction = "unchanged"
	ApplyPruned     ApplyAction = "pruned"
)

// ApplyResult is the outcome of applying one object.
type ApplyResult struct {
	Kind    Kind        `json:"kind"`
	Project string      `json:"project,omitempty"`
	Name    string      `json:"name"`
	Action  ApplyAction `json:"action"`
	// Diff lists the changed fields, one per line ("~ spec.image: a → b").
	Diff string `json:"diff,omitempty"`
	// Generation and ResourceVersion after the write (empty in a dry run
	// for created objects).
	Generation      int64  `json:"generation,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// ContainerStats is one container's live sample of a project's metrics
// stream (GET /api/v1/projects/{project}/metrics/stream).
type ContainerStats struct {
	Name                     string    `json:"name"`
	Service                  string    `json:"service"`
	Replica                  string    `json:"replica"`
	Time                     time.Time `json:"time"`
	CPUPercent               float64   `json:"cpuPercent"` // of one core, ×100, like docker stats
	MemoryUsedBytes          uint64    `json:"memoryUsedBytes"`
	MemoryLimitBytes         uint64    `json:"memoryLimitBytes"`
	MemoryPercent            float64   `json:"memoryPercent"`
	NetworkRxBytesPerSecond  float64   `json:"networkRxBytesPerSecond"`
	NetworkTxBytesPerSecond  float64   `json:"networkTxBytesPerSecond"`
	BlockReadBytesPerSecond  float64   `json:"blockReadBytesPerSecond"`
	BlockWriteBytesPerSecond float64   `json:"blockWriteBytesPerSecond"`
}
