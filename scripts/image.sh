#!/usr/bin/env bash
# Builds the PanelX container image from a binary compiled on this machine
# (`make image` calls it after `make build`), so no base image is pulled:
#
#     bash scripts/image.sh BINARY TAG [VERSION REVISION]
#
# lays out the image's files in a temporary directory and runs
# `docker build -f deploy/image/Dockerfile` on it. With --layout DIR it only
# lays the files out in DIR (the root Dockerfile's first stage does that):
#
#     bash scripts/image.sh --layout DIR BINARY
#
# The files: rootfs/usr/local/bin/panelx (static), rootfs/etc/ssl/certs/
# ca-certificates.crt (from this machine: Debian's ca-certificates),
# rootfs/etc/passwd and group (root, and panelx as 65532), and an empty
# data/ for /var/lib/panelx.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'image: %s\n' "$*" >&2; exit 1; }

layout() { # dir binary
  local dir=$1 bin=$2 certs=/etc/ssl/certs/ca-certificates.crt
  [ -x "$bin" ] || die "$bin is not an executable: run make build first"
  if ldd "$bin" >/dev/null 2>&1; then
    die "$bin is dynamically linked; the image has no libc: build it with CGO_ENABLED=0 (make build)"
  fi
  [ -s "$certs" ] || die "$certs is missing: apt-get install -y ca-certificates"
  mkdir -p "$dir/rootfs/usr/local/bin" "$dir/rootfs/etc/ssl/certs" "$dir/data"
  cp "$bin" "$dir/rootfs/usr/local/bin/panelx"
  chmod 0755 "$dir/rootfs/usr/local/bin/panelx"
  cp "$certs" "$dir/rootfs/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\npanelx:x:65532:65532:PanelX:/var/lib/panelx:/sbin/nologin\n' >"$dir/rootfs/etc/passwd"
  printf 'root:x:0:\npanelx:x:65532:\n' >"$dir/rootfs/etc/group"
}

if [ "${1:-}" = "--layout" ]; then
  [ $# -eq 3 ] || die "usage: $0 --layout DIR BINARY"
  layout "$2" "$3"
  exit 0
fi
[ $# -ge 2 ] && [ $# -le 4 ] || die "usage: $0 BINARY TAG [VERSION REVISION]"
bin=$1 tag=$2 version=${3:-dev} revision=${4:-unknown}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
layout "$ctx" "$bin"
cp deploy/image/Dockerfile "$ctx/Dockerfile"
# The classic builder is enough (scratch and COPY); the output stays short.
DOCKER_BUILDKIT=0 docker build -q -t "$tag" \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$ctx" >&2
docker image inspect -f '{{.Id}} {{.Size}}' "$tag" | awk -v tag="$tag" '{printf "image: %s %s, %.1f MB\n", tag, $1, $2/1e6}' >&2
