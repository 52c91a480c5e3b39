package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/panelx/panelx/api"
)

func volumePath(project, volume, what string) string {
	return "/api/v1/projects/" + url.PathEscape(project) + "/volumes/" + url.PathEscape(volume) + "/" + what
}

// Backups lists a volume's backup, restore and move runs, newest first.
func (c *Client) Backups(ctx context.Context, project, volume string, op api.BackupOp, limit int) ([]api.BackupRun, error) {
	q := url.Values{}
	if op != "" {
		q.Set("op", string(op))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.BackupRunList
	if err := c.do(ctx, request{method: http.MethodGet, path: volumePath(project, volume, "backups"), query: q}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Backup returns one run of a volume.
func (c *Client) Backup(ctx context.Context, project, volume, id string) (*api.BackupRun, error) {
	var run api.BackupRun
	if err := c.do(ctx, request{method: http.MethodGet, path: volumePath(project, volume, "backups/"+url.PathEscape(id))}, &run); err != nil {
		return nil, err
	}
	return &run, nil
}

// CreateBackup asks for a backup of the volume now; the answer is the
// Pending run.
func (c *Client) CreateBackup(ctx context.Context, project, volume string) (*api.BackupRun, error) {
	var run api.BackupRun
	r := request{method: http.MethodPost, path: volumePath(project, volume, "backups"), body: bytes.NewReader([]byte("{}")), contentType: "application/json"}
	if err := c.do(ctx, r, &run); err != nil {
		return nil, err
	}
	return &run, nil
}

// Restore asks for a restore; the answer is the Pending run.
func (c *Client) Restore(ctx context.Context, project, volume string, req api.RestoreRequest) (*api.BackupRun, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var run api.BackupRun
	r := request{method: http.MethodPost, path: volumePath(project, volume, "restore"), body: bytes.NewReader(body), contentType: "application/json"}
	if err := c.do(ctx, r, &run); err != nil {
		return nil, err
	}
	return &run, nil
}

// MoveVolume asks for the volume's data to be moved to another node of the
// swarm; the answer is the Pending run (op move).
func (c *Client) MoveVolume(ctx context.Context, project, volume, node string) (*api.BackupRun, error) {
	body, err := json.Marshal(api.MoveRequest{Node: node})
	if err != nil {
		return nil, err
	}
	var run api.BackupRun
	r := request{method: http.MethodPost, path: volumePath(project, volume, "move"), body: bytes.NewReader(body), contentType: "application/json"}
	if err := c.do(ctx, r, &run); err != nil {
		return nil, err
	}
	return &run, nil
}
