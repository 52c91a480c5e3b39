package operate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

func intp(n int) *int { return &n }

// readAll drains a non-follow log stream.
func readAll(t *testing.T, ch <-chan LogLine) []LogLine {
	t.Helper()
	var out []LogLine
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, l)
		case <-timeout:
			t.Fatalf("log stream did not end; got %d lines", len(out))
		}
	}
}

// waitFor reads a follow stream until a line matches.
func waitFor(t *testing.T, ch <-chan LogLine, what string, match func(LogLine) bool) LogLine {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("stream closed while waiting for %s", what)
			}
			if match(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %s within 20s", what)
		}
	}
}

func texts(lines []LogLine) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Text)
	}
	return out
}

// only keeps the lines whose text is among want.
func only(lines []LogLine, want ...string) []LogLine {
	var out []LogLine
	for _, l := range lines {
		for _, w := range want {
			if l.Text == w {
				out = append(out, l)
			}
		}
	}
	return out
}

func TestLogs(t *testing.T) {
	e := newDockerEnv(t)
	img := e.image(nil)
	id0, name0 := e.replica("web", 0, img, replicaOpts{env: []string{"APP_VERSION=r0"}, publish: true})
	id1, name1 := e.replica("web", 1, img, replicaOpts{env: []string{"APP_VERSION=r1"}, publish: true})
	url0, url1 := e.appURL(id0), e.appURL(id1)
	target := LogTarget{Instance: e.instance, Project: e.project, Service: "web"}
	ctx := t.Context()

	// Known lines, alternating replicas and streams, with gaps so that
	// their Docker timestamps are distinct.
	steps := []struct {
		url, stream, line string
		replica           int
	}{
		{url0, "stdout", "one", 0},
		{url1, "stderr", "two", 1},
		{url0, "stderr", "three", 0},
		{url1, "stdout", "four", 1},
	}
	var mid time.Time
	for i, s := range steps {
		if i == 2 {
			mid = time.Now()
			time.Sleep(50 * time.Millisecond)
		}
		logLine(t, s.url, s.stream, s.line)
		time.Sleep(50 * time.Millisecond)
	}
	// Docker's logger writes asynchronously: wait until all are logged.
	waitLogged(t, e, target, LogOptions{}, "one", "two", "three", "four")

	t.Run("tagged, demultiplexed and merged in time order", func(t *testing.T) {
		ch, err := Logs(ctx, e.cli, target, LogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		lines := readAll(t, ch)
		for i := 1; i < len(lines); i++ {
			if lines[i].Time.Before(lines[i-1].Time) {
				t.Errorf("line %d (%q) is older than line %d (%q)", i, lines[i].Text, i-1, lines[i-1].Text)
			}
		}
		for _, want := range []LogLine{
			{Replica: 0, Container: name0, Stream: "stdout", Text: "started version=r0"},
			{Replica: 0, Container: name0, Stream: "stderr", Text: "stderr-line"},
			{Replica: 1, Container: name1, Stream: "stdout", Text: "started version=r1"},
			{Replica: 1, Container: name1, Stream: "stderr", Text: "stderr-line"},
		} {
			if !containsLine(lines, want) {
				t.Errorf("missing %+v in %q", want, texts(lines))
			}
		}
		known := only(lines, "one", "two", "three", "four")
		if len(known) != len(steps) {
			t.Fatalf("known lines = %q", texts(known))
		}
		for i, s := range steps {
			l := known[i]
			if l.Text != s.line || l.Replica != s.replica || l.Stream != s.stream || l.Time.IsZero() {
				t.Errorf("line %d = %+v, want %q from replica %d on %s", i, l, s.line, s.replica, s.stream)
			}
		}
	})

	t.Run("one replica", func(t *testing.T) {
		ch, err := Logs(ctx, e.cli, LogTarget{Instance: e.instance, Project: e.project, Service: "web", Replica: intp(1)}, LogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		lines := readAll(t, ch)
		for _, l := range lines {
			if l.Replica != 1 || l.Container != name1 {
				t.Errorf("line of another replica: %+v", l)
			}
		}
		if got := texts(only(lines, "one", "two", "three", "four")); strings.Join(got, ",") != "two,four" {
			t.Errorf("replica 1 lines = %q", got)
		}
	})

	t.Run("tail is per replica", func(t *testing.T) {
		ch, err := Logs(ctx, e.cli, target, LogOptions{Tail: intp(1)})
		if err != nil {
			t.Fatal(err)
		}
		if got := texts(readAll(t, ch)); strings.Join(got, ",") != "three,four" {
			t.Errorf("tail 1 = %q, want the last line of each replica", got)
		}
		ch, err = Logs(ctx, e.cli, target, LogOptions{Tail: intp(0)})
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, ch); len(got) != 0 {
			t.Errorf("tail 0 = %q", texts(got))
		}
	})

	t.Run("since", func(t *testing.T) {
		ch, err := Logs(ctx, e.cli, target, LogOptions{Since: mid})
		if err != nil {
			t.Fatal(err)
		}
		if got := texts(readAll(t, ch)); strings.Join(got, ",") != "three,four" {
			t.Errorf("since the middle = %q", got)
		}
	})

	t.Run("long lines", func(t *testing.T) {
		since := time.Now()
		long := strings.Repeat("L", 40000) // Docker cuts it into 16 KiB messages
		logLine(t, url0, "stdout", long)
		if got := waitLogged(t, e, target, LogOptions{Since: since}, long); len(got) != 1 || got[0].Partial {
			t.Fatalf("default limit: %d lines", len(got))
		}
		ch, err := Logs(ctx, e.cli, target, LogOptions{Since: since, MaxLineBytes: 16000})
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, ch)
		var joined strings.Builder
		for i, l := range got {
			joined.WriteString(l.Text)
			if len(l.Text) > 16000 || l.Partial != (i < len(got)-1) {
				t.Errorf("piece %d: %d bytes, partial %v", i, len(l.Text), l.Partial)
			}
		}
		if len(got) != 3 || joined.String() != long {
			t.Errorf("16000-byte limit: %d pieces, %d bytes", len(got), joined.Len())
		}
	})

	t.Run("follow picks up new lines and replacement containers", func(t *testing.T) {
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := Logs(fctx, e.cli, target, LogOptions{Follow: true, Tail: intp(0)})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // the streams are open
		logLine(t, url1, "stderr", "live-1")
		l := waitFor(t, ch, "live-1", func(l LogLine) bool { return l.Text == "live-1" })
		if l.Replica != 1 || l.Stream != "stderr" || l.Container != name1 {
			t.Errorf("live line = %+v", l)
		}

		// A replacement for replica 0 starts beside the old one, as the
		// reconciler does, then the old one goes.
		newID, newName := e.replica("web", 0, img, replicaOpts{name: name0 + "-0123abcd", env: []string{"APP_VERSION=r0b"}, publish: true})
		waitFor(t, ch, "the follow notice", func(l LogLine) bool {
			return l.Stream == StreamSystem && l.Container == newName && l.Replica == 0
		})
		l = waitFor(t, ch, "the new container's start line", func(l LogLine) bool { return l.Text == "started version=r0b" })
		if l.Container != newName || l.Replica != 0 {
			t.Errorf("start line of the replacement = %+v", l)
		}
		if err := e.cli.ContainerRemove(ctx, id0, container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		logLine(t, e.appURL(newID), "stdout", "after-replace")
		l = waitFor(t, ch, "after-replace", func(l LogLine) bool {
			if l.Stream == StreamSystem {
				t.Errorf("unexpected system line %+v", l)
			}
			return l.Text == "after-replace"
		})
		if l.Container != newName {
			t.Errorf("line of the replacement = %+v", l)
		}

		// A restarted container is followed again, after its last line.
		if err := e.cli.ContainerRestart(ctx, id1, container.StopOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ch, "replica 1's start line after the restart", func(l LogLine) bool {
			if l.Text == "live-1" {
				t.Error("a line from before the restart came again")
			}
			return l.Replica == 1 && l.Text == "started version=r1"
		})

		cancel()
		for deadline := time.After(10 * time.Second); ; {
			select {
			case _, ok := <-ch:
				if !ok {
					return
				}
			case <-deadline:
				t.Fatal("the stream did not close after the context ended")
			}
		}
	})

	t.Run("TTY containers", func(t *testing.T) {
		e.replica("console", 0, img, replicaOpts{env: []string{"APP_VERSION=tty"}, tty: true})
		want := []LogLine{
			{Replica: 0, Stream: "stdout", Text: "started version=tty"},
			{Replica: 0, Stream: "stdout", Text: "stderr-line"}, // a TTY has one stream
		}
		var lines []LogLine
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			ch, err := Logs(ctx, e.cli, LogTarget{Instance: e.instance, Project: e.project, Service: "console"}, LogOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if lines = readAll(t, ch); len(lines) >= 2 {
				break
			}
		}
		for _, w := range want {
			w.Container = lines[0].Container
			if !containsLine(lines, w) {
				t.Errorf("missing %+v in %q", w, texts(lines))
			}
		}
	})

	t.Run("bad options", func(t *testing.T) {
		if _, err := Logs(ctx, e.cli, target, LogOptions{Tail: intp(-1)}); err == nil {
			t.Error("negative tail accepted")
		}
		if _, err := Logs(ctx, e.cli, LogTarget{Instance: e.instance, Project: e.project}, LogOptions{}); err == nil {
			t.Error("missing service accepted")
		}
	})
}

// waitLogged reads the logs until every text is in them, and returns them.
func waitLogged(t *testing.T, e *dockerEnv, target LogTarget, opts LogOptions, want ...string) []LogLine {
	t.Helper()
	var lines []LogLine
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ch, err := Logs(t.Context(), e.cli, target, opts)
		if err != nil {
			t.Fatal(err)
		}
		lines = readAll(t, ch)
		if len(only(lines, want...)) == len(want) {
			return lines
		}
	}
	t.Fatalf("lines %q not logged within 20s; got %d lines", want, len(lines))
	return nil
}

func containsLine(lines []LogLine, want LogLine) bool {
	for _, l := range lines {
		if l.Replica == want.Replica && l.Container == want.Container && l.Stream == want.Stream && l.Text == want.Text {
			return true
		}
	}
	return false
}
