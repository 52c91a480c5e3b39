package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// Channel is the NOTIFY channel the triggers send on.
const Channel = "panelx_changes"

// Reconnect backoff of the change feed, and how often an idle LISTEN
// connection is checked (a dead TCP peer would otherwise go unnoticed).
const (
	minBackoff    = 100 * time.Millisecond
	maxBackoff    = 5 * time.Second
	idleCheck     = 15 * time.Second
	healthTimeout = 5 * time.Second
)

// Watch delivers every change of the resource tables, from any connection
// (raw SQL included), in commit order. One dedicated LISTEN connection feeds
// every watcher of this Store; it starts with the first Watch.
func (s *Store) Watch(ctx context.Context) (<-chan store.Change, error) {
	s.listenOnce.Do(func() {
		lctx, cancel := context.WithCancel(context.Background())
		s.stop = cancel
		go func() {
			defer close(s.done)
			s.listenLoop(lctx)
		}()
	})
	return s.hub.Subscribe(ctx), nil
}

func (s *Store) listenLoop(ctx context.Context) {
	backoff := minBackoff
	for ctx.Err() == nil {
		started := time.Now()
		err := s.listen(ctx)
		s.hub.Disconnected()
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			backoff = minBackoff // it was healthy for a while: retry quickly
		}
		s.log.Warn("change feed disconnected; reconnecting", zap.Error(err), zap.Duration("backoff", backoff))
		// Jitter keeps many servers from reconnecting in lockstep.
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// listen runs one LISTEN connection until it fails. The order matters:
// LISTEN first, then tell watchers to resync (notifications sent while we
// were away are lost), then deliver.
func (s *Store) listen(ctx context.Context) error {
	connectCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(connectCtx, s.connCf)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.hub.Connected()
	s.log.Debug("change feed connected")
	for {
		waitCtx, cancel := context.WithTimeout(ctx, idleCheck)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed() {
				// Idle: make sure the connection is still alive.
				pingCtx, cancel := context.WithTimeout(ctx, healthTimeout)
				err := conn.Ping(pingCtx)
				cancel()
				if err != nil {
					return fmt.Errorf("health check: %w", err)
				}
				continue
			}
			return fmt.Errorf("wait for notification: %w", err)
		}
		c, err := parsePayload(n.Payload)
		if err != nil {
			s.log.Error("bad change notification; resyncing watchers", zap.String("payload", n.Payload), zap.Error(err))
			s.hub.Connected() // a resync is the safe answer to what we cannot read
			continue
		}
		s.hub.Publish(c)
	}
}

type payload struct {
	Op       string `json:"op"`
	Kind     string `json:"kind"`
	Project  string `json:"project"`
	Name     string `json:"name"`
	UID      string `json:"uid"`
	RV       int64  `json:"rv"`
	Spec     bool   `json:"spec"`
	Status   bool   `json:"status"`
	Deleting bool   `json:"deleting"`
	TS       int64  `json:"ts"` // µs since the epoch, when the trigger ran
}

func parsePayload(s string) (store.Change, error) {
	var p payload
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return store.Change{}, err
	}
	c := store.Change{
		Type:            store.ChangeUpsert,
		Kind:            api.Kind(p.Kind),
		Key:             api.Key{Project: p.Project, Name: p.Name},
		UID:             p.UID,
		ResourceVersion: p.RV,
		SpecChanged:     p.Spec,
		StatusChanged:   p.Status,
		Deleting:        p.Deleting,
		CommittedAt:     time.UnixMicro(p.TS),
	}
	if p.Op == "delete" {
		c.Type = store.ChangeRemoved
	}
	switch c.Kind {
	case api.KindProject, api.KindService, api.KindVolume, api.KindSecret, store.KindMember, store.KindAPIToken:
	default:
		return c, fmt.Errorf("unknown kind %q", p.Kind)
	}
	if c.Key.Name == "" {
		return c, errors.New("no name")
	}
	return c, nil
}
