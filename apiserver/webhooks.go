package apiserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

// maxWebhookBody bounds a push notification's body.
const maxWebhookBody = 5 << 20

// WebhookAnswer says what a verified notification did.
type WebhookAnswer struct {
	Build  bool   `json:"build"`
	Reason string `json:"reason"`
}

// hookDelivery is one notification as the forges send it.
type hookDelivery struct {
	provider string // github, gitea, gitlab
	event    string // push, or the forge's name of another event
	id       string // the delivery's ID, for repeats
}

// pushPayload is what the three forges' push payloads share.
type pushPayload struct {
	Ref         string `json:"ref"`
	After       string `json:"after"`
	CheckoutSHA string `json:"checkout_sha"`
	Repository  struct {
		DefaultBranch string `json:"default_branch"`
	} `json:"repository"`
	Project struct {
		DefaultBranch string `json:"default_branch"`
	} `json:"project"`
}

// deliveries remembers recent delivery IDs, so a forge's retry of one
// that arrived builds once even before the annotation shows it.
type deliveries struct {
	mu    sync.Mutex
	seen  map[string]bool
	order []string
}

func (d *deliveries) firstTime(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[string]bool{}
	}
	if d.seen[id] {
		return false
	}
	d.seen[id] = true
	d.order = append(d.order, id)
	if len(d.order) > 4096 {
		delete(d.seen, d.order[0])
		d.order = d.order[1:]
	}
	return true
}

// errHookRefused is every refusal before a notification is verified: the
// same 401 whether the service, its webhook or the signature is wrong, so
// the endpoint tells a stranger nothing.
var errHookRefused = httpErr(http.StatusUnauthorized, "the notification's signature or token does not verify")

// webhook takes a forge's push notification for a service built from
// source. It is authenticated by the webhook's shared secret, not by a
// PanelX credential. A push to the tracked ref stamps the build-request
// annotation (as `panelx build` does); other events and refs are
// acknowledged and ignored.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	key := api.Key{Project: chi.URLParam(r, "project"), Name: chi.URLParam(r, "service")}
	d, ok := deliveryOf(r)
	if !ok {
		s.fail(w, r, httpErr(http.StatusBadRequest, "not a GitHub, Gitea or GitLab notification (no X-GitHub-Event, X-Gitea-Event or X-Gitlab-Event header)"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody+1))
	if err != nil {
		s.fail(w, r, httpErr(http.StatusBadRequest, "read the notification: %v", err))
		return
	}
	if len(body) > maxWebhookBody {
		s.fail(w, r, httpErr(http.StatusRequestEntityTooLarge, "the notification is larger than %d MiB", maxWebhookBody>>20))
		return
	}
	svc, secret, err := s.webhookSecret(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !verifyDelivery(r, d, body, secret) {
		s.fail(w, r, errHookRefused)
		return
	}
	answer := func(build bool, reason string) {
		writeJSON(w, http.StatusOK, WebhookAnswer{Build: build, Reason: reason})
	}
	if d.event != "push" && d.event != "Push Hook" {
		answer(false, fmt.Sprintf("%s event %q ignored: only pushes build", d.provider, d.event))
		return
	}
	var push pushPayload
	if err := json.Unmarshal(body, &push); err != nil {
		s.fail(w, r, httpErr(http.StatusBadRequest, "the push payload is not JSON: %v", err))
		return
	}
	tracked := svc.Spec.Build.Git.Ref
	if tracked == "" {
		tracked = push.Repository.DefaultBranch
		if tracked == "" {
			tracked = push.Project.DefaultBranch
		}
	}
	if push.Ref != "refs/heads/"+tracked && push.Ref != "refs/tags/"+tracked {
		answer(false, fmt.Sprintf("push to %s ignored: the service builds %s", push.Ref, tracked))
		return
	}
	commit := push.After
	if push.CheckoutSHA != "" {
		commit = push.CheckoutSHA
	}
	if commit == strings.Repeat("0", 40) {
		answer(false, "a deleted ref builds nothing")
		return
	}
	request := fmt.Sprintf("webhook %s %s %s", d.provider, d.id, commit)
	if d.id != "" && (strings.Contains(svc.Metadata.Annotations[api.AnnotationBuildRequest], " "+d.id+" ") || !s.hooks.firstTime(key.String()+"/"+d.id)) {
		answer(false, "delivery "+d.id+" was taken already")
		return
	}
	if err := s.stampBuildRequest(r, svc, request); err != nil {
		s.fail(w, r, err)
		return
	}
	s.recordEvent(r.Context(), store.Event{Project: key.Project, Kind: api.KindService, Name: key.Name, Type: store.EventNormal,
		Reason: "BuildRequested", Message: fmt.Sprintf("%s push of %s to %s", d.provider, shortCommit(commit), push.Ref)})
	answer(true, "building "+push.Ref)
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

func deliveryOf(r *http.Request) (hookDelivery, bool) {
	h := r.Header
	switch {
	case h.Get("X-Gitea-Event") != "":
		return hookDelivery{provider: "gitea", event: h.Get("X-Gitea-Event"), id: h.Get("X-Gitea-Delivery")}, true
	case h.Get("X-GitHub-Event") != "":
		return hookDelivery{provider: "github", event: h.Get("X-GitHub-Event"), id: h.Get("X-GitHub-Delivery")}, true
	case h.Get("X-Gitlab-Event") != "":
		id := h.Get("X-Gitlab-Event-UUID")
		if id == "" {
			id = h.Get("Idempotency-Key")
		}
		return hookDelivery{provider: "gitlab", event: h.Get("X-Gitlab-Event"), id: id}, true
	}
	return hookDelivery{}, false
}

// verifyDelivery checks the forge's proof of the shared secret: an
// HMAC-SHA256 of the body (GitHub, Gitea), or the secret itself (GitLab).
func verifyDelivery(r *http.Request, d hookDelivery, body []byte, secret string) bool {
	if secret == "" {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	sum := hex.EncodeToString(mac.Sum(nil))
	switch d.provider {
	case "github":
		got, ok := strings.CutPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")
		return ok && hmac.Equal([]byte(got), []byte(sum))
	case "gitea":
		return hmac.Equal([]byte(r.Header.Get("X-Gitea-Signature")), []byte(sum))
	case "gitlab":
		return subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Gitlab-Token")), []byte(secret)) == 1
	}
	return false
}

// webhookSecret finds the service and opens its webhook's secret; every
// way of not finding one is the same refusal.
func (s *Server) webhookSecret(r *http.Request, key api.Key) (*api.Service, string, error) {
	if len(api.ValidateName("", key.Project)) > 0 || len(api.ValidateName("", key.Name)) > 0 {
		return nil, "", errHookRefused
	}
	svc, err := s.store.Services().Get(r.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", errHookRefused
	}
	if err != nil {
		return nil, "", err
	}
	if svc.Spec.Build == nil || svc.Spec.Build.Webhook == nil || svc.Metadata.DeletionTimestamp != nil {
		return nil, "", errHookRefused
	}
	sec, err := s.store.Secrets().Get(r.Context(), api.Key{Project: key.Project, Name: svc.Spec.Build.Webhook.SecretRef})
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", errHookRefused
	}
	if err != nil {
		return nil, "", err
	}
	if s.keyring == nil {
		return nil, "", errNoKeyring()
	}
	data, err := s.keyring.OpenSecret(seal.SecretContext(key.Project, sec.Metadata.Name), sec.Spec.Sealed)
	if err != nil {
		return nil, "", sealFailed(fmt.Sprintf("secret %q", sec.Metadata.Name), err)
	}
	return svc, data["secret"], nil
}
