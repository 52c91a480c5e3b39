#!/usr/bin/env bash
# `make run`: the server and, beside it, the edge — two processes, as in
# production (the edge keeps serving while the server restarts). Ctrl-C or
# SIGTERM stops both. PANELX_RUN_EDGE=false runs the server alone; the
# edge's ports are PANELX_EDGE_HTTP / PANELX_EDGE_HTTPS (default :80 / :443).
set -euo pipefail
bin=${1:-bin/panelx}
export PANELX_LISTEN=${PANELX_LISTEN:-:8080}

server_pid="" edge_pid=""
stop() {
  trap - INT TERM EXIT
  [ -n "$edge_pid" ] && kill -TERM "$edge_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

"$bin" server &
server_pid=$!

if [ "${PANELX_RUN_EDGE:-true}" = "true" ]; then
  # The server writes the edge's token on its first start.
  data_dir=${PANELX_DATA_DIR:-$([ "$(id -u)" -eq 0 ] && echo /var/lib/panelx || echo "${XDG_DATA_HOME:-$HOME/.local/share}/panelx")}
  for _ in $(seq 1 100); do
    [ -s "$data_dir/edge-token" ] && break
    kill -0 "$server_pid" 2>/dev/null || exit 1
    sleep 0.2
  done
  # The edge follows this server (on loopback, whatever PANELX_LISTEN says).
  export PANELX_EDGE_SERVER=${PANELX_EDGE_SERVER:-http://127.0.0.1:${PANELX_LISTEN##*:}}
  "$bin" edge --data-dir "$data_dir" &
  edge_pid=$!
fi

# Either process ending ends both.
wait -n
