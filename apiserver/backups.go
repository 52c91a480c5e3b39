package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

// Backups, restores and moves are requests: the API records a Pending run
// and the leading controller carries it out (docs/architecture.md,
// "Backups"). The routes speak only to the store.

func (s *Server) backupRoutes() []route {
	return []route{
		{method: "GET", pattern: "/api/v1/projects/{project}/volumes/{volume}/backups", handler: s.listBackups,
			doc: opDoc{summary: "The volume's backup, restore and move runs, newest first: start, end, bytes, SHA-256, target and key, result and reason [viewer]", tag: "volumes",
				status: 200, resp: itemsRef[api.BackupRun]("BackupRunList"),
				query: []queryParam{{"op", "string", "backup, restore or move"}, {"phase", "string", "Pending, Running, Succeeded, Failed or Missed"}, {"limit", "integer", "1–1000 (default 100)"}}}},
		{method: "POST", pattern: "/api/v1/projects/{project}/volumes/{volume}/backups", handler: s.createBackup,
			doc: opDoc{summary: "Back the volume up now to its spec.backup target; the answer is the Pending run, which the controller runs (never beside another run of the volume) [editor]", tag: "volumes",
				status: 202, resp: ref[api.BackupRun]()}},
		{method: "GET", pattern: "/api/v1/projects/{project}/volumes/{volume}/backups/{run}", handler: s.getBackup,
			doc: opDoc{summary: "One run of the volume [viewer]", tag: "volumes", status: 200, resp: ref[api.BackupRun]()}},
		{method: "POST", pattern: "/api/v1/projects/{project}/volumes/{volume}/restore", handler: s.createRestore,
			doc: opDoc{summary: "Restore a successful backup of the volume into it (overwrite must be true; the services using it stop first and start after) or into a new volume; the archive is verified whole before anything is touched [editor]", tag: "volumes",
				body: ref[api.RestoreRequest](), status: 202, resp: ref[api.BackupRun]()}},
		{method: "POST", pattern: "/api/v1/projects/{project}/volumes/{volume}/move", handler: s.createMove,
			doc: opDoc{summary: "Move the volume's data to another node of the swarm: the services mounting it stop, the data is copied, and they start on the new node; the old copy stays on the old node. The answer is the Pending run (op move), never run beside another run of the volume [editor]", tag: "volumes",
				body: ref[api.MoveRequest](), status: 202, resp: ref[api.BackupRun]()}},
	}
}

// backupVolume authorizes a backups route and reads its volume.
func (s *Server) backupVolume(r *http.Request, action authz.Action) (api.Key, *api.Volume, error) {
	key := api.Key{Project: chi.URLParam(r, "project"), Name: chi.URLParam(r, "volume")}
	if _, err := s.authorize(r, key.Project, action); err != nil {
		return key, nil, err
	}
	notFound := httpErr(http.StatusNotFound, "volume %q not found in project %q", key.Name, key.Project)
	if len(api.ValidateName("", key.Name)) > 0 {
		return key, nil, notFound
	}
	v, err := s.store.Volumes().Get(r.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		return key, nil, notFound
	}
	return key, v, err
}

func (s *Server) backupRuns() (store.BackupRuns, error) {
	bs, ok := s.store.(store.BackupStore)
	if !ok {
		return nil, httpErr(http.StatusNotImplemented, "this store does not record backups")
	}
	return bs.BackupRuns(), nil
}

func (s *Server) listBackups(w http.ResponseWriter, r *http.Request) {
	key, _, err := s.backupVolume(r, authz.Read)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	f := store.BackupRunFilter{Volume: key.Name, Op: api.BackupOp(q.Get("op")), Phase: api.BackupPhase(q.Get("phase"))}
	switch f.Op {
	case "", api.BackupOpBackup, api.BackupOpRestore, api.BackupOpMove:
	default:
		s.fail(w, r, httpErr(http.StatusBadRequest, "op must be backup, restore or move"))
		return
	}
	switch f.Phase {
	case "", api.BackupPending, api.BackupRunning, api.BackupSucceeded, api.BackupFailed, api.BackupMissed:
	default:
		s.fail(w, r, httpErr(http.StatusBadRequest, "phase must be Pending, Running, Succeeded, Failed or Missed"))
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			s.fail(w, r, httpErr(http.StatusBadRequest, "limit must be 1–1000"))
			return
		}
		f.Limit = n
	}
	runs, err := s.backupRuns()
	var list []api.BackupRun
	if err == nil {
		list, err = runs.List(r.Context(), key.Project, f)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []api.BackupRun{}
	}
	writeJSON(w, http.StatusOK, listResponse[api.BackupRun]{APIVersion: api.APIVersion, Kind: "BackupRunList", Items: list})
}

