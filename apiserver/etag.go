package apiserver

import (
	"net/http"
	"strings"
)

// etag renders a resourceVersion as a strong entity tag.
func etag(rv string) string { return `"` + rv + `"` }

// ifMatch returns the resourceVersion an If-Match header requires: "" when
// there is no header or it is "*" (any current version). One entity tag
// only; weak tags (W/"7", as some proxies rewrite them) are taken at their
// value, and a bare 7 is accepted for curl users.
func ifMatch(r *http.Request) (string, bool, error) {
	values := r.Header.Values("If-Match")
	if len(values) == 0 {
		return "", false, nil
	}
	v := strings.TrimSpace(strings.Join(values, ","))
	if v == "*" {
		return "", false, nil
	}
	if strings.Contains(v, ",") {
		return "", false, httpErr(http.StatusBadRequest, "If-Match: give one entity tag (the ETag of the object you read)")
	}
	v = strings.TrimPrefix(v, "W/")
	v = strings.TrimSuffix(strings.TrimPrefix(v, `"`), `"`)
	if v == "" || strings.ContainsAny(v, "\"\x00") || len(v) > 64 {
		return "", false, httpErr(http.StatusBadRequest, "If-Match: not an entity tag")
	}
	return v, true, nil
}
