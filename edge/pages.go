package edge

import (
	"fmt"
	"net/http"
	"strconv"
)

// Reasons the edge answers a request itself, as in the X-PanelX-Edge
// header and the upstream-error metric.
const (
	reasonNoRoute     = "no-route"
	reasonNoReplica   = "no-ready-replica"
	reasonCertPending = "certificate-pending"
	reasonPlainOnly   = "plain-http-only"
	reasonTooLarge    = "body-too-large"
	reasonRefused     = "refused"
	reasonTimeout     = "timeout"
	reasonUpstream    = "upstream-error"
)

// page answers a request the edge cannot pass on: a status, and one line
// saying why in words a user can act on — never a bare error.
func page(w http.ResponseWriter, status int, reason, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-PanelX-Edge", reason)
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	}
	h.Set("Content-Length", strconv.Itoa(len(msg)+len(pageFooter)+1))
	w.WriteHeader(status)
	fmt.Fprint(w, msg, "\n", pageFooter)
}

const pageFooter = "-- PanelX edge\n"
