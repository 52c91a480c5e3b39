-- The installation's identity (see migrations/postgres/00002). The id is
-- made random here, since SQLite has no UUID function.

-- +goose Up
CREATE TABLE installation (
    id         TEXT    PRIMARY KEY NOT NULL,
    singleton  INTEGER NOT NULL DEFAULT 1 UNIQUE CHECK (singleton = 1),
    created_at INTEGER NOT NULL
) STRICT;
INSERT INTO installation (id, created_at)
VALUES (lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' ||
              substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
        CAST(unixepoch('subsec') * 1000000 AS INTEGER));

-- +goose Down
DROP TABLE installation;
