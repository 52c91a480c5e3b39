// Package volumemove is the in-container side of moving a Docker volume's
// data between two nodes of a Swarm: `panelx volume-move serve` runs in a
// one-shot task on the source node (the volume mounted read-only at
// MountPath) and streams the volume as a tar over TCP; `panelx volume-move
// fetch` runs on the target node (the new, empty volume mounted read-write)
// and extracts it. It runs in a FROM scratch container: standard library
// only, no Docker client.
//
// Protocol (one TCP connection per attempt, target → source on Port):
//
//	target: <token>\n
//	source: tar stream (PAX; entry "./" is the volume root, then a
//	        depth-first walk: a directory before its contents, names
//	        relative with no "./" prefix, directories ending in "/")
//	source: {"files":N,"bytes":B,"sha256":"…"}\n   (trailer: tar entries,
//	        tar stream length and SHA-256 of the stream)
//	target: ok\n            (or "error: <message>\n")
//
// A wrong token closes the connection. The source keeps serving until a
// target acknowledges with "ok"; then it prints its Result and exits 0.
// The target refuses a volume that holds data, extracts through os.Root
// into a staging directory of the volume (taking only the source's order:
// the root first, each entry right inside a directory of the stream still
// open in the walk, so never through a link), checks the trailer, moves
// the entries up, gives the root its owner, mode and time, syncs the
// filesystem (syncfs) and only then answers "ok"; on failure it removes
// the staging directory, so a restarted target starts again on an empty
// volume. Devices, sockets and FIFOs are not sent (the source warns on
// stderr with their count); extended attributes and the times of
// symbolic links are not kept.
package volumemove

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Command is the first argument that makes the panelx binary act as a
// volume mover: `panelx volume-move serve|fetch` must call Main.
const Command = "volume-move"

// MountPath is where both tasks mount the volume.
const MountPath = "/.panelx-volume"

// Port is the TCP port the source listens on.
const Port = 7070

// Environment of both tasks.
const (
	// EnvToken is the shared secret (at least 32 characters).
	EnvToken = "PANELX_MOVE_TOKEN"
	// EnvSource is host:port of the source, for fetch.
	EnvSource = "PANELX_MOVE_SOURCE"
)

// minTokenLen is the shortest token either side accepts.
const minTokenLen = 32

// Result is the one JSON line fetch prints on stdout as its last line (and
// serve prints on success).
type Result struct {
	// Files counts the tar entries: the root, directories, regular
	// files, symbolic and hard links.
	Files int64 `json:"files"`
	// Bytes is the length of the tar stream received or sent.
	Bytes int64 `json:"bytes"`
	// SHA256 is the hex digest of that stream.
	SHA256 string `json:"sha256"`
	Error  string `json:"error,omitempty"`
}

// config holds what Main takes from the environment and what tests set.
type config struct {
	addr  string // serve: listen address; fetch: address of the source
	root  string // the volume's mount
	token string
	// tokenTimeout bounds the read of a connection's token line.
	tokenTimeout time.Duration
	// idleTimeout bounds each read or write of the stream.
	idleTimeout time.Duration
	// ackTimeout bounds the source's wait for the target's answer after
	// the trailer (the target syncs and moves everything up meanwhile).
	ackTimeout time.Duration
	// dialTimeout is how long fetch retries to reach the source.
	dialTimeout time.Duration
	// maxConns bounds the connections the source serves at once.
	maxConns int
	stderr   io.Writer
}

func defaultConfig() config {
	return config{
		root:         MountPath,
		token:        os.Getenv(EnvToken),
		tokenTimeout: 10 * time.Second,
		idleTimeout:  2 * time.Minute,
		ackTimeout:   time.Hour,
		dialTimeout:  2 * time.Minute,
		maxConns:     4,
		stderr:       os.Stderr,
	}
}

// Main runs `panelx volume-move serve|fetch` (args are os.Args[2:]) and
// returns the exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := defaultConfig()
	if len(args) == 1 {
		switch args[0] {
		case "serve":
			cfg.addr = fmt.Sprintf(":%d", Port)
		case "fetch":
			cfg.addr = os.Getenv(EnvSource)
		}
	}
	return run(ctx, args, cfg, os.Stdout)
}

