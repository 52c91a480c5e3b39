package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// leaderLockKey is the advisory lock the acting controller holds.
const leaderLockKey = 0x70616e656c78_02

// Leader election timings: how often a stand-by tries the lock, and how
// often the leader checks that its lock connection is alive.
var (
	CampaignInterval = time.Second
	LeaderCheck      = 2 * time.Second
)

// Campaign implements store.Elector with a session advisory lock held on a
// dedicated connection: when the leader dies, PostgreSQL ends its session
// and releases the lock, and a stand-by takes it within CampaignInterval.
func (s *Store) Campaign(ctx context.Context) (context.Context, func(), error) {
	cf := s.connCf.Copy()
	cf.RuntimeParams["application_name"] = "panelx-leader"
	for {
		conn, err := pgx.ConnectConfig(ctx, cf)
		if err == nil {
			var got bool
			err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(leaderLockKey)).Scan(&got)
			if err == nil && got {
				return s.lead(ctx, conn)
			}
			conn.Close(context.WithoutCancel(ctx))
		}
		if err != nil {
			s.log.Warn("leader election: cannot reach the database", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("leader election: %w", ctx.Err())
		case <-time.After(CampaignInterval):
		}
	}
}

func (s *Store) lead(ctx context.Context, conn *pgx.Conn) (context.Context, func(), error) {
	leading, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer conn.Close(context.Background()) // ends the session: the lock goes with it
		t := time.NewTicker(LeaderCheck)
		defer t.Stop()
		for {
			select {
			case <-leading.Done():
				return
			case <-t.C:
				pctx, pcancel := context.WithTimeout(leading, LeaderCheck)
				err := conn.Ping(pctx)
				pcancel()
				if err != nil && leading.Err() == nil {
					s.log.Error("lost the leader lock connection; standing down", zap.Error(err))
					cancel()
					return
				}
			}
		}
	}()
	release := func() {
		cancel()
		<-done
	}
	return leading, release, nil
}
