#!/usr/bin/env bash
# strata against BuildKit (docker 20.10's dockerd, a private daemon on its
# own socket, see ../shared/PEERS.md), interleaved run by run, on the same
# busybox base:
#
#   1. 20 `RUN echo` steps, --no-cache;
#   2. `COPY . /ctx` of 20,000 small files, --no-cache;
#   3. the rebuild after a stage's input changed but the files a second
#      stage copies from it did not: both keep the copy and the `sleep 2`
#      after it cached (content keys).
#
# Medians of RUNS runs (default 7), in milliseconds. As root, with
# Debian's docker.io installed.
#   bash bench/buildkit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-7}
source bench/common.sh
daemon="$work/dockerd"
mkdir -p "$daemon"
dockerd --data-root "$daemon/data" --exec-root "$daemon/exec" -H "unix://$daemon/docker.sock" \
  --pidfile "$daemon/dockerd.pid" --iptables=false --ip6tables=false --ip-masq=false \
  --bridge=none --storage-driver overlay2 >"$daemon/log" 2>&1 &
stop_daemon() { kill "$(cat "$daemon/dockerd.pid")" 2>/dev/null || true; sleep 1; cleanup; }
trap stop_daemon EXIT
export DOCKER_HOST="unix://$daemon/docker.sock" DOCKER_BUILDKIT=1
for _ in $(seq 50); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 0.2; done
"$strata" save -o "$work/base.tar" busybox:latest
/usr/bin/docker load -i "$work/base.tar" >/dev/null

mkdir -p "$work/runs" "$work/copy"
{ echo 'FROM busybox:latest'; for i in $(seq 20); do echo "RUN echo $i > /f$i"; done; } > "$work/runs/Dockerfile"
for d in $(seq -w 0 199); do
  mkdir "$work/copy/d$d"
  for f in $(seq -w 0 99); do printf '%s-%s\n' "$d" "$f" > "$work/copy/d$d/f$f"; done
done
printf 'FROM busybox:latest\nCOPY . /ctx\n' > "$work/copy/Dockerfile"

ms() { local start end; start=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; end=$(date +%s%N); echo $(((end - start) / 1000000)); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for bench in runs copy; do
  s=(); b=()
  for _ in $(seq "$runs"); do
    s+=("$(ms "$strata" build -q --no-cache --network none -t "$bench" "$work/$bench")")
    b+=("$(ms /usr/bin/docker build -q --no-cache --network none -t "$bench" "$work/$bench")")
  done
  printf '%-5s strata %6d ms   BuildKit %6d ms   BuildKit/strata %5.1fx\n' "$bench" \
    "$(median "${s[@]}")" "$(median "${b[@]}")" "$(echo "$(median "${b[@]}") / $(median "${s[@]}")" | bc -l)"
done

mkdir -p "$work/content"
cat > "$work/content/Dockerfile" <<'DOCKERFILE'
FROM busybox:latest AS build
COPY cachebust /
RUN mkdir /out && echo same > /out/file
FROM busybox:latest
COPY --from=build /out /in
RUN sleep 2 && cat /in/file > /copied
DOCKERFILE
echo 0 > "$work/content/cachebust"
ms "$strata" build -q --network none -t content "$work/content" >/dev/null
ms /usr/bin/docker build -q --network none -t content "$work/content" >/dev/null
s=(); b=()
for i in $(seq "$runs"); do
  echo "$i" > "$work/content/cachebust"
  s+=("$(ms "$strata" build -q --network none -t content "$work/content")")
  b+=("$(ms /usr/bin/docker build -q --network none -t content "$work/content")")
done
printf '%-7s strata %6d ms   BuildKit %6d ms   BuildKit/strata %5.1fx\n' content \
  "$(median "${s[@]}")" "$(median "${b[@]}")" "$(echo "$(median "${b[@]}") / $(median "${s[@]}")" | bc -l)"
