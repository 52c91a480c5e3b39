package apiserver

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
)

// Upload pacing: a body must arrive at this rate or faster (after a grace
// period), so a slow sender cannot hold a handler and a helper container.
const (
	uploadGrace    = time.Minute
	uploadMinSpeed = 256 << 10 // bytes per second
)

// FileList and FileItem are a volume directory's listing (api.FileList).
type (
	FileList = api.FileList
	FileItem = api.FileItem
)

// fileOpRequest is the optional JSON body of a POST: {"op": "rename",
// "to": "new/name"}; the same fields work as query parameters.
type fileOpRequest struct {
	Op string `json:"op,omitempty"`
	To string `json:"to,omitempty"`
}

// filesPrefixSegments: "", api, v1, projects, {project}, volumes, {volume}, files.
const filesPrefixSegments = 8

// volumePath returns the path in the volume that the URL names after
// /files/. chi decodes a path only when nothing in it needs escaping, so
// the path is cut from the still-escaped URL and decoded here exactly
// once: "..%2f" and "%2e%2e" become ".." and are refused, "%252e" stays a
// percent sequence and is refused, never decoded a second time. One
// trailing slash is dropped ("files/dir/" is dir; "files/" the root).
func volumePath(r *http.Request) (string, error) {
	segs := strings.SplitN(r.URL.EscapedPath(), "/", filesPrefixSegments+1)
	if len(segs) < filesPrefixSegments || segs[filesPrefixSegments-1] != "files" {
		return "", httpErr(http.StatusBadRequest, "path: not a files URL")
	}
	raw := ""
	if len(segs) > filesPrefixSegments {
		raw = segs[filesPrefixSegments]
	}
	p, err := url.PathUnescape(raw)
	if err != nil {
		return "", httpErr(http.StatusBadRequest, "path: invalid percent-encoding")
	}
	// "dir/" names dir, as URLs of directories usually end; anything else
	// about the path is the path checker's to accept or refuse.
	if strings.HasSuffix(p, "/") && p != "/" {
		p = strings.TrimSuffix(p, "/")
	}
	return p, nil
}

// volumeRequest authorizes the caller, checks that the volume exists and
// reads the URL's path, checked without I/O.
func (s *Server) volumeRequest(r *http.Request, action authz.Action) (api.Key, string, Operations, error) {
	key, err := s.volumeTarget(r, action)
	if err != nil {
		return key, "", nil, err
	}
	p, err := volumePath(r)
	if err != nil {
		return key, "", nil, err
	}
	ops, err := s.operations()
	if err != nil {
		return key, "", nil, err
	}
	if err := ops.CheckPath(p); err != nil {
		return key, "", nil, opError(err)
	}
	return key, p, ops, nil
}

// errVolumeRoot: writes, renames and deletes need a path below the root.
var errVolumeRoot = httpErr(http.StatusBadRequest, "path: the volume root itself cannot be written, renamed or deleted")

// openVolume is volumeRequest, then opens the volume's files.
func (s *Server) openVolume(r *http.Request, action authz.Action) (VolumeFiles, string, error) {
	key, p, ops, err := s.volumeRequest(r, action)
	if err != nil {
		return nil, "", err
	}
	if p == "" && r.Method != http.MethodGet {
		return nil, "", errVolumeRoot
	}
	files, err := ops.Files(r.Context(), key.Project, key.Name)
	if err != nil {
		return nil, "", opError(err)
	}
	return files, p, nil
}

// getFile: GET …/volumes/{volume}/files/{path} — a directory's listing as
// JSON, or a file's bytes as a download.
func (s *Server) getFile(w http.ResponseWriter, r *http.Request) {
	files, p, err := s.openVolume(r, authz.Read)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if p != "" {
		rc, info, err := files.Read(r.Context(), p)
		if err == nil {
			defer rc.Close()
			s.download(w, r, rc, info)
			return
		}
		if !errors.Is(err, ErrIsDirectory) {
			s.fail(w, r, opError(err))
			return
		}
	}
	l, err := files.List(r.Context(), p)
	if err != nil {
		s.fail(w, r, opError(err))
		return
	}
	out := FileList{Path: p, Items: make([]FileItem, 0, len(l.Entries)), Truncated: l.Truncated}
	for _, e := range l.Entries {
		out.Items = append(out.Items, FileItem{Name: e.Name, Type: e.Type, Size: e.Size,
			Mode: fmt.Sprintf("%04o", e.Mode), ModeBits: e.Mode, ModTime: e.ModTime,
			UID: e.UID, GID: e.GID, LinkTarget: e.LinkTarget})
	}
	writeJSON(w, http.StatusOK, out)
}

