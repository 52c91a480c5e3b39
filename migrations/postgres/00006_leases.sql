-- Leadership as a lease with an epoch (a fencing token), replacing the
-- session advisory lock: a leader that cannot renew — paused, partitioned,
-- its session gone — stops acting before its lease can have expired, and a
-- stand-by takes over once it has (see store/postgres/leader.go).

-- +goose Up
CREATE TABLE panelx.leases (
    name       text        PRIMARY KEY,
    holder     text        NOT NULL,
    -- epoch rises with every new term; never reset (a release expires the
    -- lease, it does not delete it).
    epoch      bigint      NOT NULL,
    expires_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE panelx.leases;
