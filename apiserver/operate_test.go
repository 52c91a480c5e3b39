package apiserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/apiserver/authz"
)

const (
	logsPath  = "/api/v1/projects/shop/services/web/logs"
	execPath  = "/api/v1/projects/shop/services/web/exec"
	filesPath = "/api/v1/projects/shop/volumes/data/files/"
)

// shopEnv is an env with alice owning shop (service web, volume data).
func shopEnv(t *testing.T, opts ...envOption) (*env, string) {
	t.Helper()
	e := newEnv(t, opts...)
	alice := e.jwtFor("alice")
	e.project(t, alice, "shop")
	e.service(t, alice, "shop", "web")
	e.volume(t, alice, "shop", "data")
	return e, alice
}

func wsURL(e *env, path string) string { return "ws" + strings.TrimPrefix(e.URL, "http") + path }

// dialWS dials with the token in the panelx.bearer subprotocol, as a
// browser would.
func dialWS(ctx context.Context, e *env, path, token string, header http.Header) (*websocket.Conn, *http.Response, error) {
	opts := &websocket.DialOptions{HTTPHeader: header}
	if token != "" {
		opts.Subprotocols = []string{"panelx.v1", authz.BearerProtocolPrefix + token}
	}
	return websocket.Dial(ctx, wsURL(e, path), opts)
}

// TestOperateWithoutDocker: a server without the Docker side says so
// (503) — after authentication and authorization, and after the 426 a
// plain request to the terminal gets.
func TestOperateWithoutDocker(t *testing.T) {
	e, alice := shopEnv(t)
	for _, rq := range []req{
		{method: "GET", path: logsPath},
		{method: "GET", path: filesPath},
		{method: "PUT", path: filesPath + "x", body: "x"},
		{method: "DELETE", path: filesPath + "x"},
	} {
		rq.token = alice
		e.must(t, http.StatusServiceUnavailable, rq).problem(t)
	}
	e.must(t, http.StatusUpgradeRequired, req{method: "GET", path: execPath, token: alice}).problem(t)
	_, resp, err := dialWS(t.Context(), e, execPath, alice, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("exec upgrade without Docker: %v %v", resp, err)
	}
}

