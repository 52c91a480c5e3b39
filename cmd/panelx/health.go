package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newHealthCmd is the container image's HEALTHCHECK: the image has no
// shell and no curl, so the binary asks its own /readyz.
func newHealthCmd() *cobra.Command {
	var listen, url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 when the local server's /readyz answers 200 (the container image's HEALTHCHECK)",
		Long: `health asks a PanelX server on this machine whether it is ready: GET /readyz
on the address the server listens on (--listen, PANELX_LISTEN, the same
setting the server reads; an unspecified host means 127.0.0.1). It exits 0 on
200 and 1 otherwise, printing why. --url asks another address, e.g. the edge's
admin listener: panelx health --url http://127.0.0.1:9180/readyz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			target := url
			if target == "" {
				var err error
				if target, err = readyzURL(listen); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return checkReady(ctx, target)
		},
	}
	env := newEnvFlags(cmd.Flags())
	env.String(&listen, "listen", "PANELX_LISTEN", ":8080", "the address the server listens on")
	env.String(&url, "url", "PANELX_HEALTH_URL", "", "the URL to ask instead (overrides --listen)")
	env.Duration(&timeout, "timeout", "PANELX_HEALTH_TIMEOUT", 3*time.Second, "how long to wait for the answer")
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error { return env.Err() }
	return cmd
}

// readyzURL turns a listen address into the URL of its /readyz.
func readyzURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" {
		return "", fmt.Errorf("--listen %q: want host:port or :port", listen)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

func checkReady(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("health: %s did not answer in time", url)
		}
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}
