package builder

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"google.golang.org/protobuf/encoding/protowire"
)

var (
	// instructionRe: an instruction and its flags (--name), as far as
	// the first argument.
	instructionRe = regexp.MustCompile(`(?i)^\s*(RUN|COPY|ADD)((?:\s+--[a-z-]+(?:=\S*)?)*)`)
	flagRe        = regexp.MustCompile(`--([a-z-]+)`)
	syntaxRe      = regexp.MustCompile(`(?i)^#\s*syntax\s*=`)
	heredocRe     = regexp.MustCompile(`<<-?["']?[A-Za-z_][A-Za-z0-9_]*`)
	// classicFlags are the flags Engine 20.10's classic builder knows.
	classicFlags = map[string]map[string]bool{
		"RUN":  {},
		"COPY": {"chown": true, "from": true},
		"ADD":  {"chown": true},
	}
)

// NeedsBuildKit says whether a Dockerfile uses what only BuildKit builds
// — a syntax directive, a flag the classic builder does not know (RUN
// --mount, COPY --chmod, --link …), a heredoc — and which line does.
func NeedsBuildKit(dockerfile []byte) (bool, string) {
	sc := bufio.NewScanner(bytes.NewReader(dockerfile))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	directives := true // parser directives come before anything else
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if directives {
			if syntaxRe.MatchString(line) {
				return true, line
			}
			if !strings.HasPrefix(line, "#") || line == "#" {
				directives = false
			}
		}
		m := instructionRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		known := classicFlags[strings.ToUpper(m[1])]
		for _, f := range flagRe.FindAllStringSubmatch(m[2], -1) {
			if !known[strings.ToLower(f[1])] {
				return true, line
			}
		}
		if heredocRe.MatchString(line[len(m[0]):]) {
			return true, line
		}
	}
	return false, ""
}

// bkStatus is what one "moby.buildkit.trace" message of a BuildKit build
// says (a controlapi.StatusResponse, read with protowire to keep
// BuildKit's module out of PanelX): the steps (vertexes) that started,
// finished or failed, and their output.
type bkStatus struct {
	vertexes []bkVertex
	logs     []bkLog
}

type bkVertex struct {
	digest, name, err  string
	started, completed bool
	cached             bool
}

type bkLog struct {
	vertex string
	msg    []byte
}

// Field numbers of BuildKit's control API (api/services/control).
const (
	statusVertexes = 1
	statusLogs     = 3
	vertexDigest   = 1
	vertexName     = 3
	vertexCached   = 4
	vertexStarted  = 5
	vertexDone     = 6
	vertexError    = 7
	logVertex      = 1
	logMsg         = 4
)

func decodeStatus(b []byte) (bkStatus, error) {
	var st bkStatus
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
		switch {
		case num == statusVertexes && typ == protowire.BytesType:
			var vx bkVertex
			err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
				switch num {
				case vertexDigest:
					vx.digest = string(v)
				case vertexName:
					vx.name = string(v)
				case vertexCached:
					vx.cached = n != 0
				case vertexStarted:
					vx.started = true
				case vertexDone:
					vx.completed = true
				case vertexError:
					vx.err = string(v)
				}
				return nil
			})
			if err != nil {
				return err
			}
			st.vertexes = append(st.vertexes, vx)
		case num == statusLogs && typ == protowire.BytesType:
			var l bkLog
			err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
				switch num {
				case logVertex:
					l.vertex = string(v)
				case logMsg:
					l.msg = v
				}
				return nil
			})
			if err != nil {
				return err
			}
			st.logs = append(st.logs, l)
		}
		return nil
	})
	return st, err
}

// eachField calls fn with each field of a protobuf message: the bytes of
// a length-delimited one, the number of a varint.
func eachField(b []byte, fn func(protowire.Number, protowire.Type, []byte, uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("buildkit status: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var (
			v   []byte
			val uint64
		)
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			val, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("buildkit status: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, val); err != nil {
			return err
		}
	}
	return nil
}

// bkProgress turns BuildKit's status messages into log lines and steps,
// each once, as `docker build --progress=plain` prints them.
type bkProgress struct {
	o       Options
	named   map[string]string // vertex digest → name
	started map[string]bool
	done    map[string]bool
	partial map[string]string // a vertex's output up to its last newline
}

func newBKProgress(o Options) *bkProgress {
	return &bkProgress{o: o, named: map[string]string{}, started: map[string]bool{}, done: map[string]bool{}, partial: map[string]string{}}
}

func (p *bkProgress) add(st bkStatus) {
	for _, v := range st.vertexes {
		p.named[v.digest] = v.name
		if v.started && !p.started[v.digest] {
			p.started[v.digest] = true
			p.o.log(redact(v.name, p.o.Redact))
			if strings.HasPrefix(v.name, "[") && p.o.Step != nil {
				p.o.Step(redact(v.name, p.o.Redact))
			}
		}
		if (v.completed || v.cached) && !p.done[v.digest] {
			p.done[v.digest] = true
			switch {
			case v.err != "":
				p.o.log(redact(v.name+": ERROR: "+v.err, p.o.Redact))
			case v.cached:
				p.o.log(redact(v.name+": CACHED", p.o.Redact))
			}
		}
	}
	for _, l := range st.logs {
		text := p.partial[l.vertex] + string(l.msg)
		lines := strings.Split(text, "\n")
		p.partial[l.vertex] = lines[len(lines)-1]
		for _, line := range lines[:len(lines)-1] {
			p.o.log(redact(strings.TrimRight(line, "\r"), p.o.Redact))
		}
	}
}

var fromRe = regexp.MustCompile(`(?i)^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?`)

// privateBases lists the FROM images of a Dockerfile that come from one of
// the registries in auth (not earlier stages, not scratch, not ones built
// from ARGs, which only the builder can expand).
func privateBases(dockerfile []byte, auth map[string]registry.AuthConfig) []string {
	stages := map[string]bool{}
	var out []string
	for _, line := range strings.Split(string(dockerfile), "\n") {
		m := fromRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ref := m[1]
		if m[2] != "" {
			stages[strings.ToLower(m[2])] = true
		}
		if stages[strings.ToLower(ref)] || ref == "scratch" || strings.Contains(ref, "$") {
			continue
		}
		host, _, ok := strings.Cut(ref, "/")
		if _, private := auth[host]; ok && private && !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	}
	return out
}

// PullBases pulls the FROM images of dockerfile that come from a registry
// with a login in auth. BuildKit on Engine 20.10 asks for credentials
// through a client session this client does not run, so it cannot pull
// them itself; it builds on an image the Engine already holds.
func PullBases(ctx context.Context, cli *client.Client, dockerfile []byte, auth map[string]registry.AuthConfig, log func(string)) error {
	for _, ref := range privateBases(dockerfile, auth) {
		host, _, _ := strings.Cut(ref, "/")
		encoded, err := registry.EncodeAuthConfig(auth[host])
		if err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		rc, err := cli.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: encoded})
		if err != nil {
			return fmt.Errorf("pull %s with the project's credential for %s: %w", ref, host, err)
		}
		err = jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil)
		rc.Close()
		if err != nil {
			return fmt.Errorf("pull %s with the project's credential for %s: %w", ref, host, err)
		}
		log(fmt.Sprintf("pulled %s with the project's credential for %s", ref, host))
	}
	return nil
}
