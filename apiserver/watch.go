package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

// Watch stream settings.
const (
	watchWriteTimeout = 10 * time.Second // a client that cannot take an event this fast is dropped
	watchPing         = 15 * time.Second
	watchAccessTTL    = 5 * time.Second // how long a membership lookup is trusted
	// watchUnavailableRetry: with the database away, how often the stream
	// tries to catch up.
	watchUnavailableRetry = time.Second
)

// WatchEvent is one event of the watch stream (api.WatchEvent).
type WatchEvent = api.WatchEvent

type watchFilter struct {
	project string
	kind    api.Kind
	name    string
}

func parseWatchFilter(r *http.Request) (watchFilter, error) {
	q := r.URL.Query()
	f := watchFilter{project: q.Get("project"), kind: api.Kind(q.Get("kind")), name: q.Get("name")}
	if f.project != "" && len(api.ValidateName("project", f.project)) > 0 {
		return f, badQuery("project", "not a project name")
	}
	if f.name != "" && len(api.ValidateName("name", f.name)) > 0 {
		return f, badQuery("name", "not an object name")
	}
	if f.kind != "" && !slices.Contains(api.Kinds, f.kind) {
		return f, badQuery("kind", "must be Project, Secret, Service or Volume")
	}
	return f, nil
}

// watchSink is where events go: Server-Sent Events or a WebSocket.
type watchSink interface {
	send(ctx context.Context, ev WatchEvent) error
	ping(ctx context.Context) error
}

// watch: GET /api/v1/watch — the current state of what the caller may see
// (filtered by project, kind and name), then every change, as Server-Sent
// Events, or as WebSocket text messages when the request is an upgrade.
// The credential is checked before anything is sent: from the
// Authorization header or, for WebSockets, a "panelx.bearer.<token>"
// subprotocol — never the query string — with the Origin checked.
func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	f, err := parseWatchFilter(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := s.openStream(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer st.close()
	ctx := st.ctx
	if f.project != "" {
		if _, err := s.authz.Authorize(ctx, st.p, f.project, authz.Read); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if isWebSocket(r) {
		conn, err := st.accept(w, r, 4<<10)
		if err != nil {
			logger(ctx).Debug("websocket accept", zap.Error(err))
			return
		}
		defer conn.CloseNow()
		// Nothing is read from the client; CloseRead notices when it leaves.
		s.runWatch(conn.CloseRead(ctx), st, f, &wsSink{conn: conn})
		conn.Close(websocket.StatusNormalClosure, "")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no") // nginx must not buffer the stream
	w.WriteHeader(http.StatusOK)
	s.runWatch(ctx, st, f, &sseSink{w: w, rc: http.NewResponseController(w)})
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

type sseSink struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (k *sseSink) send(ctx context.Context, ev WatchEvent) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_ = k.rc.SetWriteDeadline(time.Now().Add(watchWriteTimeout))
	if _, err := fmt.Fprintf(k.w, "event: %s\ndata: %s\n\n", strings.ToLower(ev.Type), data); err != nil {
		return err
	}
	return k.rc.Flush()
}

func (k *sseSink) ping(ctx context.Context) error {
	_ = k.rc.SetWriteDeadline(time.Now().Add(watchWriteTimeout))
	if _, err := fmt.Fprint(k.w, ": ping\n\n"); err != nil {
		return err
	}
	return k.rc.Flush()
}

type wsSink struct{ conn *websocket.Conn }

func (k *wsSink) send(ctx context.Context, ev WatchEvent) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, watchWriteTimeout)
	defer cancel()
	return k.conn.Write(ctx, websocket.MessageText, data)
}

func (k *wsSink) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, watchWriteTimeout)
	defer cancel()
	return k.conn.Ping(ctx)
}

// watchSession is one client's stream.
type watchSession struct {
	s      *Server
	st     *stream
	p      *authz.Principal
	filter watchFilter
	sink   watchSink
	// sent remembers what the client has, by "Kind project/name", so that
	// a resync can tell it what changed and what went.
	sent   map[string]sentObject
	access map[string]accessEntry
	synced bool
}

type sentObject struct {
	kind    api.Kind
	project string
	rv      string
	obj     api.Object
}

type accessEntry struct {
	ok bool
	at time.Time
}

func (s *Server) runWatch(ctx context.Context, st *stream, f watchFilter, sink watchSink) {
	ws := &watchSession{s: s, st: st, p: st.p, filter: f, sink: sink, sent: map[string]sentObject{}, access: map[string]accessEntry{}}
	log := logger(ctx)
	if err := ws.loop(ctx); err != nil && ctx.Err() == nil {
		log.Debug("watch ended", zap.Error(err))
		_ = sink.send(context.WithoutCancel(ctx), WatchEvent{Type: "ERROR", Message: err.Error()})
	}
}

