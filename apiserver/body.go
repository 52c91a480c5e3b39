package apiserver

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/panelx/panelx/api"
)

// bodyReadTimeout bounds how long a client may take to send its body, so a
// slow sender cannot hold a handler.
const bodyReadTimeout = 30 * time.Second

// Content types accepted for objects and other request bodies: the decoder
// reads JSON and YAML alike.
var bodyTypes = []string{"application/json", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}

const mergePatchType = "application/merge-patch+json"

// readBody reads the request body, at most maxBody bytes, after checking
// its content type against allowed ("" allowed when the header is absent).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, allowed ...string) ([]byte, error) {
	if err := checkContentType(r, allowed); err != nil {
		return nil, err
	}
	if r.ContentLength > s.maxBody {
		return nil, &http.MaxBytesError{Limit: s.maxBody}
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyReadTimeout))
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, err
		}
		return nil, httpErr(http.StatusBadRequest, "could not read the request body")
	}
	return data, nil
}

func checkContentType(r *http.Request, allowed []string) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if len(allowed) == 1 && allowed[0] == mergePatchType {
			return httpErr(http.StatusUnsupportedMediaType, "send Content-Type: %s", mergePatchType)
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		for _, a := range allowed {
			if mt == a {
				return nil
			}
		}
	}
	return httpErr(http.StatusUnsupportedMediaType, "Content-Type %q is not accepted here; send one of: %s", ct, strings.Join(allowed, ", "))
}

// checkText reports every string (and map key) of v holding a NUL byte or
// invalid UTF-8: the database refuses them, and no field has a use for them.
// Validation checks most fields already; this is the net under all of them,
// so such input is a 422 and never a 500.
func checkText(v any) api.ErrorList {
	var errs api.ErrorList
	walkText(reflect.ValueOf(v), "", &errs)
	return errs
}

func badText(s string) bool { return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) }

func walkText(v reflect.Value, p api.Path, errs *api.ErrorList) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkText(v.Elem(), p, errs)
		}
	case reflect.String:
		if badText(v.String()) {
			*errs = append(*errs, api.Invalid(p, v.String(), "must be valid UTF-8 without NUL bytes"))
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walkText(v.Index(i), p.Index(i), errs)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key()
			kp := p.Key(k.String())
			if k.Kind() == reflect.String && badText(k.String()) {
				*errs = append(*errs, api.Invalid(p, k.String(), "keys must be valid UTF-8 without NUL bytes"))
				kp = p.Key(strings.ToValidUTF8(strings.ReplaceAll(k.String(), "\x00", ""), "?"))
			}
			walkText(iter.Value(), kp, errs)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			fp := p
			if !(f.Anonymous && name == "") {
				if name == "" {
					name = f.Name
				}
				fp = p.Child(name)
			}
			walkText(v.Field(i), fp, errs)
		}
	}
}