// run is Main with its configuration given.
func run(ctx context.Context, args []string, cfg config, stdout io.Writer) int {
	var (
		res Result
		err error
	)
	switch {
	case len(args) == 1 && args[0] == "serve":
		res, err = serve(ctx, cfg)
	case len(args) == 1 && args[0] == "fetch":
		res, err = fetch(ctx, cfg)
	default:
		fmt.Fprintf(cfg.stderr, "usage: panelx %s serve|fetch\n", Command)
		return 2
	}
	return printResult(stdout, res, err)
}

// printResult prints the Result line (with the error, if any) and returns
// the exit code.
func printResult(w io.Writer, res Result, err error) int {
	code := 0
	if err != nil {
		res = Result{Error: err.Error()}
		code = 1
	}
	line, merr := json.Marshal(res)
	if merr != nil {
		return 2
	}
	if _, werr := fmt.Fprintf(w, "%s\n", line); werr != nil {
		return 2
	}
	return code
}

// ParseResult finds the last line of output that is a Result (lines may
// carry a Docker log timestamp prefix like "2026-12-04T18:00:00.000000000Z "
// or none) and returns it; an error when there is none. A Result with
// Error set is returned as-is together with a non-nil error that carries
// the message.
func ParseResult(output []byte) (Result, error) {
	lines := bytes.Split(output, []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		r, ok := parseResultLine(string(lines[i]))
		if !ok {
			continue
		}
		if r.Error != "" {
			return r, fmt.Errorf("volume move: %s", r.Error)
		}
		return r, nil
	}
	return Result{}, errors.New("volume move: no result line in the output")
}

func parseResultLine(line string) (Result, bool) {
	line = strings.TrimSpace(line)
	if ts, rest, ok := strings.Cut(line, " "); ok {
		if _, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			line = strings.TrimSpace(rest)
		}
	}
	if !strings.HasPrefix(line, "{") {
		return Result{}, false
	}
	// Only an object with nothing but Result's fields, and a digest or
	// an error, is a Result: other JSON log lines are not.
	var r Result
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || dec.More() {
		return Result{}, false
	}
	if r.Error == "" && !isHexDigest(r.SHA256) {
		return Result{}, false
	}
	return r, true
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// readLine reads one line of at most max bytes (without the newline).
func readLine(r *bufio.Reader, max int) (string, error) {
	var b []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		if c == '\n' {
			return strings.TrimSuffix(string(b), "\r"), nil
		}
		if len(b) >= max {
			return "", fmt.Errorf("line longer than %d bytes", max)
		}
		b = append(b, c)
	}
}

// deadlineConn sets a fresh deadline before each read and write, so a
// stalled peer fails the transfer after idle instead of holding it forever.
type deadlineConn struct {
	c interface {
		io.ReadWriter
		SetReadDeadline(time.Time) error
		SetWriteDeadline(time.Time) error
	}
	idle time.Duration
}

func (d deadlineConn) Read(p []byte) (int, error) {
	if err := d.c.SetReadDeadline(time.Now().Add(d.idle)); err != nil {
		return 0, err
	}
	return d.c.Read(p)
}

func (d deadlineConn) Write(p []byte) (int, error) {
	if err := d.c.SetWriteDeadline(time.Now().Add(d.idle)); err != nil {
		return 0, err
	}
	return d.c.Write(p)
}

// trailer is what the source sends after the tar stream.
type trailer struct {
	Files  int64  `json:"files"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Line lengths of the protocol.
const (
	maxTokenLine   = 256
	maxTrailerLine = 4096
	maxAckLine     = 4096
)

// bufSize is the buffer between the tar stream and the connection.
const bufSize = 256 << 10

// digest counts and hashes the tar stream, as the trailer reports it.
type digest struct {
	h hash.Hash
	n int64
}

func newDigest() *digest { return &digest{h: sha256.New()} }

func (d *digest) Write(p []byte) (int, error) {
	d.h.Write(p)
	d.n += int64(len(p))
	return len(p), nil
}

func (d *digest) trailer(files int64) trailer {
	return trailer{Files: files, Bytes: d.n, SHA256: hex.EncodeToString(d.h.Sum(nil))}
}
