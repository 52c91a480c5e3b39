package apiserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/builder/buildlog"
)

// fakeOps stands in for the Docker side where the HTTP layer alone is
// under test (routing, authorization, parameters, path decoding); the
// real one is tested against Docker in internal/operations.
type fakeOps struct {
	mu      sync.Mutex
	checked []string // paths CheckPath was asked about
	logsReq []apiserver.LogsRequest
	files   map[string][]byte
	volumes []apiserver.DockerVolume
	removed []string // Docker volumes removed
}

func newFakeOps() *fakeOps { return &fakeOps{files: map[string][]byte{}} }

func withOps(ops apiserver.Operations) envOption {
	return func(o *apiserver.Options) { o.Operations = ops }
}

// withFakeOps gives an env a fakeOps (routes past authorization succeed).
func withFakeOps(o *apiserver.Options) {
	o.Operations, o.BuildLogs, o.BuildContexts = newFakeOps(), fakeBuildLogs, fakeContexts
}

// fakeBuildLogs holds the build logs tests write (buildlog.Logs.Start).
var fakeBuildLogs = buildlog.New()

var fakeLines = []apiserver.LogLine{
	{Replica: 0, Container: "panelx-shop-web-0", Stream: "stdout", Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Text: "hello"},
	{Replica: 1, Container: "panelx-shop-web-1", Stream: "stderr", Time: time.Date(2025, 1, 2, 3, 4, 6, 0, time.UTC), Text: "oops"},
}

func (f *fakeOps) Logs(ctx context.Context, req apiserver.LogsRequest) (<-chan apiserver.LogLine, error) {
	if req.Since == "bogus" {
		return nil, apiserver.OpError(apiserver.ErrInvalidArgument, errors.New(`since "bogus": want a duration`))
	}
	f.mu.Lock()
	f.logsReq = append(f.logsReq, req)
	f.mu.Unlock()
	ch := make(chan apiserver.LogLine)
	go func() {
		defer close(ch)
		for _, l := range fakeLines {
			select {
			case ch <- l:
			case <-ctx.Done():
				return
			}
		}
		if req.Follow {
			<-ctx.Done()
		}
	}()
	return ch, nil
}

func (f *fakeOps) Exec(ctx context.Context, req apiserver.ExecRequest) (apiserver.ExecSession, error) {
	if req.Replica > 0 {
		return nil, apiserver.OpError(apiserver.ErrOpNotFound, fmt.Errorf("replica %d: no container", req.Replica))
	}
	return newFakeSession(req.Cmd), nil
}

func (f *fakeOps) Files(ctx context.Context, project, volume string) (apiserver.VolumeFiles, error) {
	return fakeFiles{f}, nil
}

var percentEscape = regexp.MustCompile(`%[0-9A-Fa-f]{2}`)

// CheckPath records what the HTTP layer decoded, and refuses roughly what
// operate.CleanPath refuses.
func (f *fakeOps) CheckPath(p string) error {
	f.mu.Lock()
	f.checked = append(f.checked, p)
	f.mu.Unlock()
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || percentEscape.MatchString(seg) || (seg == "" && p != "") {
			return apiserver.OpError(apiserver.ErrInvalidArgument, fmt.Errorf("invalid path %q", p))
		}
	}
	return nil
}

func (f *fakeOps) lastChecked() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.checked) == 0 {
		return "<none>"
	}
	return f.checked[len(f.checked)-1]
}

type fakeFiles struct{ f *fakeOps }

func (v fakeFiles) List(ctx context.Context, dir string) (apiserver.FileListing, error) {
	return apiserver.FileListing{Entries: []apiserver.FileEntry{{Name: "a.txt", Type: "file", Size: 5, Mode: 0o4755}}}, nil
}

func (v fakeFiles) Read(ctx context.Context, p string) (io.ReadCloser, apiserver.FileEntry, error) {
	if p == "dir" {
		return nil, apiserver.FileEntry{}, apiserver.OpError(apiserver.ErrIsDirectory, errors.New("dir: is a directory"))
	}
	v.f.mu.Lock()
	data, ok := v.f.files[p]
	v.f.mu.Unlock()
	if !ok {
		data = []byte("hello")
	}
	return io.NopCloser(bytes.NewReader(data)), apiserver.FileEntry{Name: p[strings.LastIndex(p, "/")+1:], Type: "file", Size: int64(len(data))}, nil
}

func (v fakeFiles) Write(ctx context.Context, p string, r io.Reader, size, limit int64) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(data)) != size {
		return apiserver.OpError(apiserver.ErrInvalidArgument, errors.New("size mismatch"))
	}
	v.f.mu.Lock()
	v.f.files[p] = data
	v.f.mu.Unlock()
	return nil
}

func (v fakeFiles) Mkdir(ctx context.Context, p string) error         { return nil }
func (v fakeFiles) Rename(ctx context.Context, from, to string) error { return nil }
func (v fakeFiles) Delete(ctx context.Context, p string) error        { return nil }

// fakeSession prints its command and exits 0.
type fakeSession struct {
	cmd []string
	out io.Reader
}

func newFakeSession(cmd []string) *fakeSession {
	return &fakeSession{cmd: cmd, out: strings.NewReader(strings.Join(cmd, " ") + "\r\n")}
}

func (s *fakeSession) Output() io.Reader                                 { return s.out }
func (s *fakeSession) Stdin() io.Writer                                  { return io.Discard }
func (s *fakeSession) Resize(ctx context.Context, rows, cols uint) error { return nil }
func (s *fakeSession) Wait(ctx context.Context) (int, error)             { return 0, nil }
func (s *fakeSession) Close() error                                      { return nil }
func (s *fakeSession) Record() apiserver.ExecRecord {
	return apiserver.ExecRecord{Container: "panelx-shop-web-0", Cmd: s.cmd, Started: time.Now(), ExitCode: 0}
}

// DockerVolumes and RemoveDockerVolume make fakeOps a VolumeOperations.
func (f *fakeOps) DockerVolumes(ctx context.Context) ([]apiserver.DockerVolume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiserver.DockerVolume(nil), f.volumes...), nil
}

func (f *fakeOps) RemoveDockerVolume(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, v := range f.volumes {
		if v.Name == name {
			f.volumes = append(f.volumes[:i], f.volumes[i+1:]...)
			f.removed = append(f.removed, name)
			return nil
		}
	}
	return apiserver.OpError(apiserver.ErrOpNotFound, fmt.Errorf("volume %s", name))
}
