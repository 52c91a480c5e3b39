-- The edge (see migrations/postgres/00005): hostname claims, edge reports,
-- certificate status and uploaded certificates. The claims are kept by the
-- store's Go code (store/sqlite/edge.go) in the service's write
-- transaction, as the other rules of this backend are. An edge never opens
-- this database, so certmagic's storage is the edge's own directory.

-- +goose Up
CREATE TABLE hostnames (
    host    TEXT NOT NULL PRIMARY KEY CHECK (host <> '' AND length(host) <= 253),
    project TEXT NOT NULL,
    service TEXT NOT NULL,
    FOREIGN KEY (project, service) REFERENCES services (project, name) ON DELETE CASCADE
) STRICT;
CREATE INDEX hostnames_service ON hostnames (project, service);

CREATE TABLE edges (
    id      TEXT    PRIMARY KEY NOT NULL,
    name    TEXT    NOT NULL,
    report  TEXT    NOT NULL DEFAULT '{}',
    seen_at INTEGER NOT NULL
) STRICT;

CREATE TABLE certificate_status (
    host       TEXT    PRIMARY KEY NOT NULL CHECK (host <> '' AND length(host) <= 253),
    status     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE tls_certificates (
    host        TEXT    PRIMARY KEY NOT NULL CHECK (host <> '' AND length(host) <= 253),
    project     TEXT    NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    certificate TEXT    NOT NULL,
    private_key TEXT    NOT NULL,
    not_after   INTEGER NOT NULL,
    issuer      TEXT    NOT NULL DEFAULT '',
    dns_names   TEXT    NOT NULL DEFAULT '[]',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX tls_certificates_project ON tls_certificates (project);

-- +goose Down
DROP TABLE tls_certificates;
DROP TABLE certificate_status;
DROP TABLE edges;
DROP TABLE hostnames;
