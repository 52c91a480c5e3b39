package operations_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/apiserver/authz"
)

const logsPath = "/api/v1/projects/shop/services/web/logs"

// logLines decodes an NDJSON answer.
func logLines(t *testing.T, body []byte) []apiserver.LogLine {
	t.Helper()
	var out []apiserver.LogLine
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		var l apiserver.LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// key renders a line for comparisons: "replica stream text".
func key(l apiserver.LogLine) string { return fmt.Sprintf("%d %s %s", l.Replica, l.Stream, l.Text) }

func keys(ls []apiserver.LogLine) []string {
	var out []string
	for _, l := range ls {
		out = append(out, key(l))
	}
	return out
}

// waitLogs polls until the logs hold every wanted line.
func (e *env) waitLogs(t *testing.T, query string, want ...string) []apiserver.LogLine {
	t.Helper()
	var got []apiserver.LogLine
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		got = logLines(t, e.must(t, http.StatusOK, "GET", logsPath+query, e.alice, nil).Body)
		if containsAll(keys(got), want) {
			return got
		}
	}
	t.Fatalf("logs%s: %q lacks some of %q", query, keys(got), want)
	return nil
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// followStream reads an NDJSON follow stream in the background.
func (e *env) followStream(t *testing.T, ctx context.Context, query, token string) <-chan apiserver.LogLine {
	t.Helper()
	hr, _ := http.NewRequestWithContext(ctx, "GET", e.URL+logsPath+query, nil)
	hr.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("follow: %s", resp.Status)
	}
	out := make(chan apiserver.LogLine, 100)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var l apiserver.LogLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				out <- l
			}
		}
	}()
	return out
}

// awaitLine waits for a line with this key on a stream.
func awaitLine(t *testing.T, lines <-chan apiserver.LogLine, want string, within time.Duration) apiserver.LogLine {
	t.Helper()
	timeout := time.After(within)
	var seen []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the stream ended without %q; saw %q", want, seen)
			}
			if key(l) == want {
				return l
			}
			seen = append(seen, key(l))
		case <-timeout:
			t.Fatalf("no %q within %v; saw %q", want, within, seen)
		}
	}
}