func (ws *watchSession) loop(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes, err := ws.s.store.Watch(ctx)
	if err != nil {
		return err
	}
	// One guard for the credential; the projects sent are checked on its
	// rhythm too (recheckAccess), each through the Authorizer.
	guard := ws.st.guard("", authz.Read)
	defer guard.stop()
	ping := time.NewTicker(watchPing)
	defer ping.Stop()
	// While the database is away the stream stays open; once it answers
	// again the client gets what it missed, then SYNCED.
	var retry <-chan time.Time
	handle := func(err error) error {
		if errors.Is(err, store.ErrUnavailable) {
			retry = time.After(watchUnavailableRetry)
			return nil
		}
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-guard.expired:
			return errCredentialExpired
		case <-ping.C:
			if err := ws.sink.ping(ctx); err != nil {
				return err
			}
		case <-guard.recheck.C:
			if err := guard.check(ctx); err != nil {
				return err
			}
			if err := handle(ws.recheckAccess(ctx)); err != nil {
				return err
			}
		case <-retry:
			retry = nil
			if err := handle(ws.resync(ctx)); err != nil {
				return err
			}
		case c, ok := <-changes:
			if !ok {
				return nil
			}
			var err error
			if c.Type == store.ChangeResync || retry != nil {
				err = ws.resync(ctx)
			} else {
				err = ws.change(ctx, c)
			}
			if err := handle(err); err != nil {
				return err
			}
		}
	}
}

func sentKey(kind api.Kind, k api.Key) string { return string(kind) + " " + k.String() }

// projectOf names the project an object belongs to (a Project: itself).
func projectOf(kind api.Kind, k api.Key) string {
	if kind == api.KindProject {
		return k.Name
	}
	return k.Project
}

func (ws *watchSession) wants(kind api.Kind, k api.Key) bool {
	f := ws.filter
	return (f.kind == "" || f.kind == kind) &&
		(f.project == "" || f.project == projectOf(kind, k)) &&
		(f.name == "" || f.name == k.Name)
}

// canRead says whether the caller may read the project, trusting a lookup
// for a few seconds so a busy project does not cost a query per change.
func (ws *watchSession) canRead(ctx context.Context, project string) (bool, error) {
	if e, ok := ws.access[project]; ok && time.Since(e.at) < watchAccessTTL {
		return e.ok, nil
	}
	_, err := ws.s.authz.Authorize(ctx, ws.p, project, authz.Read)
	var nf *authz.ProjectNotFoundError
	switch {
	case err == nil:
		ws.access[project] = accessEntry{ok: true, at: time.Now()}
		return true, nil
	case errors.As(err, &nf), errors.Is(err, authz.ErrForbidden):
		ws.access[project] = accessEntry{ok: false, at: time.Now()}
		return false, nil
	}
	return false, err
}

// resync lists everything the caller may see and tells the client what it
// does not know yet: ADDED, MODIFIED, DELETED, then SYNCED.
func (ws *watchSession) resync(ctx context.Context) error {
	projects, err := ws.visibleProjects(ctx)
	if err != nil {
		return err
	}
	current := map[string]api.Object{}
	for _, kind := range api.Kinds {
		if ws.filter.kind != "" && ws.filter.kind != kind {
			continue
		}
		objs, err := ws.listKind(ctx, kind, projects)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if ws.wants(kind, api.KeyOf(o)) {
				current[sentKey(kind, api.KeyOf(o))] = o
			}
		}
	}
	for key, old := range ws.sent {
		if _, ok := current[key]; !ok {
			if err := ws.emit(ctx, "DELETED", old.obj); err != nil {
				return err
			}
		}
	}
	for _, kind := range api.Kinds { // projects first, as a client builds state
		for _, key := range sortedKeys(current) {
			if o := current[key]; o.GetKind() == kind {
				if err := ws.upsert(ctx, o); err != nil {
					return err
				}
			}
		}
	}
	ws.synced = true
	return ws.sink.send(ctx, WatchEvent{Type: "SYNCED"})
}

func sortedKeys(m map[string]api.Object) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (ws *watchSession) visibleProjects(ctx context.Context) ([]string, error) {
	if ws.filter.project != "" {
		ok, err := ws.canRead(ctx, ws.filter.project)
		if err != nil || !ok {
			return nil, err
		}
		return []string{ws.filter.project}, nil
	}
	projects, err := ws.s.authz.Projects(ctx, ws.p)
	if err != nil {
		return nil, err
	}
	for _, p := range projects {
		ws.access[p] = accessEntry{ok: true, at: time.Now()}
	}
	return projects, nil
}

