package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// Options of one image build.
type Options struct {
	Tag        string
	Dockerfile string
	Args       map[string]string
	Target     string
	Memory     int64 // bytes, for each of the build's containers
	Labels     map[string]string
	// Auth are registry logins for pulling base images, by registry.
	Auth map[string]registry.AuthConfig
	// Redact lists values (credentials) that never reach a log line.
	Redact []string
	// Log receives each line of the builder's output, redacted.
	Log func(line string)
	// Step receives each step as it starts ("Step 2/4 : COPY . /app";
	// with BuildKit "[2/3] COPY . /app").
	Step func(step string)
	// BuildKit builds with the Engine's BuildKit (NeedsBuildKit) instead
	// of the classic builder. Engine 20.10 applies no memory limit to its
	// steps; the deadline still holds.
	BuildKit bool
}

// BuildError is a build the builder refused or that failed in a step: its
// message is the builder's own error line.
type BuildError struct{ Line string }

func (e *BuildError) Error() string { return e.Line }

// Build sends the context to the engine's classic builder and returns the
// ID of the image it built and tagged. The context is streamed; the
// build's containers are removed, failed or not.
func Build(ctx context.Context, cli *client.Client, buildContext io.Reader, o Options) (string, error) {
	args := map[string]*string{}
	for k, v := range o.Args {
		args[k] = &v
	}
	opts := build.ImageBuildOptions{
		Tags:        []string{o.Tag},
		Dockerfile:  o.Dockerfile,
		BuildArgs:   args,
		Target:      o.Target,
		Memory:      o.Memory,
		MemorySwap:  o.Memory, // no swap beyond the limit
		Labels:      o.Labels,
		AuthConfigs: o.Auth,
		Remove:      true,
		ForceRemove: true,
		// The classic builder bounds each step's memory; BuildKit (which
		// takes the context as the body, no session needed) only when
		// the Dockerfile needs it.
		Version: build.BuilderV1,
	}
	if o.BuildKit {
		opts.Version = build.BuilderBuildKit
	}
	progress := newBKProgress(o)
	resp, err := cli.ImageBuild(ctx, buildContext, opts)
	if err != nil {
		return "", fmt.Errorf("build %s: %s", o.Tag, redact(err.Error(), o.Redact))
	}
	defer resp.Body.Close()
	var id string
	dec := json.NewDecoder(resp.Body)
	var partial strings.Builder
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			if ctx.Err() != nil {
				return "", fmt.Errorf("build %s: %w", o.Tag, context.Cause(ctx))
			}
			return "", fmt.Errorf("build %s: read the builder's output: %w", o.Tag, err)
		}
		if m.Error != nil {
			line := redact(strings.TrimSpace(m.Error.Message), o.Redact)
			o.log(line)
			return "", &BuildError{Line: line}
		}
		if m.ID == "moby.buildkit.trace" && m.Aux != nil {
			var raw []byte
			if json.Unmarshal(*m.Aux, &raw) == nil {
				if st, err := decodeStatus(raw); err == nil {
					progress.add(st)
				}
			}
			continue
		}
		if m.Aux != nil {
			var aux struct{ ID string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
		if m.Stream == "" {
			continue
		}
		// Output arrives in pieces; a line is complete at its newline.
		partial.WriteString(m.Stream)
		text := partial.String()
		partial.Reset()
		lines := strings.Split(text, "\n")
		partial.WriteString(lines[len(lines)-1])
		for _, line := range lines[:len(lines)-1] {
			line = redact(strings.TrimRight(line, "\r"), o.Redact)
			o.log(line)
			if strings.HasPrefix(line, "Step ") && o.Step != nil {
				o.Step(line)
			}
		}
	}
	if rest := strings.TrimSpace(partial.String()); rest != "" {
		o.log(redact(rest, o.Redact))
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("build %s: %w", o.Tag, context.Cause(ctx))
	}
	if id == "" {
		// Older engines say it only in words.
		inspect, _, err := cli.ImageInspectWithRaw(ctx, o.Tag)
		if err != nil {
			return "", fmt.Errorf("build %s: the builder named no image: %w", o.Tag, err)
		}
		id = inspect.ID
	}
	return id, nil
}

func (o Options) log(line string) {
	if o.Log != nil {
		o.Log(line)
	}
}
