package apiserver

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

// BuildRequestAnswer is the answer to a build request.
type BuildRequestAnswer struct {
	// Request is the value of the service's build-request annotation.
	Request string `json:"request"`
}

// requestBuild asks for a new build of the service's tracked ref: it
// stamps the build-request annotation, which the controller follows (the
// same path a webhook takes).
func (s *Server) requestBuild(w http.ResponseWriter, r *http.Request) {
	key, svc, err := s.serviceKey(r, authz.Write)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	user := authz.PrincipalFrom(r.Context()).UserID
	request := fmt.Sprintf("%s by %s", s.now().UTC().Format(time.RFC3339Nano), user)
	if err := s.stampBuildRequest(r, svc, request); err != nil {
		s.fail(w, r, err)
		return
	}
	s.recordEvent(r.Context(), store.Event{Project: key.Project, Kind: api.KindService, Name: key.Name, Type: store.EventNormal,
		Reason: "BuildRequested", Message: "build requested by " + user})
	writeJSON(w, http.StatusAccepted, BuildRequestAnswer{Request: request})
}

// cancelBuild cancels the service's queued or running build: it stamps
// the cancel annotation with the build's request, which the controller
// follows; the build ends Failed, "cancelled", and the running revision
// keeps serving.
func (s *Server) cancelBuild(w http.ResponseWriter, r *http.Request) {
	key, svc, err := s.serviceKey(r, authz.Write)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for range maxUpdateAttempts {
		b := svc.Status.Build
		if b == nil || (b.Phase != api.BuildQueued && b.Phase != api.BuildBuilding) {
			s.fail(w, r, httpErr(http.StatusConflict, "service %q has no build queued or running", key.Name))
			return
		}
		next := api.Clone(svc)
		if next.Metadata.Annotations == nil {
			next.Metadata.Annotations = map[string]string{}
		}
		next.Metadata.Annotations[api.AnnotationBuildCancel] = b.Request
		_, err = s.store.Services().Update(r.Context(), next)
		if !errors.Is(err, store.ErrConflict) {
			break
		}
		if svc, err = s.store.Services().Get(r.Context(), key); err != nil {
			break
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.recordEvent(r.Context(), store.Event{Project: key.Project, Kind: api.KindService, Name: key.Name, Type: store.EventNormal,
		Reason: "BuildCancelRequested", Message: "build cancel requested by " + authz.PrincipalFrom(r.Context()).UserID})
	w.WriteHeader(http.StatusAccepted)
}

// stampBuildRequest sets the service's build-request annotation, retrying
// when the service changed meanwhile.
func (s *Server) stampBuildRequest(r *http.Request, svc *api.Service, request string) error {
	key := api.KeyOf(svc)
	for range maxUpdateAttempts {
		switch {
		case svc.Spec.Build == nil:
			return httpErr(http.StatusConflict, "service %q runs image %q: it has no spec.build to build", key.Name, svc.Spec.Image)
		case svc.Metadata.DeletionTimestamp != nil:
			return httpErr(http.StatusConflict, "service %q is being deleted", key.Name)
		}
		next := api.Clone(svc)
		if next.Metadata.Annotations == nil {
			next.Metadata.Annotations = map[string]string{}
		}
		next.Metadata.Annotations[api.AnnotationBuildRequest] = request
		_, err := s.store.Services().Update(r.Context(), next)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		if svc, err = s.store.Services().Get(r.Context(), key); err != nil {
			return err
		}
	}
	return httpErr(http.StatusConflict, "service %q kept changing; try again", key.Name)
}

// buildLogs streams the log of the service's newest build as text; with
// follow=true until the build ends. Builds run on the server that leads
// the controller, and their logs are kept there.
func (s *Server) buildLogs(w http.ResponseWriter, r *http.Request) {
	key, _, err := s.serviceKey(r, authz.Read)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	follow := r.URL.Query().Get("follow") == "true"
	if s.builds == nil {
		s.fail(w, r, httpErr(http.StatusServiceUnavailable, "this server runs no builds (build logs are kept by the server leading the controller)"))
		return
	}
	lines, next, running, more, ok := s.builds.Read(key, 0)
	if !ok {
		s.fail(w, r, httpErr(http.StatusNotFound, "this server holds no build log of service %q (builds run on the server leading the controller; its status says how the last one ended)", key.Name))
		return
	}
	ctx, cancel := s.streamContext(r.Context())
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	flusher, _ := w.(http.Flusher)
	for {
		for _, l := range lines {
			bw.WriteString(l)
			bw.WriteByte('\n')
		}
		if err := bw.Flush(); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		if !follow || !running {
			return
		}
		select {
		case <-more:
		case <-ctx.Done():
			return
		}
		// Re-check the project on each wake: a removed member stops reading.
		if _, err := s.authorize(r, key.Project, authz.Read); err != nil {
			return
		}
		lines, next, running, more, _ = s.builds.Read(key, next)
	}
}
