#!/usr/bin/env bash
# `COPY . /c/` of a build context of DEPTH nested directories with a file
# at the bottom, for DEPTH 250, 500 and 1000: the build's time and its
# count of stat and open calls (`strace -c -f`). A walk linear in entries
# grows both linearly with the depth (issue 16: it was depth², and past
# ~500 levels a debug build overflowed its stack).
#   bash bench/deep-context.sh              # DEPTHS="250 500 1000"
#   STRATA_BIN=target/debug/strata bash bench/deep-context.sh
set -euo pipefail
cd "$(dirname "$0")/.."
depths=${DEPTHS:-250 500 1000}
source bench/common.sh

printf '%-7s %9s %9s %9s %9s\n' depth seconds statx fstatat openat
for depth in $depths; do
  ctx="$work/deep$depth"
  python3 - "$ctx" "$depth" <<'PYTHON'
import os, sys
path = sys.argv[1]
os.makedirs(path)
for _ in range(int(sys.argv[2])):
    path = os.path.join(path, "d")
    os.mkdir(path)
with open(os.path.join(path, "bottom.txt"), "w") as out:
    out.write("at the bottom\n")
PYTHON
  printf 'FROM busybox\nCOPY . /c/\n' > "$ctx/Dockerfile"
  start=$(now)
  "$strata" build -q --no-cache "$ctx" >/dev/null
  end=$(now)
  strace -f -c -o "$work/strace$depth" "$strata" build -q --no-cache "$ctx" >/dev/null
  count() { awk -v call="$1" '$NF == call {print $4}' "$work/strace$depth" | head -1; }
  printf '%-7s %9.3f %9s %9s %9s\n' "$depth" "$(echo "$end - $start" | bc)" \
    "$(count statx)" "$(count newfstatat)" "$(count openat)"
  rm -rf "$ctx"
done
