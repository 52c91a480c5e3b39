package operations_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

const execPath = "/api/v1/projects/shop/services/web/exec"

// term is the client side of a terminal session under test.
type term struct {
	t    *testing.T
	ctx  context.Context
	conn *websocket.Conn
	out  strings.Builder
}

// openTerm dials the terminal of a service and sends the start message.
func (e *env) openTerm(t *testing.T, url, path, token string, start map[string]any) *term {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+path,
		&websocket.DialOptions{Subprotocols: []string{authz.BearerProtocolPrefix + token}})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { conn.CloseNow() })
	tm := &term{t: t, ctx: ctx, conn: conn}
	start["type"] = "start"
	tm.send(start)
	return tm
}

func (tm *term) send(m map[string]any) {
	tm.t.Helper()
	data, _ := json.Marshal(m)
	if err := tm.conn.Write(tm.ctx, websocket.MessageText, data); err != nil {
		tm.t.Fatal(err)
	}
}

func (tm *term) input(s string) {
	tm.t.Helper()
	if err := tm.conn.Write(tm.ctx, websocket.MessageBinary, []byte(s)); err != nil {
		tm.t.Fatal(err)
	}
}

// next returns the next control message, collecting output on the way;
// err is how the connection ended if it did.
func (tm *term) next() (apiserver.ExecServerMessage, error) {
	for {
		typ, data, err := tm.conn.Read(tm.ctx)
		if err != nil {
			return apiserver.ExecServerMessage{}, err
		}
		if typ == websocket.MessageBinary {
			tm.out.Write(data)
			continue
		}
		var m apiserver.ExecServerMessage
		if err := json.Unmarshal(data, &m); err != nil {
			tm.t.Fatalf("control message %s: %v", data, err)
		}
		return m, nil
	}
}

func (tm *term) expect(typ string) apiserver.ExecServerMessage {
	tm.t.Helper()
	m, err := tm.next()
	if err != nil || m.Type != typ {
		tm.t.Fatalf("want a %q message, got %+v, %v (output %q)", typ, m, err, tm.out.String())
	}
	return m
}

// waitOutput reads output until it contains want.
func (tm *term) waitOutput(want string) {
	tm.t.Helper()
	for !strings.Contains(tm.out.String(), want) {
		typ, data, err := tm.conn.Read(tm.ctx)
		if err != nil {
			tm.t.Fatalf("output %q lacks %q: %v", tm.out.String(), want, err)
		}
		if typ == websocket.MessageBinary {
			tm.out.Write(data)
		}
	}
}

// exit waits for the exit message and the normal close after it.
func (tm *term) exit() int {
	tm.t.Helper()
	m := tm.expect("exit")
	if m.Code == nil {
		tm.t.Fatalf("exit without a code: %+v", m)
	}
	if _, err := tm.next(); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		tm.t.Errorf("after the exit: %v", err)
	}
	return *m.Code
}

// closed expects an error message and then the close code.
func (tm *term) closed(status int, code websocket.StatusCode, within time.Duration) apiserver.ExecServerMessage {
	tm.t.Helper()
	start := time.Now()
	m := tm.expect("error")
	if m.Status != status {
		tm.t.Errorf("error %+v, want status %d", m, status)
	}
	for {
		if _, err := tm.next(); err != nil {
			if websocket.CloseStatus(err) != code {
				tm.t.Errorf("closed with %v, want %d", err, code)
			}
			break
		}
	}
	if took := time.Since(start); took > within {
		tm.t.Errorf("took %v, want at most %v", took, within)
	}
	return m
}

// execEvents returns the messages of the service's Exec events.
func (e *env) execEvents(t *testing.T, service string) []string {
	t.Helper()
	var list struct{ Items []store.Event }
	r := e.must(t, http.StatusOK, "GET", "/api/v1/projects/shop/events?kind=Service&name="+service, e.alice, nil)
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range list.Items {
		if ev.Reason == "Exec" && ev.Type == store.EventNormal {
			out = append(out, ev.Message)
		}
	}
	return out
}

