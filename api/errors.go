package api

import (
	"fmt"
	"strconv"
	"strings"
)

// ErrorType classifies a field error, for clients that act on it.
type ErrorType string

const (
	ErrRequired     ErrorType = "Required"
	ErrInvalid      ErrorType = "Invalid"
	ErrNotSupported ErrorType = "NotSupported"
	ErrDuplicate    ErrorType = "Duplicate"
	ErrTooLong      ErrorType = "TooLong"
	ErrForbidden    ErrorType = "Forbidden"
	ErrUnknownField ErrorType = "UnknownField"
	ErrType         ErrorType = "TypeMismatch"
)

// FieldError is one problem with one field, named by its path
// (spec.ports[0].containerPort).
type FieldError struct {
	Field  string    `json:"field"`
	Type   ErrorType `json:"type"`
	Detail string    `json:"detail"`
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Detail
	}
	return e.Field + ": " + e.Detail
}

// ErrorList collects every problem found, so a user fixes them all at once.
type ErrorList []*FieldError

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Err returns the list as an error, or nil when it is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Path builds field paths.
type Path string

// Child returns path.name.
func (p Path) Child(name string) Path {
	if p == "" {
		return Path(name)
	}
	return Path(string(p) + "." + name)
}

// Index returns path[i].
func (p Path) Index(i int) Path { return Path(string(p) + "[" + strconv.Itoa(i) + "]") }

// Key returns path[key], for map entries.
func (p Path) Key(key string) Path { return Path(string(p) + "[" + key + "]") }

func (p Path) String() string { return string(p) }

func fieldErr(p Path, t ErrorType, format string, args ...any) *FieldError {
	return &FieldError{Field: string(p), Type: t, Detail: fmt.Sprintf(format, args...)}
}

// Required reports a missing value.
func Required(p Path, detail string) *FieldError {
	if detail == "" {
		detail = "is required"
	}
	return fieldErr(p, ErrRequired, "%s", detail)
}

// Invalid reports a value that breaks a rule.
func Invalid(p Path, value any, detail string) *FieldError {
	return fieldErr(p, ErrInvalid, "invalid value %s: %s", quoteValue(value), detail)
}

// NotSupported reports a value outside a fixed set.
func NotSupported[T ~string](p Path, value T, supported ...T) *FieldError {
	quoted := make([]string, len(supported))
	for i, s := range supported {
		quoted[i] = strconv.Quote(string(s))
	}
	return fieldErr(p, ErrNotSupported, "unsupported value %q: supported values: %s", string(value), strings.Join(quoted, ", "))
}

// Duplicate reports a value that appears twice.
func Duplicate(p Path, value any) *FieldError {
	return fieldErr(p, ErrDuplicate, "duplicate value %s", quoteValue(value))
}

// Forbidden reports a field the caller may not set.
func Forbidden(p Path, detail string) *FieldError {
	return fieldErr(p, ErrForbidden, "forbidden: %s", detail)
}

func quoteValue(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 80 {
			v = v[:77] + "..."
		}
		return strconv.Quote(v)
	default:
		return fmt.Sprint(v)
	}
}
