#!/usr/bin/env bash
# The main job: build examples/multistage end to end with strata, on a
# busybox base made from Debian's busybox-static (no registry needed), and
# run the image it made.
#
#   bash examples/build.sh            # store in target/example-store
#   STRATA_ROOT=DIR bash examples/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v busybox >/dev/null || ! busybox --list >/dev/null 2>&1; then
  echo "==> installing busybox-static (the example's base image is made from it)"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq busybox-static >/dev/null
fi

echo "==> cargo build --release"
cargo build --release --quiet
strata=target/release/strata
export STRATA_ROOT="${STRATA_ROOT:-$PWD/target/example-store}"

if ! "$strata" inspect busybox:latest >/dev/null 2>&1; then
  echo "==> making busybox:latest from $(command -v busybox)"
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  mkdir -p "$rootfs"/{bin,etc,tmp,root,proc,sys,dev}
  cp "$(command -v busybox)" "$rootfs/bin/busybox"
  for applet in $("$rootfs/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
  chmod 1777 "$rootfs/tmp"
  SOURCE_DATE_EPOCH=0 "$strata" import "$rootfs" busybox:latest >/dev/null
fi

echo "==> strata build -t greet:latest examples/multistage"
"$strata" build -t greet:latest examples/multistage
echo "==> strata run greet:latest"
"$strata" run greet:latest
