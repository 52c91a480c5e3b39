package backup

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound: the target has no object under the key.
var ErrNotFound = errors.New("no such object")

// Object is one object of a target's listing.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Target stores archives under keys (slash-separated relative paths).
type Target interface {
	// Describe names the target for records and messages (never a
	// credential).
	Describe() string
	// Put writes r to key, streaming, and returns the bytes written. A
	// failed Put leaves nothing under key that looks complete (the caller
	// writes only temporary keys with it).
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Open reads an object.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat returns an object's size.
	Stat(ctx context.Context, key string) (int64, error)
	// Promote makes the object at tmp the object at final (atomically
	// where the target allows) and removes tmp.
	Promote(ctx context.Context, tmp, final string) error
	// Delete removes an object; a missing one is no error.
	Delete(ctx context.Context, key string) error
	// List lists the objects whose keys start with prefix.
	List(ctx context.Context, prefix string) ([]Object, error)
}
