package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"strconv"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/panelx/panelx/internal/programtb"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/naming"
)

// benchLabel marks the containers and the image of one run, for cleanup.
const benchLabel = "org.panelx.bench.collector"

type bench struct {
	cli      *client.Client
	tb       *programtb.TB
	instance string // the PanelX instance (and project) of the run's containers
	ref      string
}

func newBench(cli *client.Client, tb *programtb.TB) *bench {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &bench{cli: cli, tb: tb, instance: "bench-" + hex.EncodeToString(b)}
}

// prepareImage builds the test app's image (labelled for this run, so its
// ID is ours alone), serves it from the in-process registry and pulls it.
func (b *bench) prepareImage(ctx context.Context) error {
	reg := testimage.StartRegistry(b.tb, testimage.RegistryOptions{})
	b.ref = reg.Push(b.tb, "bench/idle:1", testimage.Image(b.tb, testimage.ImageOptions{
		Labels: map[string]string{benchLabel: b.instance},
		Cmd:    []string{"-sleep"},
	}))
	rc, err := b.cli.ImagePull(ctx, b.ref, image.PullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s: %w", b.ref, err)
	}
	defer rc.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil); err != nil {
		return fmt.Errorf("pull %s: %w", b.ref, err)
	}
	return nil
}

// startContainers creates and starts n containers, parallel at a time.
func (b *bench) startContainers(ctx context.Context, n, parallel int, memoryLimit int64) error {
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range n {
		select {
		case <-ctx.Done():
		case sem <- struct{}{}:
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := b.startOne(ctx, i, memoryLimit); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func (b *bench) startOne(ctx context.Context, i int, memoryLimit int64) error {
	service := "svc-" + strconv.Itoa(i)
	cfg := &container.Config{
		Image: b.ref,
		Labels: map[string]string{
			benchLabel:           b.instance,
			naming.LabelManaged:  "true",
			naming.LabelInstance: b.instance,
			naming.LabelProject:  b.instance,
			naming.LabelService:  service,
			naming.LabelReplica:  "0",
		},
	}
	hc := &container.HostConfig{Resources: container.Resources{Memory: memoryLimit}}
	name := naming.ContainerName(b.instance, service, 0)
	// A create canceled halfway may still finish in the daemon after the
	// client gave up, out of sight of the cleanup's list: let it finish.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	created, err := b.cli.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if err := b.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	return nil
}

// cleanup removes every container and the image of the run. It uses a
// context of its own: it also runs after Ctrl-C canceled the run's.
func (b *bench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", benchLabel+"="+b.instance))
	list, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		log.Printf("cleanup: list containers: %v", err)
	}
	start := time.Now()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, c := range list {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := b.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
				log.Printf("cleanup: remove container %s: %v", c.ID[:12], err)
			}
		})
	}
	wg.Wait()
	imgs, err := b.cli.ImageList(ctx, image.ListOptions{All: true, Filters: f})
	if err != nil {
		log.Printf("cleanup: list images: %v", err)
	}
	for _, img := range imgs {
		if _, err := b.cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			log.Printf("cleanup: remove image %s: %v", img.ID, err)
		}
	}
	log.Printf("cleanup: removed %d containers in %v", len(list), time.Since(start).Round(time.Millisecond))
}
