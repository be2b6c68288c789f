#!/usr/bin/env bash
# Named contexts and content keys, strata beside buildah bud --layers in
# the same run, on the same busybox base:
#
#   1. `COPY --from=assets / /assets` of a `--build-context assets=DIR`
#      of 20,000 small files: cold (--no-cache), then a no-op rebuild;
#   2. a stage that copies a changing file and then makes the same
#      `/out`, and a second stage that copies `/out` from it and runs
#      `sleep 2`: the rebuild after the file changed. strata keys the copy
#      by what it reads and skips the sleep (as BuildKit does); buildah
#      keys it by the stage and runs it again.
#
# Medians of RUNS runs (default 5). As root.
#   bash bench/named-context.sh
# Each timed command starts after a `sync`, so that neither pays for
# the other's dirty pages.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
source bench/common.sh
with_buildah

time_cmd() { local var=$1; shift; local start end; sync; start=$(now); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; "$@"; exit 1; }; end=$(now); eval "$var+=($(echo "$end - $start" | bc))"; }
strata_build() { "$strata" build --network none -q "$@"; }
buildah_build() { buildah bud --runtime runc --isolation oci --network none --layers --force-rm --pull=never --jobs 2 --build-arg BASE=localhost/busybox:latest "$@"; }
report() { printf '%-40s strata %8.3f s   buildah %8.3f s   buildah/strata %6.1fx\n' "$1" "$2" "$3" "$(echo "$3 / $2" | bc -l)"; }

# 1. a named directory
ctx1="$work/named"; assets="$work/assets"; mkdir -p "$ctx1" "$assets"
for d in $(seq -w 0 199); do
  mkdir "$assets/d$d"
  for f in $(seq -w 0 99); do printf '%s-%s\n' "$d" "$f" > "$assets/d$d/f$f"; done
done
printf 'ARG BASE=busybox:latest\nFROM ${BASE}\nCOPY --from=assets / /assets\n' > "$ctx1/Dockerfile"
s_cold=(); s_noop=(); b_cold=(); b_noop=()
for _ in $(seq "$runs"); do
  time_cmd s_cold strata_build --no-cache --build-context "assets=$assets" -t named "$ctx1"
  time_cmd s_noop strata_build --build-context "assets=$assets" -t named "$ctx1"
  time_cmd b_cold buildah_build --no-cache --build-context "assets=$assets" -t named "$ctx1"
  time_cmd b_noop buildah_build --build-context "assets=$assets" -t named "$ctx1"
done
report "COPY --from a 20k-file context, cold" "$(median "${s_cold[@]}")" "$(median "${b_cold[@]}")"
report "COPY --from a 20k-file context, no-op" "$(median "${s_noop[@]}")" "$(median "${b_noop[@]}")"

# 2. an upstream change that copies the same files
ctx2="$work/content"; mkdir -p "$ctx2"
cat > "$ctx2/Dockerfile" <<'DOCKERFILE'
ARG BASE=busybox:latest
FROM ${BASE} AS build
COPY cachebust /
RUN mkdir /out && echo same > /out/file
FROM ${BASE}
COPY --from=build /out /in
RUN sleep 2 && cat /in/file > /copied
DOCKERFILE
s_re=(); b_re=()
echo 0 > "$ctx2/cachebust"
strata_build -t content "$ctx2" >/dev/null
buildah_build -t content "$ctx2" >/dev/null 2>&1
for i in $(seq "$runs"); do
  echo "$i" > "$ctx2/cachebust"
  time_cmd s_re strata_build -t content "$ctx2"
  time_cmd b_re buildah_build -t content "$ctx2"
done
report "upstream changed, same files copied" "$(median "${s_re[@]}")" "$(median "${b_re[@]}")"
