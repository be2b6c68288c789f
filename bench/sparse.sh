#!/usr/bin/env bash
# `COPY big /big` of a SIZE (default 4 GiB) sparse file with data at three
# offsets, with the layers uncompressed (the default) and gzip: the disk
# the store uses for it (du of the store, before and after the build), the
# snapshot's file (length and allocated bytes), and whether a RUN reads the
# same content. Before issue 16 the snapshot held the whole length, and
# the layer blob too (it is now a PAX sparse entry: the data, no holes).
#   bash bench/sparse.sh                   # SIZE_MB=4096
#   SIZE_MB=256 bash bench/sparse.sh
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${SIZE_MB:-4096}
source bench/common.sh

ctx="$work/sparse"; mkdir -p "$ctx"
python3 - "$ctx/big" "$size_mb" <<'PYTHON'
import os, sys
path, size = sys.argv[1], int(sys.argv[2]) << 20
with open(path, "wb") as out:
    out.truncate(size)
    for offset, data in ((0, b"the start"), (size // 3 + 12345, b"the middle"), (size - 7, b"the end")):
        out.seek(offset)
        out.write(data)
PYTHON
printf 'FROM busybox\nCOPY big /big\nRUN sha256sum /big > /sum\n' > "$ctx/Dockerfile"
mib() { echo "$(( $1 / 1048576 )) MiB"; }
used() { du -sk "$1" | awk '{print $1 * 1024}'; }
printf 'context file: %s long, %s allocated\n' "$(mib "$(stat -c %s "$ctx/big")")" "$(mib "$(used "$ctx/big")")"
want=$(sha256sum < "$ctx/big" | cut -d' ' -f1)
# Uncompressed (the default) and gzip, each on a store of its own.
for compression in uncompressed gzip; do
  export STRATA_ROOT="$work/store-$compression"
  cp -a "$work/strata" "$STRATA_ROOT"
  before=$(used "$STRATA_ROOT")
  start=$(now)
  "$strata" build -q -t sparse --output "type=image,compression=$compression" "$ctx" >/dev/null
  end=$(now)
  after=$(used "$STRATA_ROOT")
  printf '%s: build %.1f s; store %s before, %s after (+%s)\n' "$compression" "$(echo "$end - $start" | bc)" \
    "$(mib "$before")" "$(mib "$after")" "$(mib $((after - before)))"
  layer=$("$strata" inspect -f '{{json .RootFS.Layers}}' sparse | python3 -c 'import json, sys; print(json.load(sys.stdin)[-2].split(":")[1])')
  snapshot="$STRATA_ROOT/snapshots/$layer/big"
  printf '  snapshot file: %s long, %s allocated\n' "$(mib "$(stat -c %s "$snapshot")")" "$(mib "$(used "$snapshot")")"
  got_run=$("$strata" run sparse cat /sum | cut -d' ' -f1)
  printf '  RUN sha256sum: %s\n' "$([ "$got_run" = "$want" ] && echo same || echo DIFFERENT)"
  rm -rf "$STRATA_ROOT"
done
