#!/usr/bin/env bash
# `strata cache explain` on a 20,000-file context with one file changed,
# against a no-op build of the same context (the issue's target: explain
# takes less than twice as long). Medians of RUNS runs (default 5).
#   bash bench/explain.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
source bench/common.sh
ctx="$work/ctx"
python3 - "$ctx" <<'PYTHON'
import os, sys
root = sys.argv[1]
for index in range(20000):
    directory = os.path.join(root, "src", "%03d" % (index // 100))
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "file%d.txt" % index), "wb") as out:
        out.write(os.urandom(200 + index % 1800))
PYTHON
printf 'FROM busybox:latest\nCOPY . /ctx\nRUN ls -R /ctx | wc -l > /count\n' > "$ctx/Dockerfile"
"$strata" build -q "$ctx" >/dev/null
noop=(); explain=()
for i in $(seq "$runs"); do
  start=$(now); "$strata" build -q "$ctx" >/dev/null; end=$(now); noop+=("$(echo "$end - $start" | bc)")
done
echo "changed" >> "$ctx/src/123/file12345.txt"
for i in $(seq "$runs"); do
  start=$(now); "$strata" cache explain "$ctx" >/dev/null 2>&1; end=$(now); explain+=("$(echo "$end - $start" | bc)")
done
n=$(median "${noop[@]}"); e=$(median "${explain[@]}")
printf 'no-op build of 20,000 files      %7.3f s\n' "$n"
printf 'cache explain, one file changed  %7.3f s   explain/no-op %.2fx (target: under 2x)\n' "$e" "$(echo "$e / $n" | bc -l)"
"$strata" cache explain "$ctx" 2>&1 | tail -3
