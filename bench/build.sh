#!/usr/bin/env bash
# strata build side by side with buildah bud --layers, in the same run, on
# the same busybox base (made from Debian's busybox-static):
#
#   1. a 3-step Dockerfile: cold build, then a no-op rebuild;
#   2. two stages each running `sleep 1`, copied from by a third: cold;
#   3. `COPY . /ctx` of 20,000 small files plus 1 GiB of generated data:
#      cold, then a no-op rebuild.
#
# Medians of RUNS runs (default 5) for 1 and 2, one run for 3. As root.
#   bash bench/build.sh                 # BENCH_MB=1024 RUNS=5
#   BENCH_MB=256 RUNS=3 bash bench/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
megabytes=${BENCH_MB:-1024}
source bench/common.sh
with_buildah

# time_cmd VAR command...: run once, add the seconds to the array VAR
time_cmd() { local var=$1; shift; local start end; start=$(now); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; "$@"; exit 1; }; end=$(now); eval "$var+=($(echo "$end - $start" | bc))"; }

strata_build() { "$strata" build --network none -q "$@"; }
buildah_build() { buildah bud --runtime runc --isolation oci --network none --layers --force-rm --pull=never --jobs 2 --build-arg BASE=localhost/busybox:latest "$@"; }

report() { # name strata_seconds buildah_seconds
  printf '%-34s strata %8.3f s   buildah %8.3f s   buildah/strata %6.1fx\n' "$1" "$2" "$3" "$(echo "$3 / $2" | bc -l)"
}

# 1. three steps
ctx1="$work/three"; mkdir -p "$ctx1"
cat > "$ctx1/Dockerfile" <<'DOCKERFILE'
ARG BASE=busybox:latest
FROM ${BASE}
RUN echo one > /one
RUN echo two > /two && cat /one /two > /both
DOCKERFILE
s_cold=(); s_noop=(); b_cold=(); b_noop=()
for i in $(seq "$runs"); do
  time_cmd s_cold strata_build --no-cache -t three "$ctx1"
  time_cmd s_noop strata_build -t three "$ctx1"
  time_cmd b_cold buildah_build --no-cache -t three "$ctx1"
  time_cmd b_noop buildah_build -t three "$ctx1"
done
report "3 steps, cold" "$(median "${s_cold[@]}")" "$(median "${b_cold[@]}")"
report "3 steps, no-op rebuild" "$(median "${s_noop[@]}")" "$(median "${b_noop[@]}")"

# 2. two parallel stages
ctx2="$work/parallel"; mkdir -p "$ctx2"
cat > "$ctx2/Dockerfile" <<'DOCKERFILE'
ARG BASE=busybox:latest
FROM ${BASE} AS a
RUN sleep 1 && echo a > /a
FROM ${BASE} AS b
RUN sleep 1 && echo b > /b
FROM ${BASE}
COPY --from=a /a /a
COPY --from=b /b /b
DOCKERFILE
s_par=(); b_par=()
for i in $(seq "$runs"); do
  time_cmd s_par strata_build --no-cache -t parallel "$ctx2"
  time_cmd b_par buildah_build --no-cache -t parallel "$ctx2"
done
report "two sleep-1 stages, cold" "$(median "${s_par[@]}")" "$(median "${b_par[@]}")"

# 3. a big context
ctx3="$work/big"; mkdir -p "$ctx3/src" "$ctx3/data"
python3 - "$ctx3" "$megabytes" <<'PYTHON'
import os, sys
root, megabytes = sys.argv[1], int(sys.argv[2])
for index in range(20000):
    directory = os.path.join(root, "src", "%03d" % (index // 100))
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "file%d.txt" % index), "wb") as out:
        out.write(os.urandom(200 + index % 1800))
chunk = os.urandom(1 << 20)
for part in range((megabytes + 63) // 64):
    with open(os.path.join(root, "data", "part%d.bin" % part), "wb") as out:
        for _ in range(min(64, megabytes - part * 64)):
            chunk = chunk[1:] + chunk[:1]
            out.write(chunk)
PYTHON
printf 'ARG BASE=busybox:latest\nFROM ${BASE}\nCOPY . /ctx\n' > "$ctx3/Dockerfile"
s_big=(); s_big_noop=(); b_big=(); b_big_noop=()
time_cmd s_big strata_build -t big "$ctx3"
time_cmd s_big_noop strata_build -t big "$ctx3"
time_cmd b_big buildah_build -t big "$ctx3"
time_cmd b_big_noop buildah_build -t big "$ctx3"
report "COPY 20k files + ${megabytes} MiB, cold" "${s_big[0]}" "${b_big[0]}"
report "COPY 20k files + ${megabytes} MiB, no-op" "${s_big_noop[0]}" "${b_big_noop[0]}"
