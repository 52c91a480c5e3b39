package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/panelx/panelx/store"
)

// Leadership is a lease row (panelx.leases) with an epoch.
//
// Why the overlap of two leaders is zero: the holder sends each renewal at
// t0 (its monotonic clock) and, once PostgreSQL answers, treats the lease
// as valid until t0 + LeaseDuration - LeaseMargin. PostgreSQL set
// expires_at = now() + LeaseDuration when it ran the statement, which is
// after t0; a stand-by acquires only once now() > expires_at. So the
// holder stops acting at least LeaseMargin before anyone else can start,
// provided the database's clock does not run faster than the holder's by
// more than LeaseMargin per LeaseDuration (20%) — or step forward by more
// than LeaseMargin — during a term. A paused holder (SIGSTOP) resumes
// with its monotonic clock past its deadline and acts no more.
var (
	LeaseDuration    = 10 * time.Second
	LeaseMargin      = 2 * time.Second
	RenewInterval    = 2 * time.Second
	CampaignInterval = time.Second
)

const leaseName = "controller"

// Campaign implements store.Elector: it takes the lease when it is free
// or expired (with a new epoch), retrying every CampaignInterval.
func (s *Store) Campaign(ctx context.Context) (store.Lease, error) {
	for {
		t0 := time.Now()
		var epoch int64
		err := s.pool.QueryRow(ctx, `INSERT INTO panelx.leases (name, holder, epoch, expires_at)
			VALUES ($1, $2, 1, now() + $3::bigint * interval '1 millisecond')
			ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, epoch = panelx.leases.epoch + 1,
				expires_at = EXCLUDED.expires_at
			WHERE panelx.leases.expires_at < now()
			RETURNING epoch`, leaseName, s.holder, LeaseDuration.Milliseconds()).Scan(&epoch)
		switch {
		case err == nil:
			return s.hold(ctx, epoch, t0), nil
		case errors.Is(err, pgx.ErrNoRows):
			// Held by someone else.
		case ctx.Err() != nil:
		default:
			s.log.Warn("leader election: cannot reach the database", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("leader election: %w", ctx.Err())
		case <-time.After(CampaignInterval):
		}
	}
}

// lease is one held term.
type lease struct {
	s       *Store
	epoch   int64
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	validTo time.Time // carries the monotonic reading
}

func (s *Store) hold(ctx context.Context, epoch int64, t0 time.Time) *lease {
	l := &lease{s: s, epoch: epoch, done: make(chan struct{}), validTo: t0.Add(LeaseDuration - LeaseMargin)}
	l.ctx, l.cancel = context.WithCancel(ctx)
	go l.renew()
	s.log.Info("holding the controller lease", zap.Int64("epoch", epoch))
	return l
}

func (l *lease) Context() context.Context { return l.ctx }
func (l *lease) Epoch() int64             { return l.epoch }

func (l *lease) Deadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.validTo
}

func (l *lease) Valid() bool {
	return l.ctx.Err() == nil && time.Now().Before(l.Deadline())
}

// renew extends the lease every RenewInterval and ends the term when it
// is lost or its deadline passes without a renewal.
func (l *lease) renew() {
	defer close(l.done)
	defer l.cancel()
	tick := time.NewTicker(RenewInterval)
	defer tick.Stop()
	for {
		deadline := time.NewTimer(time.Until(l.Deadline()))
		select {
		case <-l.ctx.Done():
			deadline.Stop()
			return
		case <-deadline.C:
			l.s.log.Error("controller lease not renewed in time; standing down", zap.Int64("epoch", l.epoch))
			return
		case <-tick.C:
			deadline.Stop()
			t0 := time.Now()
			rctx, cancel := context.WithTimeout(l.ctx, RenewInterval)
			tag, err := l.s.pool.Exec(rctx, `UPDATE panelx.leases SET expires_at = now() + $4::bigint * interval '1 millisecond'
				WHERE name = $1 AND holder = $2 AND epoch = $3`, leaseName, l.s.holder, l.epoch, LeaseDuration.Milliseconds())
			cancel()
			switch {
			case err == nil && tag.RowsAffected() == 1:
				l.mu.Lock()
				l.validTo = t0.Add(LeaseDuration - LeaseMargin)
				l.mu.Unlock()
			case err == nil:
				l.s.log.Error("the controller lease was taken over; standing down", zap.Int64("epoch", l.epoch))
				return
			case l.ctx.Err() == nil:
				l.s.log.Warn("renew the controller lease", zap.Int64("epoch", l.epoch), zap.Error(err),
					zap.Duration("validFor", time.Until(l.Deadline())))
			}
		}
	}
}

// Release ends the term and expires the lease at once, so a stand-by
// takes over without waiting (the epoch stays: the next term counts on).
func (l *lease) Release() {
	l.once.Do(func() {
		l.cancel()
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := l.s.pool.Exec(ctx, `UPDATE panelx.leases SET expires_at = '-infinity'
			WHERE name = $1 AND holder = $2 AND epoch = $3`, leaseName, l.s.holder, l.epoch)
		if err != nil {
			l.s.log.Warn("release the controller lease (it expires by itself)", zap.Error(err))
		}
	})
}

// newHolder names this process in the lease table.
func newHolder() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