// download streams a file. A client that stops reading is dropped after
// streamWriteTimeout; a stream that breaks leaves the response short of
// its Content-Length, which clients notice.
func (s *Server) download(w http.ResponseWriter, r *http.Request, rc io.Reader, info FileEntry) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Content-Type-Options", "nosniff")
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": info.Name})
	if disposition == "" {
		disposition = "attachment"
	}
	h.Set("Content-Disposition", disposition)
	h.Set("Content-Length", fmt.Sprint(info.Size))
	h.Set("Last-Modified", info.ModTime.UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusOK)
	rc2 := http.NewResponseController(w)
	defer rc2.SetWriteDeadline(time.Time{}) //nolint:errcheck // the connection may be reused
	dw := &deadlineWriter{w: w, rc: rc2}
	if _, err := io.Copy(dw, rc); err != nil {
		logger(r.Context()).Debug("download ended early")
	}
}

// deadlineWriter gives every write streamWriteTimeout.
type deadlineWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	return d.w.Write(p)
}

// putFile: PUT …/files/{path} — create or replace a file with the body.
// The size must be announced (Content-Length) and within the upload
// limit; the file appears complete or not at all.
func (s *Server) putFile(w http.ResponseWriter, r *http.Request) {
	files, p, err := s.openVolume(r, authz.Write)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	size := r.ContentLength
	switch {
	case size < 0:
		s.fail(w, r, httpErr(http.StatusLengthRequired, "send Content-Length: an upload's size must be known up front"))
		return
	case size > s.ops.maxUpload:
		s.fail(w, r, httpErr(http.StatusRequestEntityTooLarge, "the file is %d bytes; uploads are limited to %d bytes", size, s.ops.maxUpload))
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(uploadGrace + time.Duration(size/uploadMinSpeed)*time.Second))
	if err := files.Write(r.Context(), p, r.Body, size, s.ops.maxUpload); err != nil {
		s.fail(w, r, opError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// postFile: POST …/files/{path} — make a directory there (the default),
// or rename it (op=rename, to=<path>), from query parameters or a JSON
// body {"op", "to"}.
func (s *Server) postFile(w http.ResponseWriter, r *http.Request) {
	key, p, ops, err := s.volumeRequest(r, authz.Write)
	if err == nil && p == "" {
		err = errVolumeRoot
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	op, err := s.fileOp(w, r, ops)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	files, err := ops.Files(r.Context(), key.Project, key.Name)
	if err != nil {
		s.fail(w, r, opError(err))
		return
	}
	switch op.Op {
	case "mkdir":
		err = files.Mkdir(r.Context(), p)
	case "rename":
		err = files.Rename(r.Context(), p, op.To)
	}
	if err != nil {
		s.fail(w, r, opError(err))
		return
	}
	if op.Op == "mkdir" {
		w.Header().Set("Location", r.URL.EscapedPath())
		w.WriteHeader(http.StatusCreated)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fileOp reads op and to from the query and the body; they must agree.
func (s *Server) fileOp(w http.ResponseWriter, r *http.Request, ops Operations) (fileOpRequest, error) {
	q := r.URL.Query()
	op := fileOpRequest{Op: q.Get("op"), To: q.Get("to")}
	if r.ContentLength != 0 {
		data, err := s.readBody(w, r, "application/json")
		if err != nil {
			return op, err
		}
		var body fileOpRequest
		if len(data) > 0 {
			if err := decodeStrictJSON(data, &body); err != nil {
				return op, httpErr(http.StatusBadRequest, "body: want {\"op\": \"mkdir\"} or {\"op\": \"rename\", \"to\": \"new/path\"}: %v", err)
			}
		}
		if (op.Op != "" && body.Op != "" && op.Op != body.Op) || (op.To != "" && body.To != "" && op.To != body.To) {
			return op, httpErr(http.StatusBadRequest, "the query and the body disagree")
		}
		op.Op, op.To = cmp.Or(op.Op, body.Op), cmp.Or(op.To, body.To)
	}
	if op.Op == "" {
		op.Op = "mkdir"
		if op.To != "" {
			op.Op = "rename"
		}
	}
	switch {
	case op.Op != "mkdir" && op.Op != "rename":
		return op, badQuery("op", "mkdir or rename")
	case op.Op == "mkdir" && op.To != "":
		return op, badQuery("to", "only a rename has a target")
	case op.Op == "rename" && op.To == "":
		return op, badQuery("to", "the new path, relative to the volume root")
	}
	if op.To != "" {
		if err := ops.CheckPath(op.To); err != nil {
			return op, opError(err)
		}
	}
	return op, nil
}

// decodeStrictJSON decodes one JSON value, refusing unknown fields.
func decodeStrictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

// deleteFile: DELETE …/files/{path} — a file, a link (not its target) or
// a directory with everything in it.
func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request) {
	files, p, err := s.openVolume(r, authz.Write)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := files.Delete(r.Context(), p); err != nil {
		s.fail(w, r, opError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
