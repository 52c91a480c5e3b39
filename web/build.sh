#!/usr/bin/env bash
# Builds the dashboard's npm bundles into web/ui/lib/ (not in git), one per
# entry in web/bundles/ (supabase-js, xterm.js), from the versions
# package-lock.json pins, with esbuild (also pinned there).
# `make build`, `make run` and `make test` run it first; it does nothing when
# its inputs have not changed since the last build. Node.js and npm are needed
# here only: the bundles are embedded in the binary, which runs without them.
# On Debian, as root (or with sudo), a missing npm is installed with apt.
set -euo pipefail
cd "$(dirname "$0")"

log() { echo "web/build.sh: $*" >&2; }

# One build at a time (make test and make build may run side by side).
exec 9>.build.lock
flock 9

# Each file in bundles/ is the entry of the bundle of the same name in ui/lib/.
inputs=$(cat package.json package-lock.json bundles/* build.sh | sha256sum | cut -d' ' -f1)
built() {
  [ "$(cat ui/lib/.inputs 2>/dev/null)" = "$inputs" ] || return 1
  for f in bundles/*; do [ -s "ui/lib/${f#bundles/}" ] || return 1; done
}
if built; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { log "npm is missing: install Node.js and npm (Debian: apt-get install npm)"; exit 1; }
    SUDO="sudo"
  fi
  command -v apt-get >/dev/null 2>&1 || { log "npm is missing and this is not a Debian system: install Node.js and npm"; exit 1; }
  log "installing npm (apt-get install npm)"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >&2
fi

# npm ci installs exactly the lock file's packages (with their integrity
# hashes) and runs none of their install scripts.
lock=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.panelx-lock 2>/dev/null)" != "$lock" ]; then
  log "npm ci"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
  echo "$lock" >node_modules/.panelx-lock
fi

rm -rf ui/lib
npm run --silent build >&2
echo "$inputs" >ui/lib/.inputs
log "built $(cd ui/lib && for f in *; do printf '%s (%d bytes) ' "$f" "$(wc -c <"$f")"; done)"
