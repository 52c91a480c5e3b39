package operate

import (
	"context"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"

	"github.com/panelx/panelx/naming"
)

// fakeLogs is an engine with containers whose logs are given readers; the
// methods Logs does not call are left nil (and would panic).
type fakeLogs struct {
	Docker
	logs map[string]func() io.ReadCloser // container ID → its log stream
}

func (f *fakeLogs) ContainerList(context.Context, container.ListOptions) ([]container.Summary, error) {
	var out []container.Summary
	for i := range len(f.logs) {
		id := "c" + strconv.Itoa(i)
		out = append(out, container.Summary{ID: id, Names: []string{"/" + id}, State: "running",
			Labels: map[string]string{naming.LabelReplica: strconv.Itoa(i)}})
	}
	return out, nil
}

func (f *fakeLogs) ContainerInspect(context.Context, string) (container.InspectResponse, error) {
	return container.InspectResponse{Config: &container.Config{}}, nil
}

func (f *fakeLogs) ContainerLogs(_ context.Context, id string, _ container.LogsOptions) (io.ReadCloser, error) {
	return f.logs[id](), nil
}

func (f *fakeLogs) Events(ctx context.Context, _ events.ListOptions) (<-chan events.Message, <-chan error) {
	return make(chan events.Message), make(chan error)
}

func staticLog(frames ...string) func() io.ReadCloser {
	return func() io.ReadCloser { return io.NopCloser(strings.NewReader(strings.Join(frames, ""))) }
}

func at(sec int) string {
	return time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC).Format(time.RFC3339Nano)
}

var fakeTarget = LogTarget{Instance: "i", Project: "p", Service: "s"}

func TestMergeOrdersAndLosesNothing(t *testing.T) {
	f := &fakeLogs{logs: map[string]func() io.ReadCloser{
		// Each stream ends right after its last line, while that line is
		// still held for ordering: it must not be lost.
		"c0": staticLog(frame(1, at(1)+" a1\n"), frame(2, at(4)+" a4\n"), frame(1, at(9)+" a9\n")),
		"c1": staticLog(frame(1, at(2)+" b2\n"), frame(1, at(3)+" b3\n")),
		"c2": staticLog(frame(2, at(5)+" c5\n")),
	}}
	for range 20 { // scheduling varies; every run must be exact
		ch, err := Logs(t.Context(), f, fakeTarget, LogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(texts(readAll(t, ch)), ","); got != "a1,b2,b3,a4,c5,a9" {
			t.Fatalf("merged = %s", got)
		}
	}
}

// While following, a quiet replica must not hold back the others' lines.
func TestMergeFollowReleasesWithQuietReplicas(t *testing.T) {
	quietR, quietW := io.Pipe()
	defer quietW.Close()
	busyR, busyW := io.Pipe()
	defer busyW.Close()
	f := &fakeLogs{logs: map[string]func() io.ReadCloser{
		"c0": func() io.ReadCloser { return quietR },
		"c1": func() io.ReadCloser { return busyR },
	}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := Logs(ctx, f, fakeTarget, LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		line := "busy-" + strconv.Itoa(i)
		start := time.Now()
		go busyW.Write([]byte(frame(1, time.Now().UTC().Format(time.RFC3339Nano)+" "+line+"\n")))
		l := waitFor(t, ch, line, func(l LogLine) bool { return l.Text == line })
		if d := time.Since(start); d > followStartWait+followMaxHold {
			t.Errorf("%s released after %v", line, d)
		}
		if l.Replica != 1 {
			t.Errorf("%s from replica %d", line, l.Replica)
		}
	}
	cancel()
	for range ch {
	}
}

// A consumer that does not read stops the reading of Docker's stream: the
// producer blocks instead of buffering.
func TestMergeBackPressure(t *testing.T) {
	r, w := io.Pipe()
	var written atomic.Int64
	go func() {
		defer w.Close()
		for i := range 10000 {
			if _, err := w.Write([]byte(frame(1, at(1)+" line "+strconv.Itoa(i)+"\n"))); err != nil {
				return
			}
			written.Add(1)
		}
	}()
	f := &fakeLogs{logs: map[string]func() io.ReadCloser{"c0": func() io.ReadCloser { return r }}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := Logs(ctx, f, fakeTarget, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// The parser's buffer holds what one read got (64 KiB, under 1,500
	// frames); far fewer than all 10,000 went through.
	if n := written.Load(); n >= 2000 {
		t.Fatalf("%d lines written with nobody reading", n)
	}
	if l := <-ch; l.Text != "line 0" {
		t.Fatalf("first line = %q", l.Text)
	}
	cancel()
	r.CloseWithError(context.Canceled)
	for range ch {
	}
}