func (ws *watchSession) listKind(ctx context.Context, kind api.Kind, projects []string) ([]api.Object, error) {
	if projects == nil {
		projects = []string{}
	}
	opts := store.ListOptions{Projects: projects, Limit: 500}
	var out []api.Object
	for {
		var (
			items []api.Object
			next  string
			err   error
		)
		switch kind {
		case api.KindProject:
			items, next, err = page(ws.s.store.Projects().List(ctx, opts))
		case api.KindService:
			items, next, err = page(ws.s.store.Services().List(ctx, opts))
		case api.KindVolume:
			items, next, err = page(ws.s.store.Volumes().List(ctx, opts))
		case api.KindSecret:
			items, next, err = page(ws.s.store.Secrets().List(ctx, opts))
		}
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" {
			return out, nil
		}
		opts.Continue = next
	}
}

func page[T api.Object](l store.List[T], err error) ([]api.Object, string, error) {
	if err != nil {
		return nil, "", err
	}
	out := make([]api.Object, len(l.Items))
	for i, o := range l.Items {
		out[i] = o
	}
	return out, l.Continue, nil
}

// change delivers one change from the store's feed, reading the object
// as it is now (the feed says only which object changed).
func (ws *watchSession) change(ctx context.Context, c store.Change) error {
	if !ws.synced || !slices.Contains(api.Kinds, c.Kind) || !ws.wants(c.Kind, c.Key) {
		return nil
	}
	key := sentKey(c.Kind, c.Key)
	ok, err := ws.canRead(ctx, projectOf(c.Kind, c.Key))
	if err != nil {
		return err
	}
	if !ok {
		return ws.forgetProject(ctx, projectOf(c.Kind, c.Key))
	}
	obj, err := ws.get(ctx, c.Kind, c.Key)
	if errors.Is(err, store.ErrNotFound) {
		if old, was := ws.sent[key]; was {
			return ws.emit(ctx, "DELETED", old.obj)
		}
		return nil
	}
	if err != nil {
		return err
	}
	return ws.upsert(ctx, obj)
}

func (ws *watchSession) get(ctx context.Context, kind api.Kind, k api.Key) (api.Object, error) {
	switch kind {
	case api.KindProject:
		return unwrapObj(ws.s.store.Projects().Get(ctx, k))
	case api.KindService:
		return unwrapObj(ws.s.store.Services().Get(ctx, k))
	case api.KindVolume:
		return unwrapObj(ws.s.store.Volumes().Get(ctx, k))
	case api.KindSecret:
		return unwrapObj(ws.s.store.Secrets().Get(ctx, k))
	}
	return nil, store.ErrNotFound
}

func unwrapObj[T api.Object](obj T, err error) (api.Object, error) {
	if err != nil {
		return nil, err
	}
	return obj, nil
}

// upsert sends ADDED or MODIFIED unless the client has this version.
func (ws *watchSession) upsert(ctx context.Context, obj api.Object) error {
	key := sentKey(obj.GetKind(), api.KeyOf(obj))
	old, known := ws.sent[key]
	switch {
	case !known:
		return ws.emit(ctx, "ADDED", obj)
	case old.rv != obj.GetMeta().ResourceVersion:
		return ws.emit(ctx, "MODIFIED", obj)
	}
	return nil
}

func (ws *watchSession) emit(ctx context.Context, typ string, obj api.Object) error {
	obj = presentObject(obj) // what any client may see: no secret data
	key := sentKey(obj.GetKind(), api.KeyOf(obj))
	if typ == "DELETED" {
		delete(ws.sent, key)
	} else {
		ws.sent[key] = sentObject{kind: obj.GetKind(), project: projectOf(obj.GetKind(), api.KeyOf(obj)), rv: obj.GetMeta().ResourceVersion, obj: obj}
	}
	return ws.sink.send(ctx, WatchEvent{Type: typ, Kind: obj.GetKind(), Object: obj})
}

// forgetProject: the caller lost access to a project (membership removed,
// project deleted): its objects leave the client's view.
func (ws *watchSession) forgetProject(ctx context.Context, project string) error {
	for _, key := range sortedSent(ws.sent) {
		if old := ws.sent[key]; old.project == project {
			if err := ws.emit(ctx, "DELETED", old.obj); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedSent(m map[string]sentObject) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// recheckAccess drops what the caller may no longer see, even when nothing
// in those projects changed.
func (ws *watchSession) recheckAccess(ctx context.Context) error {
	projects := map[string]bool{}
	for _, o := range ws.sent {
		projects[o.project] = true
	}
	for p := range projects {
		delete(ws.access, p) // a fresh lookup
		ok, err := ws.canRead(ctx, p)
		if err != nil {
			return err
		}
		if !ok {
			if err := ws.forgetProject(ctx, p); err != nil {
				return err
			}
		}
	}
	return nil
}