// TestLogsFormats: NDJSON by default, text with ?format=text (time first
// with timestamps=true), Server-Sent Events with Accept:
// text/event-stream, and WebSocket messages; the parameters reach the
// Docker side parsed.
func TestLogsFormats(t *testing.T) {
	ops := newFakeOps()
	e, alice := shopEnv(t, withOps(ops))

	r := e.must(t, http.StatusOK, req{method: "GET", path: logsPath + "?tail=10&replica=1&since=10m", token: alice})
	if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	lines := strings.Split(strings.TrimSpace(string(r.Body)), "\n")
	if len(lines) != 2 {
		t.Fatalf("NDJSON: %q", r.Body)
	}
	var first apiserver.LogLine
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first != fakeLines[0] {
		t.Errorf("first line %+v (%v), want %+v", first, err, fakeLines[0])
	}
	got := ops.logsReq[len(ops.logsReq)-1]
	if got.Project != "shop" || got.Service != "web" || got.Tail == nil || *got.Tail != 10 || got.Replica == nil || *got.Replica != 1 ||
		got.Since != "10m" || got.Follow {
		t.Errorf("request reaching the Docker side: %+v", got)
	}

	r = e.must(t, http.StatusOK, req{method: "GET", path: logsPath + "?format=text", token: alice})
	if want := "[0 stdout] hello\n[1 stderr] oops\n"; string(r.Body) != want {
		t.Errorf("text:\n%s\nwant\n%s", r.Body, want)
	}
	r = e.must(t, http.StatusOK, req{method: "GET", path: logsPath + "?format=text&timestamps=true", token: alice})
	if want := "2025-01-02T03:04:05Z [0 stdout] hello\n"; !strings.HasPrefix(string(r.Body), want) {
		t.Errorf("text with timestamps:\n%s", r.Body)
	}
	r = e.must(t, http.StatusOK, req{method: "GET", path: logsPath, token: alice, header: map[string]string{"Accept": "text/event-stream"}})
	if body := string(r.Body); r.Header.Get("Content-Type") != "text/event-stream" ||
		!strings.HasPrefix(body, "event: line\ndata: {\"replica\":0,") || !strings.HasSuffix(body, "event: end\ndata: {}\n\n") {
		t.Errorf("SSE (%s):\n%s", r.Header.Get("Content-Type"), body)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, _, err := dialWS(ctx, e, logsPath, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	for i := range fakeLines {
		var l apiserver.LogLine
		_, data, err := conn.Read(ctx)
		if err != nil || json.Unmarshal(data, &l) != nil || l != fakeLines[i] {
			t.Fatalf("WebSocket message %d: %s (%v)", i, data, err)
		}
	}
	if _, _, err := conn.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after the last line: %v", err)
	}
}

// TestLogsParameters: bad parameters are 400 naming the parameter;
// strangers get 404 even with bad parameters.
func TestLogsParameters(t *testing.T) {
	e, alice := shopEnv(t, withFakeOps)
	for _, q := range []string{"tail=-1", "tail=x", "tail=100001", "replica=-1", "replica=a", "follow=maybe",
		"timestamps=2", "format=xml", "since=bogus", "since=" + strings.Repeat("1", 65)} {
		t.Run(q, func(t *testing.T) {
			r := e.must(t, http.StatusBadRequest, req{method: "GET", path: logsPath + "?" + q, token: alice})
			if p := r.problem(t); !strings.Contains(p.Detail, strings.Split(q, "=")[0]) {
				t.Errorf("detail %q does not name the parameter", p.Detail)
			}
			e.must(t, http.StatusNotFound, req{method: "GET", path: logsPath + "?" + q, token: e.jwtFor("mallory")})
		})
	}
	for _, q := range []string{"tail=all", "tail=0", "tail=100000", "replica=0", "follow=false", "timestamps=true", "format=json", "format=sse"} {
		e.must(t, http.StatusOK, req{method: "GET", path: logsPath + "?" + q, token: alice})
	}
	e.must(t, http.StatusNotFound, req{method: "GET", path: "/api/v1/projects/shop/services/nope/logs", token: alice})
	e.must(t, http.StatusNotFound, req{method: "GET", path: "/api/v1/projects/shop/services/Not_A_Name/logs", token: alice})
}

// TestFollowEndsWhenAccessEnds: a follow stream (SSE and NDJSON) ends,
// saying why, when the member is removed.
func TestFollowEndsWhenAccessEnds(t *testing.T) {
	e, alice := shopEnv(t, withFakeOps, func(o *apiserver.Options) { o.StreamRecheck = 200 * time.Millisecond })
	e.member(t, alice, "shop", "bob", "viewer")
	bob := e.jwtFor("bob")
	for _, accept := range []string{"text/event-stream", "application/x-ndjson"} {
		t.Run(accept, func(t *testing.T) {
			e.member(t, alice, "shop", "bob", "viewer")
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			hr, _ := http.NewRequestWithContext(ctx, "GET", e.URL+logsPath+"?follow=true", nil)
			hr.Header.Set("Authorization", "Bearer "+bob)
			hr.Header.Set("Accept", accept)
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for n := 0; n < 2 && sc.Scan(); {
				if strings.Contains(sc.Text(), `"text"`) {
					n++
				}
			}
			removed := time.Now()
			e.must(t, http.StatusNoContent, req{method: "DELETE", path: "/api/v1/projects/shop/members/bob", token: alice})
			var last string
			for sc.Scan() {
				if sc.Text() != "" {
					last = sc.Text()
				}
			}
			if took := time.Since(removed); took > 5*time.Second {
				t.Errorf("the stream ended %v after the removal", took)
			}
			if !strings.Contains(last, "access to the project ended") {
				t.Errorf("last line %q does not say why", last)
			}
		})
	}
}

// TestFilePathDecoding: the path after /files/ is decoded exactly once
// from the escaped URL, whatever chi did with it; what the path checker
// refuses is a 400 before any file operation.
func TestFilePathDecoding(t *testing.T) {
	ops := newFakeOps()
	e, alice := shopEnv(t, withOps(ops))
	for _, c := range []struct {
		raw, decoded string
		status       int
	}{
		{"", "", 200},
		{"a.txt", "a.txt", 200},
		{"dir/", "dir", 200},
		{"a%20b.txt", "a b.txt", 200},
		{"caf%C3%A9", "café", 200},
		{"100%25.txt", "100%.txt", 200}, // a lone % is a character
		{"..%2fetc%2fpasswd", "../etc/passwd", 400},
		{"..%2Fetc", "../etc", 400},
		{"%2e%2e/etc", "../etc", 400},
		{"%2E%2E%2Fetc", "../etc", 400},
		{"%252e%252e/etc", "%2e%2e/etc", 400},
		{"a/../../etc", "a/../../etc", 400},
		{"/etc/passwd", "/etc/passwd", 400},
		{"%2fetc", "/etc", 400},
	} {
		t.Run(c.raw, func(t *testing.T) {
			r := e.do(t, req{method: "GET", path: filesPath + c.raw, token: alice})
			if r.Status != c.status {
				t.Errorf("GET files/%s: %d, want %d\n%s", c.raw, r.Status, c.status, r.Body)
			}
			if got := ops.lastChecked(); got != c.decoded {
				t.Errorf("files/%s reached the path check as %q, want %q", c.raw, got, c.decoded)
			}
		})
	}
	// An escape that is no escape: net/http refuses the request line.
	hr, _ := http.NewRequest("GET", e.URL, nil)
	hr.URL.Opaque = filesPath + "bad%zz"
	hr.Header.Set("Authorization", "Bearer "+alice)
	if resp, err := http.DefaultClient.Do(hr); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("files/bad%%zz: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// rename targets are checked too (decoded once, by the query parser)
	e.must(t, http.StatusBadRequest, req{method: "POST", path: filesPath + "a.txt?op=rename&to=..%2fx", token: alice})
	if got := ops.lastChecked(); got != "../x" {
		t.Errorf("rename target reached the check as %q", got)
	}
}

// TestFileRequests: listing shape, download headers, the upload's size
// rules, and POST's operations.
func TestFileRequests(t *testing.T) {
	ops := newFakeOps()
	e, alice := shopEnv(t, withOps(ops), func(o *apiserver.Options) { o.MaxUploadBytes = 10 })
	e.member(t, alice, "shop", "vera", "viewer")
	vera := e.jwtFor("vera")

	l := e.must(t, http.StatusOK, req{method: "GET", path: filesPath + "dir", token: vera}).JSON(t)
	item := l["items"].([]any)[0].(map[string]any)
	if l["path"] != "dir" || item["name"] != "a.txt" || item["mode"] != "4755" || item["modeBits"] != float64(0o4755) || item["type"] != "file" {
		t.Errorf("listing %v", l)
	}
	r := e.must(t, http.StatusOK, req{method: "GET", path: filesPath + "notes/r%C3%A9sum%C3%A9.txt", token: vera})
	for k, want := range map[string]string{
		"Content-Type": "application/octet-stream", "X-Content-Type-Options": "nosniff", "Content-Length": "5",
		"Content-Disposition": "attachment; filename*=utf-8''r%C3%A9sum%C3%A9.txt", "Cache-Control": "no-store",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if string(r.Body) != "hello" {
		t.Errorf("body %q", r.Body)
	}

	e.must(t, http.StatusForbidden, req{method: "PUT", path: filesPath + "f", token: vera, body: "12"})
	e.must(t, http.StatusNoContent, req{method: "PUT", path: filesPath + "f", token: alice, body: "0123456789"})
	e.must(t, http.StatusRequestEntityTooLarge, req{method: "PUT", path: filesPath + "f", token: alice, body: "0123456789x"}).problem(t)
	e.must(t, http.StatusBadRequest, req{method: "PUT", path: filesPath, token: alice, body: "x"}).problem(t) // the root
	// A body without a Content-Length (chunked) cannot be uploaded.
	hr, _ := http.NewRequest("PUT", e.URL+filesPath+"f", strings.NewReader("abc"))
	hr.ContentLength = -1
	hr.Header.Set("Authorization", "Bearer "+alice)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusLengthRequired {
		t.Errorf("chunked upload: %d, want 411", resp.StatusCode)
	}

	for _, c := range []struct {
		path string
		body any
		want int
	}{
		{"d", nil, http.StatusCreated},
		{"d?op=mkdir", nil, http.StatusCreated},
		{"d", map[string]any{}, http.StatusCreated},
		{"d", map[string]any{"op": "mkdir"}, http.StatusCreated},
		{"d?to=e", nil, http.StatusNoContent},
		{"d?op=rename&to=e", nil, http.StatusNoContent},
		{"d", map[string]any{"op": "rename", "to": "e"}, http.StatusNoContent},
		{"d?op=rename", nil, http.StatusBadRequest},
		{"d?op=mkdir&to=e", nil, http.StatusBadRequest},
		{"d?op=chmod", nil, http.StatusBadRequest},
		{"d?op=rename&to=e", map[string]any{"to": "f"}, http.StatusBadRequest},
		{"d", map[string]any{"op": "rename", "to": "e", "mode": "0777"}, http.StatusBadRequest},
		{"d", "not json", http.StatusBadRequest},
	} {
		if r := e.do(t, req{method: "POST", path: filesPath + c.path, token: alice, body: c.body}); r.Status != c.want {
			t.Errorf("POST %s %v: %d, want %d\n%s", c.path, c.body, r.Status, c.want, r.Body)
		}
	}
	e.must(t, http.StatusUnsupportedMediaType, req{method: "POST", path: filesPath + "d", token: alice, body: "op=mkdir",
		header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
	e.must(t, http.StatusNoContent, req{method: "DELETE", path: filesPath + "d", token: alice})
	e.must(t, http.StatusBadRequest, req{method: "DELETE", path: filesPath, token: alice})
	e.must(t, http.StatusNotFound, req{method: "GET", path: "/api/v1/projects/shop/volumes/nope/files/", token: alice})
}

// TestOperateRefusalsBeforeUpgrade: every WebSocket rule answers in plain
// HTTP before anything is upgraded or started.
func TestOperateRefusalsBeforeUpgrade(t *testing.T) {
	e, alice := shopEnv(t, withFakeOps)
	e.member(t, alice, "shop", "vera", "viewer")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for _, path := range []string{logsPath, execPath} {
		for _, c := range []struct {
			name   string
			query  string
			token  string
			header http.Header
			want   int
		}{
			{"no token", "", "", nil, http.StatusUnauthorized},
			{"token in the query", "?access_token=" + alice, "", nil, http.StatusUnauthorized},
			{"token in the query besides one", "?token=" + alice, alice, nil, http.StatusUnauthorized},
			{"bad token", "", "not-a-token", nil, http.StatusUnauthorized},
			{"foreign origin", "", alice, http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
			{"another tenant", "", e.jwtFor("mallory"), nil, http.StatusNotFound},
			{"no such service", "", alice, nil, http.StatusNotFound},
			{"a viewer", "", e.jwtFor("vera"), nil, map[string]int{logsPath: 101, execPath: http.StatusForbidden}[path]},
		} {
			t.Run(path+" "+c.name, func(t *testing.T) {
				p := path
				if c.name == "no such service" {
					p = strings.Replace(p, "/web/", "/nope/", 1)
				}
				conn, resp, err := dialWS(ctx, e, p+c.query, c.token, c.header)
				if c.want == 101 {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					conn.CloseNow()
					return
				}
				if err == nil {
					conn.CloseNow()
					t.Fatal("upgraded")
				}
				if resp == nil || resp.StatusCode != c.want {
					t.Fatalf("status %v, want %d (%v)", resp, c.want, err)
				}
			})
		}
	}
	// The Authorization header works for non-browser clients; the token's
	// subprotocol is never echoed.
	conn, resp, err := websocket.Dial(ctx, wsURL(e, execPath), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + alice}}, Subprotocols: []string{"panelx.v1"}})
	if err != nil {
		t.Fatal(err)
	}
	conn.CloseNow()
	if resp.Header.Get("Sec-WebSocket-Protocol") != "panelx.v1" {
		t.Errorf("subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	_, resp, _ = dialWS(ctx, e, execPath, alice, nil)
	if strings.Contains(resp.Header.Get("Sec-WebSocket-Protocol"), "bearer") {
		t.Errorf("the token's subprotocol was echoed")
	}
}

// readExec reads one control message, skipping terminal output.
func readExec(t *testing.T, ctx context.Context, conn *websocket.Conn) (apiserver.ExecServerMessage, string) {
	t.Helper()
	var out strings.Builder
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v (output so far %q)", err, out.String())
		}
		if typ == websocket.MessageBinary {
			out.Write(data)
			continue
		}
		var m apiserver.ExecServerMessage
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("control message %s: %v", data, err)
		}
		return m, out.String()
	}
}

func sendJSON(t *testing.T, ctx context.Context, conn *websocket.Conn, v any) {
	t.Helper()
	data, _ := json.Marshal(v)
	if err := conn.Write(ctx, websocket.MessageText, data); err != nil {
		t.Fatal(err)
	}
}

// TestTerminalProtocol: start → started, output, exit → a normal close;
// a bad first message or a failed start → an error message and the close
// code 4000+status.
func TestTerminalProtocol(t *testing.T) {
	e, alice := shopEnv(t, withFakeOps)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, _, err := dialWS(ctx, e, execPath, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	sendJSON(t, ctx, conn, map[string]any{"type": "start", "cmd": []string{"echo", "hi"}})
	if m, _ := readExec(t, ctx, conn); m.Type != "started" || m.Container != "panelx-shop-web-0" {
		t.Fatalf("first message %+v", m)
	}
	m, out := readExec(t, ctx, conn)
	if m.Type != "exit" || m.Code == nil || *m.Code != 0 || out != "echo hi\r\n" {
		t.Fatalf("%+v after output %q", m, out)
	}
	if _, _, err := conn.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("close: %v", err)
	}

	for _, c := range []struct {
		name  string
		first any
		code  websocket.StatusCode
	}{
		{"not a start", map[string]any{"type": "resize", "rows": 10, "cols": 10}, 4400},
		{"unknown field", map[string]any{"type": "start", "user": "root"}, 4400},
		{"negative replica", map[string]any{"type": "start", "replica": -1}, 4400},
		{"not JSON", "hello", 4400},
		{"a binary frame", []byte("ls\n"), 4400},
		{"no container", map[string]any{"type": "start", "replica": 3}, 4404},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, _, err := dialWS(ctx, e, execPath, alice, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			switch v := c.first.(type) {
			case string:
				conn.Write(ctx, websocket.MessageText, []byte(v))
			case []byte:
				conn.Write(ctx, websocket.MessageBinary, v)
			default:
				sendJSON(t, ctx, conn, v)
			}
			m, _ := readExec(t, ctx, conn)
			if m.Type != "error" || int(c.code)-4000 != m.Status || m.Message == "" {
				t.Errorf("message %+v", m)
			}
			if _, _, err := conn.Read(ctx); websocket.CloseStatus(err) != c.code {
				t.Errorf("close %v, want %d", err, c.code)
			}
		})
	}

	// A message over the limit ends the session.
	conn, _, err = dialWS(ctx, e, execPath, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	conn.Write(ctx, websocket.MessageBinary, make([]byte, 65<<10))
	for {
		if _, _, err := conn.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
				t.Errorf("oversized message: %v", err)
			}
			break
		}
	}
}

