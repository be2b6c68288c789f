#!/usr/bin/env bash
# BUILDS (default 300) incremental builds on one store: a context of 100
# files of which one changes before each build, `COPY . /app/` and a RUN,
# always tagged app:latest (so each build leaves the previous image
# dangling). Three runs, each on a fresh store:
#   none    nothing is ever pruned;
#   prune   `image prune -f` every PRUNE_EVERY (default 10) builds, as a
#           user would;
#   budget  the same, with the build cache's budget set to BUDGET (default
#           1MB; the default budget, 10% of the disk, is not reached here).
# Every 50 builds: the store's size (du), blobs, cache records, the stat
# cache's bytes, images in the index (dangling ones too), and the mean
# build time of the last 50. What the retained images need is one image's
# layers per image; anything else must stay flat.
#   bash bench/long-run.sh                  # BUILDS=300 MODES="none prune budget"
#   BUILDS=60 STRATA_BIN=target/debug/strata bash bench/long-run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
builds=${BUILDS:-300}
every=${PRUNE_EVERY:-10}
modes=${MODES:-none prune budget}
source bench/common.sh
base_store="$STRATA_ROOT"

ctx="$work/ctx"; mkdir -p "$ctx/src"
for index in $(seq 100); do printf 'static file %d\n' "$index" > "$ctx/src/file$index.txt"; done
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM busybox
COPY . /app/
RUN cat /app/src/changing.txt > /built && ls /app/src | wc -l >> /built
DOCKERFILE

count() { find "$1" -mindepth 1 -maxdepth 1 "${@:2}" 2>/dev/null | wc -l; }
images() { python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1])).get("images", {})))' "$STRATA_ROOT/images.json"; }
for mode in $modes; do
  export STRATA_ROOT="$work/store-$mode"
  cp -a "$base_store" "$STRATA_ROOT"
  if [ "$mode" = budget ]; then export STRATA_CACHE_KEEP_STORAGE=${BUDGET:-1MB}; else unset STRATA_CACHE_KEEP_STORAGE; fi
  echo "== $mode (image prune -f every $every builds: $([ "$mode" != none ] && echo yes || echo no); cache budget: ${STRATA_CACHE_KEEP_STORAGE:-default})"
  printf '%6s %10s %6s %8s %10s %7s %9s\n' builds store blobs records stat_bytes images build_s
  total=0
  for build in $(seq "$builds"); do
    printf 'build %d\n' "$build" > "$ctx/src/changing.txt"
    start=$(now)
    "$strata" build -q -t app:latest "$ctx" >/dev/null
    end=$(now)
    total=$(echo "$total + $end - $start" | bc)
    if [ "$mode" != none ] && [ $((build % every)) -eq 0 ]; then
      "$strata" image prune -f >/dev/null
    fi
    if [ $((build % 50)) -eq 0 ]; then
      printf '%6d %10s %6d %8d %10d %7d %9.3f\n' "$build" "$(du -sh "$STRATA_ROOT" | cut -f1)" \
        "$(count "$STRATA_ROOT/blobs/sha256")" "$(count "$STRATA_ROOT/cache" -name '*.json')" \
        "$(cat "$STRATA_ROOT"/cache/stat/* 2>/dev/null | wc -c)" "$(images)" "$(echo "$total / 50" | bc -l)"
      total=0
    fi
  done
done
