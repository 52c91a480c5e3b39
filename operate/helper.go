package operate

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/panelx/panelx/naming"
)

// Bounds of a helper run.
const (
	helperTimeout   = 10 * time.Minute // deleting a large tree takes a while
	helperMemory    = 256 << 20
	helperPids      = 64
	helperMaxStdout = 16 << 20 // a listing of MaxListEntries entries fits
	helperMaxStderr = 64 << 10
	// helperBinaryName is where the binary is copied, in the container's
	// root (its own throw-away layer, not the volume).
	helperBinaryName = ".panelx-helper"
)

// runHelper runs one operation of the helper binary in a fresh container:
// created from the helper image, the binary copied into its root, only the
// volume mounted (read-write), no network, all capabilities dropped but
// the two that let root act on files of any owner inside the volume
// (DAC_OVERRIDE, FOWNER), no-new-privileges, bounded memory and processes.
// The request travels in the environment, the answer is the helper's one
// JSON line on stdout.
func (f *Files) runHelper(ctx context.Context, req helperRequest) (helperResponse, error) {
	if f.opts.HelperBinary == "" {
		return helperResponse{}, ErrNoHelper
	}
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	raw, err := json.Marshal(req)
	if err != nil {
		return helperResponse{}, err
	}
	id, err := f.create(ctx, f.helperConfig(raw), f.helperHost())
	if err != nil {
		return helperResponse{}, err
	}
	defer removeContainer(ctx, f.cli, id)
	if err := f.copyHelper(ctx, id); err != nil {
		return helperResponse{}, err
	}
	code, err := f.startAndWait(ctx, id)
	if err != nil {
		return helperResponse{}, err
	}
	stdout, stderr, err := f.helperOutput(ctx, id)
	if err != nil {
		return helperResponse{}, err
	}
	var resp helperResponse
	if err := json.Unmarshal(stdout, &resp); err != nil {
		return helperResponse{}, fmt.Errorf("volume helper exited with %d and no answer (is %s a static panelx binary?): %s",
			code, f.opts.HelperBinary, strings.TrimSpace(string(stderr)))
	}
	if resp.Error != "" {
		return resp, helperErrorFor(resp)
	}
	if code != 0 {
		return resp, fmt.Errorf("volume helper exited with %d", code)
	}
	return resp, nil
}

func (f *Files) helperConfig(req []byte) *container.Config {
	return &container.Config{
		Image:      f.image,
		Entrypoint: []string{"/" + helperBinaryName, HelperCommand},
		// The image's environment is merged in; GODEBUG is reset so that
		// it cannot change the helper's behaviour.
		Env:             []string{helperEnv + "=" + string(req), "GODEBUG="},
		User:            "0:0",
		WorkingDir:      "/",
		Labels:          f.helperLabels(),
		NetworkDisabled: true,
		Healthcheck:     &container.HealthConfig{Test: []string{"NONE"}},
	}
}

func (f *Files) helperHost() *container.HostConfig {
	host := lockedHost(f.volumeMount(false))
	host.CapAdd = []string{"DAC_OVERRIDE", "FOWNER"}
	host.LogConfig = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "32m", "max-file": "1"}}
	pids := int64(helperPids)
	host.Resources = container.Resources{Memory: helperMemory, PidsLimit: &pids}
	return host
}

// copyHelper puts the helper binary into the container's root.
func (f *Files) copyHelper(ctx context.Context, id string) error {
	bin, err := os.Open(f.opts.HelperBinary)
	if err != nil {
		return fmt.Errorf("volume helper binary: %w", err)
	}
	defer bin.Close()
	fi, err := bin.Stat()
	if err != nil {
		return fmt.Errorf("volume helper binary: %w", err)
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: helperBinaryName, Mode: 0o755, Size: fi.Size(), ModTime: time.Now()}
	if err := copyTar(ctx, f.cli, id, "/", hdr, bin); err != nil {
		return fmt.Errorf("copy volume helper binary: %w", err)
	}
	return nil
}

func (f *Files) startAndWait(ctx context.Context, id string) (int64, error) {
	waitC, errC := f.cli.ContainerWait(ctx, id, container.WaitConditionNextExit)
	if err := f.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return 0, fmt.Errorf("start volume helper (is %s a static Linux binary?): %w", f.opts.HelperBinary, err)
	}
	select {
	case w := <-waitC:
		if w.Error != nil {
			return 0, fmt.Errorf("volume helper: %s", w.Error.Message)
		}
		return w.StatusCode, nil
	case err := <-errC:
		return 0, fmt.Errorf("wait for volume helper: %w", err)
	case <-ctx.Done():
		return 0, fmt.Errorf("volume helper: %w", ctx.Err())
	}
}

func (f *Files) helperOutput(ctx context.Context, id string) (stdout, stderr []byte, err error) {
	rc, err := f.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return nil, nil, fmt.Errorf("volume helper output: %w", err)
	}
	defer rc.Close()
	out := &limitedBuffer{max: helperMaxStdout}
	errOut := &limitedBuffer{max: helperMaxStderr}
	if _, err := stdcopy.StdCopy(out, errOut, rc); err != nil {
		return nil, nil, fmt.Errorf("volume helper output: %w", err)
	}
	return out.Bytes(), errOut.Bytes(), nil
}

// limitedBuffer keeps the first max bytes and drops the rest.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// RemoveHelpers removes this installation's helper containers created more
// than olderThan ago: leftovers of a PanelX process that died mid-operation
// (operations remove their containers themselves, even on failure). Run it
// at start-up with olderThan larger than the longest operation (e.g. 15m).
func RemoveHelpers(ctx context.Context, cli Docker, instance string, olderThan time.Duration) (int, error) {
	var list []container.Summary
	err := withTimeout(ctx, func(ctx context.Context) (err error) {
		list, err = cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
			filters.Arg("label", naming.LabelInstance+"="+instance),
			filters.Arg("label", LabelHelper),
		)})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("list helper containers: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	var errs []error
	n := 0
	for _, c := range list {
		if time.Unix(c.Created, 0).After(cutoff) {
			continue
		}
		err := withTimeout(ctx, func(ctx context.Context) error {
			return cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("remove helper container %s: %w", c.ID[:12], err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