// nodeOps is a swarm's Operations: they reach the volumes of one node.
type nodeOps struct {
	*fakeOps
	node string
}

func (o nodeOps) NodeName(context.Context) (string, error) { return o.node, nil }

// TestFilesOfAVolumeOnAnotherNode: the files of a volume whose data was
// moved to another node are refused (a stale copy on this node must never
// pass for it); on its own node they answer.
func TestFilesOfAVolumeOnAnotherNode(t *testing.T) {
	e, alice := shopEnv(t, withOps(nodeOps{fakeOps: newFakeOps(), node: "px-node-1"}))
	for _, c := range []struct {
		node        string
		read, write int
	}{
		{"", http.StatusOK, http.StatusNoContent},
		{"px-node-1", http.StatusOK, http.StatusNoContent},
		{"px-node-2", http.StatusConflict, http.StatusConflict},
	} {
		setVolumeNode(t, e, "shop", "data", c.node)
		r := e.must(t, c.read, req{method: "GET", path: filesPath + "dir", token: alice})
		if c.read == http.StatusConflict {
			if p := r.problem(t); !strings.Contains(p.Detail, "holds its data on node px-node-2") || !strings.Contains(p.Detail, "on node px-node-1 only") {
				t.Errorf("node %s: %q", c.node, p.Detail)
			}
		}
		e.must(t, c.write, req{method: "PUT", path: filesPath + "f", token: alice, body: "x"})
	}
}
