#!/usr/bin/env bash
# Build examples/debian: make a Debian base with debootstrap (once; 25-45 s,
# about 175 MiB), import it, build the image (apt-get inside RUN reaches the
# mirror over the host's network) and run it.
#
#   bash examples/debian/build.sh          # as root (debootstrap needs it)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
cargo build --release --quiet
strata=target/release/strata
export STRATA_ROOT="${STRATA_ROOT:-$PWD/target/example-store}"
if ! "$strata" inspect debian:bookworm-minbase >/dev/null 2>&1; then
  mirror=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  echo "==> debootstrap --variant=minbase bookworm ($mirror)"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
  "$strata" import --compression zstd "$rootfs" debian:bookworm-minbase >/dev/null
fi
echo "==> strata build -t debian-report examples/debian"
"$strata" build -t debian-report examples/debian
echo "==> strata run debian-report"
"$strata" run debian-report
