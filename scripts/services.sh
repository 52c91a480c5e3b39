#!/usr/bin/env bash
# Makes sure the services PanelX and its tests need are running on this
# machine: a Docker Engine and a PostgreSQL server on 127.0.0.1, and that
# Prometheus is installed (the metrics tests start their own).
#
# Idempotent: what already runs is left alone. On a fresh Debian 12 machine
# (as root, or with sudo) it installs docker.io and postgresql from Debian's
# packages and starts them. It prints shell `export` lines for the database
# URLs on stdout (everything else goes to stderr), so use it as
#
#     eval "$(bash scripts/services.sh)"
#
# With --docker-only it brings up only the Docker Engine (what `panelx
# server` needs with its embedded database).
#
# Variables: PANELX_PG_PASSWORD (default "panelx") for the "panelx" role it
# creates; PANELX_TEST_DATABASE_URL, when set and reachable, skips PostgreSQL.
set -euo pipefail

docker_only=""
if [ "${1:-}" = "--docker-only" ]; then
  docker_only=1
fi

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
fi

apt_updated=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "$* is missing and this is not a Debian system: install it yourself (see README)"
  if [ -z "$apt_updated" ]; then
    log "apt-get update"
    $SUDO apt-get update -qq >&2
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >&2
}

wait_for() { # seconds, description, command...
  local secs=$1 what=$2
  shift 2
  for _ in $(seq 1 "$secs"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "$what did not come up within ${secs}s"
}

ensure_docker() {
  if docker info >/dev/null 2>&1; then
    log "Docker Engine is up"
    return
  fi
  # The docker CLI alone may be present; the engine is dockerd.
  command -v dockerd >/dev/null 2>&1 || apt_install docker.io
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    log "starting dockerd (log: /var/log/panelx-dockerd.log)"
    $SUDO sh -c 'nohup dockerd >/var/log/panelx-dockerd.log 2>&1 &'
  fi
  wait_for 60 "Docker Engine" docker info
  log "Docker Engine is up: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null)"
}

PG_PASSWORD=${PANELX_PG_PASSWORD:-panelx}
PG_URL_BASE="postgres://panelx:${PG_PASSWORD}@127.0.0.1:5432"

pg_as_postgres() { # run psql as the postgres superuser over the local socket
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qAt "$@"
  else
    $SUDO -u postgres psql -v ON_ERROR_STOP=1 -qAt "$@"
  fi
}

ensure_postgres() {
  if [ -n "${PANELX_TEST_DATABASE_URL:-}" ] && psql "$PANELX_TEST_DATABASE_URL" -qAtc 'select 1' >/dev/null 2>&1; then
    log "PostgreSQL at PANELX_TEST_DATABASE_URL is up"
    echo "export PANELX_TEST_DATABASE_URL='${PANELX_TEST_DATABASE_URL}'"
    return
  fi
  command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql
  local version
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  [ -n "$version" ] || die "no PostgreSQL server under /usr/lib/postgresql"
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$version main"; then
    log "creating PostgreSQL $version cluster 'main'"
    $SUDO pg_createcluster "$version" main >&2
  fi
  if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
    log "starting PostgreSQL $version"
    $SUDO pg_ctlcluster "$version" main start >&2
  fi
  wait_for 60 "PostgreSQL" pg_isready -q -h 127.0.0.1 -p 5432
  # A login role that may create test databases, and the server's database.
  pg_as_postgres <<SQL >&2
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'panelx') THEN
    CREATE ROLE panelx LOGIN CREATEDB PASSWORD '${PG_PASSWORD}';
  ELSE
    ALTER ROLE panelx LOGIN CREATEDB PASSWORD '${PG_PASSWORD}';
  END IF;
END
\$\$;
-- Tests drop their databases WITH (FORCE), which must end every session
-- on them, autovacuum's included.
SET client_min_messages TO warning;
GRANT pg_signal_backend TO panelx;
SQL
  if [ "$(pg_as_postgres -c "SELECT 1 FROM pg_database WHERE datname = 'panelx'")" != "1" ]; then
    pg_as_postgres -c "CREATE DATABASE panelx OWNER panelx" >&2
  fi
  log "PostgreSQL $version is up on 127.0.0.1:5432 (role and database 'panelx')"
  echo "export PANELX_TEST_DATABASE_URL='${PG_URL_BASE}/postgres?sslmode=disable'"
  echo "export PANELX_DEV_DATABASE_URL='${PG_URL_BASE}/panelx?sslmode=disable'"
}

# The metrics tests run a real Prometheus of their own; it only needs to be
# installed, not started.
ensure_prometheus() {
  if command -v prometheus >/dev/null 2>&1; then
    log "Prometheus is installed"
    return
  fi
  # Only the server and promtool: the tests start their own instances on
  # loopback ports (the package's own service is not needed).
  apt_install --no-install-recommends prometheus
}

# The tests' private Docker Engine (internal/testenv/dockerd) sets up its
# bridge with ip(8). The container image test (cmd/panelx/image_test.go)
# puts this machine's CA certificates in the image and starts
# deploy/docker-compose.yml with Compose (Debian's docker-compose, unless
# the v2 plugin is there).
ensure_test_tools() {
  command -v ip >/dev/null 2>&1 || apt_install iproute2
  [ -s /etc/ssl/certs/ca-certificates.crt ] || apt_install ca-certificates
  docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose
  # The dashboard's browser test (cmd/panelx/dashboard_test.go) drives
  # Debian's Chromium, headless.
  command -v chromium >/dev/null 2>&1 || apt_install chromium
  # The build tests serve git repositories with git http-backend.
  [ -x /usr/lib/git-core/git-http-backend ] || apt_install git
}

ensure_docker
if [ -z "$docker_only" ]; then
  ensure_postgres
  ensure_prometheus
  ensure_test_tools
fi