// waitEvent waits until an Exec event contains every string of want.
func (e *env) waitEvent(t *testing.T, service string, want ...string) string {
	t.Helper()
	var msgs []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		msgs = e.execEvents(t, service)
		for _, m := range msgs {
			if containsEvery(m, want) {
				return m
			}
		}
	}
	t.Fatalf("no Exec event with %q among %q", want, msgs)
	return ""
}

func containsEvery(s string, want []string) bool {
	for _, w := range want {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// TestTerminal: a docker exec session with a TTY through the WebSocket:
// output, exit code, stdin, resize, the default shell, the audit event;
// who may not; and sessions ending when access ends or nothing happens.
func TestTerminal(t *testing.T) {
	e := newEnv(t, func(o *apiserver.Options) { o.StreamRecheck = 300 * time.Millisecond })
	e.service("web")
	e.service("stopped")
	e.replica("web", 0, replicaOpts{cmd: []string{"-sleep"}})
	e.replica("stopped", 0, replicaOpts{cmd: []string{"-sleep"}, noStart: true})
	e.member("bob", "editor")
	e.member("vera", "viewer")

	t.Run("echo: output and exit code, recorded without arguments", func(t *testing.T) {
		tm := e.openTerm(t, e.URL, execPath, e.alice, map[string]any{"cmd": []string{"/testapp", "-echo", "s3cr3t-arg"}})
		if m := tm.expect("started"); m.Container != "panelx-shop-web-0" {
			t.Errorf("started in %q", m.Container)
		}
		if code := tm.exit(); code != 0 || tm.out.String() != "s3cr3t-arg\r\n" {
			t.Errorf("exit %d, output %q", code, tm.out.String())
		}
		ev := e.waitEvent(t, "web", `"alice"`, "panelx-shop-web-0", `"/testapp"`, "exit code 0", "replica 0")
		if strings.Contains(ev, "s3cr3t") || strings.Contains(ev, "-echo") {
			t.Errorf("the event records arguments: %s", ev)
		}
	})

	t.Run("a failing command's exit code", func(t *testing.T) {
		tm := e.openTerm(t, e.URL, execPath, e.alice, map[string]any{"cmd": []string{"/tool", "exit", "3"}})
		tm.expect("started")
		if code := tm.exit(); code != 3 {
			t.Errorf("exit %d", code)
		}
		e.waitEvent(t, "web", `"/tool"`, "exit code 3")
	})

	t.Run("stdin, the initial size and resize", func(t *testing.T) {
		tm := e.openTerm(t, e.URL, execPath, e.alice, map[string]any{"cmd": []string{"/tool", "winsize"}, "rows": 24, "cols": 80})
		tm.expect("started")
		tm.input("\n")
		if code := tm.exit(); code != 0 || !strings.Contains(tm.out.String(), "size 24 80") {
			t.Errorf("exit %d, output %q", code, tm.out.String())
		}
		tm = e.openTerm(t, e.URL, execPath, e.alice, map[string]any{"cmd": []string{"/tool", "winsize"}, "rows": 24, "cols": 80})
		tm.expect("started")
		tm.send(map[string]any{"type": "resize", "rows": 40, "cols": 132})
		tm.input("\n")
		if code := tm.exit(); code != 0 || !strings.Contains(tm.out.String(), "size 40 132") {
			t.Errorf("after resize: exit %d, output %q", code, tm.out.String())
		}
		tm = e.openTerm(t, e.URL, execPath, e.alice, map[string]any{"cmd": []string{"/tool", "cat1"}})
		tm.expect("started")
		tm.input("ping\n")
		if code := tm.exit(); code != 0 || !strings.Contains(tm.out.String(), "got: ping") {
			t.Errorf("cat1: exit %d, output %q", code, tm.out.String())
		}
	})

	t.Run("the default shell", func(t *testing.T) {
		tm := e.openTerm(t, e.URL, execPath, e.alice, map[string]any{})
		tm.expect("started")
		tm.waitOutput("tool-sh ready")
		tm.input("hello\n")
		tm.waitOutput("sh: hello")
		tm.input("exit 5\n")
		if code := tm.exit(); code != 5 {
			t.Errorf("exit %d", code)
		}
		e.waitEvent(t, "web", `"/bin/sh"`, "exit code 5")
	})

	t.Run("refused before the upgrade", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		for _, c := range []struct {
			name, path, token string
			header            http.Header
			want              int
		}{
			{"a viewer", execPath, e.jwt("vera", time.Hour), nil, http.StatusForbidden},
			{"another tenant", execPath, e.jwt("mallory", time.Hour), nil, http.StatusNotFound},
			{"no token", execPath, "", nil, http.StatusUnauthorized},
			{"a token in the query", execPath + "?access_token=" + e.alice, "", nil, http.StatusUnauthorized},
			{"a foreign origin", execPath, e.alice, http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
			{"no such service", "/api/v1/projects/shop/services/nope/exec", e.alice, nil, http.StatusNotFound},
		} {
			opts := &websocket.DialOptions{HTTPHeader: c.header}
			if c.token != "" {
				opts.Subprotocols = []string{authz.BearerProtocolPrefix + c.token}
			}
			conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.URL, "http")+c.path, opts)
			if err == nil {
				conn.CloseNow()
				t.Errorf("%s: upgraded", c.name)
				continue
			}
			if resp == nil || resp.StatusCode != c.want {
				t.Errorf("%s: %v, want %d (%v)", c.name, resp, c.want, err)
			}
		}
		e.must(t, http.StatusUpgradeRequired, "GET", execPath, e.alice, nil)
	})

	t.Run("errors after the upgrade", func(t *testing.T) {
		tm := e.openTerm(t, e.URL, execPath, e.alice, map[string]any{"replica": 7})
		tm.closed(http.StatusNotFound, 4404, 10*time.Second)
		tm = e.openTerm(t, e.URL, "/api/v1/projects/shop/services/stopped/exec", e.alice, map[string]any{"cmd": []string{"/tool"}})
		tm.closed(http.StatusConflict, 4409, 10*time.Second)
		tm = e.openTerm(t, e.URL, execPath, e.alice, map[string]any{"cmd": []string{"/tool", ""}})
		tm.closed(http.StatusBadRequest, 4400, 10*time.Second)
		tm = e.openTerm(t, e.URL, execPath, e.alice, map[string]any{"cmd": []string{"/tool"}, "rows": 5000, "cols": 80})
		tm.closed(http.StatusBadRequest, 4400, 10*time.Second)
	})

	t.Run("a session ends when the membership is removed", func(t *testing.T) {
		tm := e.openTerm(t, e.URL, execPath, e.jwt("bob", time.Hour), map[string]any{})
		tm.expect("started")
		tm.waitOutput("tool-sh ready")
		removed := time.Now()
		e.must(t, http.StatusNoContent, "DELETE", "/api/v1/projects/shop/members/bob", e.alice, nil)
		tm.closed(http.StatusForbidden, websocket.StatusPolicyViolation, 5*time.Second)
		t.Logf("ended %v after the removal", time.Since(removed))
		// ctrl-D ends the tool's shell (it ignores ctrl-C): the event has
		// its exit code.
		e.waitEvent(t, "web", `"bob"`, "exit code 0")
	})

	t.Run("a session ends when the credential expires", func(t *testing.T) {
		tm := e.openTerm(t, e.URL, execPath, e.jwt("alice", 3*time.Second), map[string]any{})
		tm.expect("started")
		tm.waitOutput("tool-sh ready")
		m := tm.closed(http.StatusForbidden, websocket.StatusPolicyViolation, 8*time.Second)
		if !strings.Contains(m.Message, "expired") {
			t.Errorf("message %q", m.Message)
		}
	})

	t.Run("an idle session ends", func(t *testing.T) {
		idle := e.serve(func(o *apiserver.Options) { o.ExecIdleTimeout = time.Second })
		tm := e.openTerm(t, idle, execPath, e.alice, map[string]any{})
		tm.expect("started")
		tm.waitOutput("tool-sh ready")
		tm.closed(http.StatusRequestTimeout, 4408, 5*time.Second)
	})
}
