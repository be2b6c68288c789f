#!/usr/bin/env bash
# A RUN that "downloads dependencies" (writes 3,000 files after a 1 s wait,
# standing for the network) into a cache mount when it is empty, rebuilt
# with a new build argument each time so the step runs: with a warm cache
# mount, and the same RUN without the mount; strata and buildah bud in the
# same run. Medians of RUNS runs (default 3). As root.
#   bash bench/cache-mount.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
work=/var/tmp/strata-bench-cachemount-$$
rm -rf "$work"; mkdir -p "$work"
cleanup() {
  command buildah --root "$work/buildah" --runroot "$work/buildah-run" --storage-driver overlay rm --all >/dev/null 2>&1 || true
  umount -R "$work/buildah/overlay" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --release --quiet
strata="$PWD/target/release/strata"
export STRATA_ROOT="$work/strata"
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp,root,proc,sys,dev}
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for applet in $("$rootfs/bin/busybox" --list); do [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"; printf 'root:x:0:\n' > "$rootfs/etc/group"
SOURCE_DATE_EPOCH=0 "$strata" import "$rootfs" busybox:latest >/dev/null
"$strata" save --format oci -o "$work/layout" busybox:latest
buildah() { command buildah --root "$work/buildah" --runroot "$work/buildah-run" --storage-driver overlay "$@"; }
base_id=$(buildah pull --quiet "oci:$work/layout:latest")
buildah tag "$base_id" localhost/busybox:latest

fetch='if [ ! -f /deps/done ]; then sleep 1; i=0; while [ $i -lt 3000 ]; do echo $i > /deps/f$i; i=$((i+1)); done; touch /deps/done; fi; ls /deps | wc -l > /count'
mkdir -p "$work/warm" "$work/cold"
printf 'ARG BASE=busybox:latest\nFROM ${BASE}\nARG BUST=0\nRUN --mount=type=cache,target=/deps echo $BUST > /bust && %s\n' "$fetch" > "$work/warm/Dockerfile"
printf 'ARG BASE=busybox:latest\nFROM ${BASE}\nARG BUST=0\nRUN mkdir -p /deps && echo $BUST > /bust && %s && rm -rf /deps\n' "$fetch" > "$work/cold/Dockerfile"

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
measure() { # command context: median seconds over $runs runs, each with a new BUST
  local build=$1 context=$2 times=() start end i
  for i in $(seq "$runs"); do
    start=$(now); "$build" --build-arg "BUST=$RANDOM$i" "$context" >"$work/last.log" 2>&1 || { echo "failed: $build $context" >&2; tail -5 "$work/last.log" >&2; exit 1; }; end=$(now)
    times+=("$(echo "$end - $start" | bc)")
  done
  median "${times[@]}"
}
strata_build() { "$strata" build -q --network none "$@"; }
buildah_build() { buildah bud --runtime runc --isolation oci --network none --layers --pull=never --build-arg BASE=localhost/busybox:latest "$@"; }
# Warm the caches once.
strata_build "$work/warm" >/dev/null 2>&1; buildah_build "$work/warm" >/dev/null 2>&1
s_warm=$(measure strata_build "$work/warm")
s_cold=$(measure strata_build "$work/cold")
b_warm=$(measure buildah_build "$work/warm")
b_cold=$(measure buildah_build "$work/cold")
printf '%-30s strata %7.3f s   buildah %7.3f s   buildah/strata %5.1fx\n' "warm cache mount" "$s_warm" "$b_warm" "$(echo "$b_warm / $s_warm" | bc -l)"
printf '%-30s strata %7.3f s   buildah %7.3f s   buildah/strata %5.1fx\n' "same RUN without the mount" "$s_cold" "$b_cold" "$(echo "$b_cold / $s_cold" | bc -l)"
printf 'the warm mount saves strata %.1fx\n' "$(echo "$s_cold / $s_warm" | bc -l)"
