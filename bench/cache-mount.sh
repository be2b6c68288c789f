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
source bench/common.sh
with_buildah

fetch='if [ ! -f /deps/done ]; then sleep 1; i=0; while [ $i -lt 3000 ]; do echo $i > /deps/f$i; i=$((i+1)); done; touch /deps/done; fi; ls /deps | wc -l > /count'
mkdir -p "$work/warm" "$work/cold"
printf 'ARG BASE=busybox:latest\nFROM ${BASE}\nARG BUST=0\nRUN --mount=type=cache,target=/deps echo $BUST > /bust && %s\n' "$fetch" > "$work/warm/Dockerfile"
printf 'ARG BASE=busybox:latest\nFROM ${BASE}\nARG BUST=0\nRUN mkdir -p /deps && echo $BUST > /bust && %s && rm -rf /deps\n' "$fetch" > "$work/cold/Dockerfile"

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
