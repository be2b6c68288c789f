#!/usr/bin/env bash
# `COPY big /big` of a SIZE (default 4 GiB) sparse file with data at three
# offsets: the disk the store uses for it (du of the store, before and after
# the build), the blob's size, the snapshot's file (length and allocated
# bytes), and whether GNU tar and umoci give the same content back.
# Before issue 16, the blob and the snapshot each held the whole length.
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
before=$(used "$STRATA_ROOT")
start=$(now)
"$strata" build -q -t sparse "$ctx" >/dev/null
end=$(now)
after=$(used "$STRATA_ROOT")
printf 'build: %.1f s; store: %s before, %s after (+%s)\n' "$(echo "$end - $start" | bc)" \
  "$(mib "$before")" "$(mib "$after")" "$(mib $((after - before)))"
layer=$("$strata" inspect -f '{{json .RootFS.Layers}}' sparse | python3 -c 'import json, sys; print(json.load(sys.stdin)[-2].split(":")[1])')
blob="$STRATA_ROOT/blobs/sha256/$layer"
snapshot="$STRATA_ROOT/snapshots/$layer/big"
printf 'blob: %s; snapshot file: %s long, %s allocated\n' "$(mib "$(stat -c %s "$blob")")" \
  "$(mib "$(stat -c %s "$snapshot")")" "$(mib "$(used "$snapshot")")"
want=$(sha256sum < "$ctx/big" | cut -d' ' -f1)
got_run=$("$strata" run sparse cat /sum | cut -d' ' -f1)
mkdir "$work/gnu"; tar -xf "$blob" -C "$work/gnu"
got_tar=$(sha256sum < "$work/gnu/big" | cut -d' ' -f1)
printf 'GNU tar: %s allocated, content %s\n' "$(mib "$(used "$work/gnu/big")")" "$([ "$got_tar" = "$want" ] && echo same || echo DIFFERENT)"
rm -rf "$work/gnu"
printf 'RUN sha256sum: %s\n' "$([ "$got_run" = "$want" ] && echo same || echo DIFFERENT)"
if command -v umoci >/dev/null; then
  "$strata" save --format oci -o "$work/layout" sparse
  umoci unpack --rootless --image "$work/layout:latest" "$work/bundle" >/dev/null 2>&1 || \
    umoci unpack --image "$work/layout:latest" "$work/bundle" >/dev/null
  got_umoci=$(sha256sum < "$work/bundle/rootfs/big" | cut -d' ' -f1)
  printf 'umoci: %s allocated, content %s\n' "$(mib "$(used "$work/bundle/rootfs/big")")" "$([ "$got_umoci" = "$want" ] && echo same || echo DIFFERENT)"
fi