// TestLogs: two replicas of a test app print known lines on stdout and
// stderr; the API returns them merged and tagged, follows new ones as they
// are printed, and cuts with tail and since.
func TestLogs(t *testing.T) {
	e := newEnv(t, func(o *apiserver.Options) { o.StreamRecheck = 300 * time.Millisecond })
	e.service("web")
	app0 := e.appURL(e.replica("web", 0, replicaOpts{publish: true}))
	app1 := e.appURL(e.replica("web", 1, replicaOpts{publish: true}))

	t.Run("every replica, tagged with replica and stream", func(t *testing.T) {
		got := e.waitLogs(t, "", "0 stdout started version=1", "0 stderr stderr-line", "1 stdout started version=1", "1 stderr stderr-line")
		for i, l := range got {
			if want := fmt.Sprintf("panelx-shop-web-%d", l.Replica); l.Container != want {
				t.Errorf("line %q from container %q, want %q", l.Text, l.Container, want)
			}
			if i > 0 && l.Time.Before(got[i-1].Time) {
				t.Errorf("lines out of time order: %v before %v", got[i-1], l)
			}
		}
		text := string(e.must(t, http.StatusOK, "GET", logsPath+"?format=text&timestamps=true", e.alice, nil).Body)
		for _, want := range []string{" [0 stdout] started version=1\n", " [1 stderr] stderr-line\n"} {
			if !strings.Contains(text, want) {
				t.Errorf("text format lacks %q:\n%s", want, text)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, strings.Fields(text)[0]); err != nil {
			t.Errorf("text line does not start with its time: %q", text)
		}
	})

	t.Run("follow delivers new lines as they are printed", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		lines := e.followStream(t, ctx, "?follow=true&tail=0", e.alice)
		time.Sleep(700 * time.Millisecond) // the stream is attached (tail=0: nothing old comes)
		for i, app := range []string{app0, app1, app0} {
			stream := []string{"stdout", "stderr"}[i%2]
			text := fmt.Sprintf("followed-%d", i)
			start := time.Now()
			logLine(t, app, stream, text)
			l := awaitLine(t, lines, fmt.Sprintf("%d %s %s", i%2, stream, text), 10*time.Second)
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("%q took %v to arrive", l.Text, took)
			}
		}
	})

	t.Run("tail cuts each container's past", func(t *testing.T) {
		for i := 1; i <= 5; i++ {
			logLine(t, app0, "stdout", fmt.Sprintf("numbered-%d", i))
		}
		e.waitLogs(t, "?replica=0", "0 stdout numbered-5")
		got := keys(logLines(t, e.must(t, http.StatusOK, "GET", logsPath+"?replica=0&tail=2", e.alice, nil).Body))
		if want := []string{"0 stdout numbered-4", "0 stdout numbered-5"}; !slices.Equal(got, want) {
			t.Errorf("tail=2 of replica 0: %q, want %q", got, want)
		}
		if got := logLines(t, e.must(t, http.StatusOK, "GET", logsPath+"?tail=0", e.alice, nil).Body); len(got) != 0 {
			t.Errorf("tail=0: %q", keys(got))
		}
		both := keys(logLines(t, e.must(t, http.StatusOK, "GET", logsPath+"?tail=1", e.alice, nil).Body))
		if len(both) != 2 || !strings.HasPrefix(both[0], "0 ") && !strings.HasPrefix(both[1], "0 ") {
			t.Errorf("tail=1 of two replicas: %q", both)
		}
	})

	t.Run("since cuts by time", func(t *testing.T) {
		logLine(t, app1, "stdout", "before-since")
		e.waitLogs(t, "?replica=1", "1 stdout before-since")
		time.Sleep(1100 * time.Millisecond)
		since := time.Now().UTC()
		time.Sleep(100 * time.Millisecond)
		logLine(t, app1, "stderr", "after-since")
		e.waitLogs(t, "?replica=1", "1 stderr after-since")
		for _, q := range []string{since.Format(time.RFC3339Nano), fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())} {
			got := keys(logLines(t, e.must(t, http.StatusOK, "GET", logsPath+"?replica=1&since="+url.QueryEscape(q), e.alice, nil).Body))
			if !slices.Equal(got, []string{"1 stderr after-since"}) {
				t.Errorf("since=%s: %q", q, got)
			}
		}
		if got := keys(logLines(t, e.must(t, http.StatusOK, "GET", logsPath+"?replica=1&since=1h", e.alice, nil).Body)); !containsAll(got, []string{"1 stdout started version=1", "1 stdout before-since"}) {
			t.Errorf("since=1h: %q", got)
		}
		e.must(t, http.StatusBadRequest, "GET", logsPath+"?since=yesterday", e.alice, nil)
	})

	t.Run("WebSocket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		conn := e.dialWS(t, ctx, logsPath+"?replica=0&tail=1", e.alice)
		defer conn.CloseNow()
		_, data, err := conn.Read(ctx)
		var l apiserver.LogLine
		if err != nil || json.Unmarshal(data, &l) != nil || l.Replica != 0 || l.Text == "" {
			t.Fatalf("message %s: %v", data, err)
		}
		if _, _, err := conn.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			t.Errorf("end of the logs: %v", err)
		}
	})

	t.Run("a follow ends when the membership is removed", func(t *testing.T) {
		e.member("bob", "viewer")
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		conn := e.dialWS(t, ctx, logsPath+"?follow=true&tail=1", e.jwt("bob", time.Hour))
		defer conn.CloseNow()
		if _, _, err := conn.Read(ctx); err != nil {
			t.Fatal(err)
		}
		removed := time.Now()
		e.must(t, http.StatusNoContent, "DELETE", "/api/v1/projects/shop/members/bob", e.alice, nil)
		err := drain(ctx, conn)
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation || time.Since(removed) > 5*time.Second {
			t.Errorf("after the removal: %v after %v", err, time.Since(removed))
		}
	})

	t.Run("a follow ends when the credential expires", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		hr, _ := http.NewRequestWithContext(ctx, "GET", e.URL+logsPath+"?follow=true&tail=1", nil)
		hr.Header.Set("Authorization", "Bearer "+e.jwt("alice", 3*time.Second))
		hr.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var last string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event:") {
				last = sc.Text()
			}
			if strings.HasPrefix(sc.Text(), "data:") && last == "event: error" && !strings.Contains(sc.Text(), "expired") {
				t.Errorf("error event %q", sc.Text())
			}
		}
		if last != "event: error" || ctx.Err() != nil {
			t.Errorf("the stream ended with %q (%v)", last, ctx.Err())
		}
	})
}

func (e *env) dialWS(t *testing.T, ctx context.Context, path, token string) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.URL, "http")+path,
		&websocket.DialOptions{Subprotocols: []string{"panelx.v1", authz.BearerProtocolPrefix + token}})
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	conn.SetReadLimit(1 << 20)
	return conn
}

// drain reads until the connection ends and returns why.
func drain(ctx context.Context, conn *websocket.Conn) error {
	for {
		if _, _, err := conn.Read(ctx); err != nil {
			return err
		}
	}
}
