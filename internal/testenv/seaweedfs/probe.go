package seaweedfs

import (
	"context"
	"fmt"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func (s *Server) probe(buckets []string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, b := range buckets {
		ok, err := c.BucketExists(ctx, b)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("bucket %s not there yet", b)
		}
	}
	if len(buckets) == 0 {
		_, err = c.ListBuckets(ctx)
	}
	return err
}

// Client is an S3 client of the server.
func (s *Server) Client() (*minio.Client, error) {
	return minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, "")})
}