func (s *Server) getBackup(w http.ResponseWriter, r *http.Request) {
	key, _, err := s.backupVolume(r, authz.Read)
	var run api.BackupRun
	if err == nil {
		run, err = s.runOf(r, key, chi.URLParam(r, "run"))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// runOf reads a run of the volume; another volume's (or project's) is a 404.
func (s *Server) runOf(r *http.Request, key api.Key, id string) (api.BackupRun, error) {
	notFound := httpErr(http.StatusNotFound, "volume %q has no backup run %q", key.Name, id)
	if len(id) == 0 || len(id) > 64 {
		return api.BackupRun{}, notFound
	}
	runs, err := s.backupRuns()
	if err != nil {
		return api.BackupRun{}, err
	}
	run, err := runs.Get(r.Context(), key.Project, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && run.Volume != key.Name) {
		return api.BackupRun{}, notFound
	}
	return run, err
}

func (s *Server) createBackup(w http.ResponseWriter, r *http.Request) {
	key, v, err := s.backupVolume(r, authz.Write)
	switch {
	case err != nil:
	case v.Metadata.DeletionTimestamp != nil:
		err = httpErr(http.StatusConflict, "volume %q is being deleted", key.Name)
	case v.Spec.Backup == nil:
		err = invalid(api.ErrorList{api.Required("spec.backup", "the volume has no backup target: set spec.backup.target first")})
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.createRun(w, r, api.BackupRun{Project: key.Project, Volume: key.Name, Op: api.BackupOpBackup})
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request, run api.BackupRun) {
	run.Trigger, run.Phase = api.BackupManual, api.BackupPending
	run.RequestedBy = authz.PrincipalFrom(r.Context()).UserID
	runs, err := s.backupRuns()
	if err == nil {
		run, err = runs.Create(r.Context(), run)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	verb, to := run.Op.Title(), ""
	if run.Move != nil {
		to = fmt.Sprintf(" (%s → %s)", run.Move.From, run.Move.Node)
	}
	s.recordEvent(r.Context(), store.Event{Project: run.Project, Kind: api.KindVolume, Name: run.Volume, Type: store.EventNormal,
		Reason: verb + "Requested", Message: fmt.Sprintf("%s %s requested by %s%s", verb, run.ID, run.RequestedBy, to)})
	w.Header().Set("Location", fmt.Sprintf("/api/v1/projects/%s/volumes/%s/backups/%s", run.Project, run.Volume, run.ID))
	writeJSON(w, http.StatusAccepted, run)
}

func (s *Server) createRestore(w http.ResponseWriter, r *http.Request) {
	key, v, err := s.backupVolume(r, authz.Write)
	var req api.RestoreRequest
	if err == nil {
		var data []byte
		if data, err = s.readBody(w, r, bodyTypes...); err == nil {
			err = decodeStrict(data, &req)
		}
	}
	if err == nil {
		err = s.checkRestore(r, key, v, req)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.createRun(w, r, api.BackupRun{Project: key.Project, Volume: key.Name, Op: api.BackupOpRestore,
		Restore: &api.RestoreParams{Backup: req.Backup, ToVolume: req.ToVolume, Overwrite: req.Overwrite, IdentitySecret: req.IdentitySecret}})
}

// checkRestore refuses what the controller would refuse, before a run is
// recorded: an unknown or unfinished backup, a removed archive, a target
// volume with data without overwrite.
func (s *Server) checkRestore(r *http.Request, key api.Key, v *api.Volume, req api.RestoreRequest) error {
	var errs api.ErrorList
	if req.Backup == "" {
		errs = append(errs, api.Required("backup", "name the backup run to restore (panelx backup list)"))
	}
	if req.ToVolume != "" {
		errs = append(errs, api.ValidateName("toVolume", req.ToVolume)...)
	}
	if sel := req.IdentitySecret; sel != nil {
		errs = append(errs, api.ValidateName("identitySecret.name", sel.Name)...)
		if sel.Key == "" {
			errs = append(errs, api.Required("identitySecret.key", "name the key that holds the age identity"))
		}
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	if v.Spec.Backup == nil {
		return invalid(api.ErrorList{api.Required("spec.backup", "the volume has no backup target")})
	}
	src, err := s.runOf(r, key, req.Backup)
	if err != nil {
		return err
	}
	switch {
	case src.Op != api.BackupOpBackup || src.Phase != api.BackupSucceeded:
		return httpErr(http.StatusUnprocessableEntity, "run %s is not a successful backup (it is a %s, %s)", src.ID, src.Op, src.Phase)
	case src.Pruned != nil:
		return httpErr(http.StatusGone, "the archive of backup %s was removed by retention", src.ID)
	}
	into := req.ToVolume
	if into == "" || into == key.Name {
		if !req.Overwrite {
			return httpErr(http.StatusConflict, "restoring into volume %q replaces its contents: ask with overwrite: true (its services are stopped and started again)", key.Name)
		}
		return nil
	}
	_, err = s.store.Volumes().Get(r.Context(), api.Key{Project: key.Project, Name: into})
	switch {
	case err == nil && !req.Overwrite:
		return httpErr(http.StatusConflict, "volume %q exists: restoring into it replaces its contents; ask with overwrite: true", into)
	case errors.Is(err, store.ErrNotFound):
		return nil
	}
	return err
}

func (s *Server) createMove(w http.ResponseWriter, r *http.Request) {
	key, v, err := s.backupVolume(r, authz.Write)
	var req api.MoveRequest
	if err == nil {
		var data []byte
		if data, err = s.readBody(w, r, bodyTypes...); err == nil {
			err = decodeStrict(data, &req)
		}
	}
	if err == nil {
		err = s.checkMove(r, key, v, req)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.createRun(w, r, api.BackupRun{Project: key.Project, Volume: key.Name, Op: api.BackupOpMove,
		Move: &api.MoveParams{Node: req.Node, From: v.Status.Node}})
}

// checkMove refuses a move the controller could not carry out: the node
// name ends up in a Swarm placement constraint (node.hostname==NODE), so
// only a hostname passes.
func (s *Server) checkMove(r *http.Request, key api.Key, v *api.Volume, req api.MoveRequest) error {
	switch {
	case req.Node == "":
		return invalid(api.ErrorList{api.Required("node", "name the node to move the volume to (its hostname, as docker node ls shows it)")})
	case !isHostname(req.Node):
		return invalid(api.ErrorList{api.Invalid("node", req.Node,
			"must be a hostname: 1–253 characters, dot-separated labels of letters, digits and '-' (at most 63 each)")})
	case v.Metadata.DeletionTimestamp != nil:
		return httpErr(http.StatusConflict, "volume %q is being deleted", key.Name)
	case v.Status.Node == "":
		return httpErr(http.StatusConflict, "volume %q has no node recorded: it is not on a swarm runtime, or not created yet", key.Name)
	case req.Node == v.Status.Node:
		return httpErr(http.StatusConflict, "volume %q is already on node %s", key.Name, req.Node)
	}
	// A queued run would run first and the move would start from a stale
	// node; one at a time keeps the From of the run true.
	runs, err := s.backupRuns()
	if err != nil {
		return err
	}
	for _, phase := range []api.BackupPhase{api.BackupRunning, api.BackupPending} {
		open, err := runs.List(r.Context(), key.Project, store.BackupRunFilter{Volume: key.Name, Phase: phase, Limit: 1})
		if err != nil {
			return fmt.Errorf("look for open runs of volume %s: %w", key.Name, err)
		}
		if len(open) > 0 {
			return httpErr(http.StatusConflict, "volume %q has a %s %s run (%s): wait for it to end (panelx backup list %s -p %s)",
				key.Name, open[0].Op, open[0].Phase, open[0].ID, key.Name, key.Project)
		}
	}
	return nil
}

// isHostname: 1–253 characters of dot-separated, non-empty labels of
// letters, digits and '-', at most 63 each; nothing a placement constraint
// would read as syntax (spaces, '=', '!').
func isHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
