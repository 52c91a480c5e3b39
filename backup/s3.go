package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// PartSize is the size of one multipart upload part: the one buffer of an
// archive an upload holds (minio-go buffers a part of a stream of unknown
// length). 10,000 parts make the largest archive 160 GiB.
const PartSize = 16 << 20

// maxSingleCopy is S3's limit of a one-request server-side copy.
const maxSingleCopy = 5 << 30

// S3Config reaches a bucket.
type S3Config struct {
	Endpoint  string // host[:port]
	Bucket    string
	Prefix    string // prepended to every key
	Region    string
	Insecure  bool // plain HTTP
	AccessKey string
	SecretKey string
	// Transport overrides the HTTP transport (tests).
	Transport http.RoundTripper
}

// S3 is an S3-compatible bucket.
type S3 struct {
	cfg    S3Config
	client *minio.Client
}

// NewS3 makes the client; nothing is sent yet.
func NewS3(cfg S3Config) (*S3, error) {
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    !cfg.Insecure,
		Region:    cfg.Region,
		Transport: cfg.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 target %s: %w", cfg.Endpoint, err)
	}
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	return &S3{cfg: cfg, client: c}, nil
}

func (s *S3) Describe() string {
	d := "s3://" + s.cfg.Bucket
	if s.cfg.Prefix != "" {
		d += "/" + s.cfg.Prefix
	}
	return d + " at " + s.cfg.Endpoint
}

func (s *S3) key(k string) string {
	if s.cfg.Prefix == "" {
		return k
	}
	return s.cfg.Prefix + "/" + k
}

func (s *S3) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	cr := &countingReader{r: r}
	_, err := s.client.PutObject(ctx, s.cfg.Bucket, s.key(key), cr, -1, minio.PutObjectOptions{
		PartSize: PartSize, NumThreads: 1, ContentType: "application/octet-stream",
	})
	if err != nil {
		return cr.n, fmt.Errorf("s3 target %s: upload %s: %w", s.Describe(), key, err)
	}
	return cr.n, nil
}

func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	// Stat first: GetObject is lazy and would report a missing object at
	// the first read only.
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, s.key(key), minio.StatObjectOptions{})
	if err != nil {
		return nil, s.wrap("stat", key, err)
	}
	var opts minio.GetObjectOptions
	// The object read must be the object stat'ed: a restore reads twice.
	if info.ETag != "" {
		_ = opts.SetMatchETag(info.ETag)
	}
	obj, err := s.client.GetObject(ctx, s.cfg.Bucket, s.key(key), opts)
	if err != nil {
		return nil, s.wrap("read", key, err)
	}
	return obj, nil
}

func (s *S3) Stat(ctx context.Context, key string) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, s.key(key), minio.StatObjectOptions{})
	if err != nil {
		return 0, s.wrap("stat", key, err)
	}
	return info.Size, nil
}

// Promote copies tmp to final on the server (no bytes through PanelX)
// and removes tmp.
func (s *S3) Promote(ctx context.Context, tmp, final string) error {
	size, err := s.Stat(ctx, tmp)
	if err != nil {
		return err
	}
	dst := minio.CopyDestOptions{Bucket: s.cfg.Bucket, Object: s.key(final)}
	src := minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: s.key(tmp)}
	if size <= maxSingleCopy {
		_, err = s.client.CopyObject(ctx, dst, src)
	} else {
		_, err = s.client.ComposeObject(ctx, dst, src)
	}
	if err != nil {
		return s.wrap("copy to "+final+" from", tmp, err)
	}
	got, err := s.Stat(ctx, final)
	if err != nil {
		return err
	}
	if got != size {
		return fmt.Errorf("s3 target %s: %s has %d bytes after the copy, %d expected", s.Describe(), final, got, size)
	}
	return s.Delete(ctx, tmp)
}

func (s *S3) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.cfg.Bucket, s.key(key), minio.RemoveObjectOptions{})
	if err != nil && !isS3NotFound(err) {
		return s.wrap("delete", key, err)
	}
	return nil
}

func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	for o := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.key(prefix), Recursive: true}) {
		if o.Err != nil {
			return nil, s.wrap("list", prefix, o.Err)
		}
		key := o.Key
		if s.cfg.Prefix != "" {
			key = strings.TrimPrefix(key, s.cfg.Prefix+"/")
		}
		out = append(out, Object{Key: key, Size: o.Size, Modified: o.LastModified})
	}
	return out, nil
}

func (s *S3) wrap(op, key string, err error) error {
	if isS3NotFound(err) {
		return fmt.Errorf("s3 target %s: %s %s: %w", s.Describe(), op, key, ErrNotFound)
	}
	return fmt.Errorf("s3 target %s: %s %s: %w", s.Describe(), op, key, err)
}

func isS3NotFound(err error) bool {
	var e minio.ErrorResponse
	if errors.As(err, &e) {
		return e.Code == "NoSuchKey" || e.StatusCode == http.StatusNotFound && e.Code != "NoSuchBucket"
	}
	return false
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
