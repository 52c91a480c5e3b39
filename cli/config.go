// Package cli is the panelx command line: a client of the API (like
// kubectl) with login, use, apply, diff, get, describe, events, edit,
// create, delete, scale, stop, start, restart, top, rollout, logs, exec, cp
// and version. cmd/panelx
// wires its commands into the binary.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/panelx/panelx/client"
)

// ExitError ends the process with Code after printing Err (when set).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Config is what `panelx login` saves.
type Config struct {
	Server string `json:"server"`
	Token  string `json:"token"`
	// Project is the default of -p (panelx use PROJECT).
	Project string `json:"project,omitempty"`
}

// ConfigPath is where the config lives: the user config dir's
// panelx/config.json, or $PANELX_CONFIG.
func ConfigPath() (string, error) {
	if p := os.Getenv("PANELX_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory: %w", err)
	}
	return filepath.Join(dir, "panelx", "config.json"), nil
}

// LoadConfig reads the saved config; a missing file is an empty config.
func LoadConfig() (Config, error) {
	var c Config
	path, err := ConfigPath()
	if err != nil {
		return c, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("read %s: %w", path, err)
	}
	return c, nil
}

// SaveConfig writes the config readable by its owner only: it holds a token.
func SaveConfig(c Config) (string, error) {
	path, err := ConfigPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // WriteFile keeps an existing file's mode
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// connection holds the flags every client command shares.
type connection struct {
	server string
	token  string
}

func (c *connection) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&c.server, "server", "", "PanelX server URL, e.g. http://localhost:8080 [$PANELX_SERVER] (default: saved by panelx login)")
	cmd.PersistentFlags().StringVar(&c.token, "token", "", "API token or Supabase JWT [$PANELX_TOKEN] (default: saved by panelx login)")
}

// client builds an API client from flags, then the environment, then the
// saved config.
func (c *connection) client() (*client.Client, error) {
	cfg, err := LoadConfig()
	if err != nil {
		return nil, err
	}
	server := first(c.server, os.Getenv("PANELX_SERVER"), cfg.Server)
	token := first(c.token, os.Getenv("PANELX_TOKEN"), cfg.Token)
	if server == "" {
		return nil, errors.New("no server: run `panelx login --server URL`, or set PANELX_SERVER or --server")
	}
	return client.New(server, token)
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
