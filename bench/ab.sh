#!/usr/bin/env bash
# Two strata binaries side by side, interleaved run by run (so that the
# machine's drift hits both alike), on what the sandbox and the confined
# resolver cost:
#
#   1. `COPY . /ctx` of 20,000 small files, --no-cache;
#   2. 20 `RUN echo` steps, --no-cache;
#   3. the same 20 steps with --security=insecure (no seccomp filter).
#
# Medians of RUNS runs (default 12), in milliseconds. As root.
#   bash bench/ab.sh OLD_STRATA NEW_STRATA
# e.g. with a worktree of the commit before a change:
#   git worktree add /tmp/old HEAD~5 && (cd /tmp/old && cargo build --release)
#   cargo build --release && bash bench/ab.sh /tmp/old/target/release/strata target/release/strata
set -euo pipefail
old=$(realpath "$1"); new=$(realpath "$2")
runs=${RUNS:-12}
work=/var/tmp/strata-bench-ab-$$
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{copy,runs,insecure} "$work"/rootfs/{bin,etc,tmp}
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for applet in sh echo true; do ln -s busybox "$work/rootfs/bin/$applet"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
echo 'root:x:0:' > "$work/rootfs/etc/group"
for d in $(seq -w 0 199); do
  mkdir "$work/copy/d$d"
  for f in $(seq -w 0 99); do printf '%s-%s\n' "$d" "$f" > "$work/copy/d$d/f$f"; done
done
printf 'FROM base\nCOPY . /ctx\n' > "$work/copy/Dockerfile"
{ echo 'FROM base'; for i in $(seq 20); do echo "RUN echo $i > /f$i"; done; } > "$work/runs/Dockerfile"
{ echo 'FROM base'; for i in $(seq 20); do echo "RUN --security=insecure echo $i > /f$i"; done; } > "$work/insecure/Dockerfile"
for which in old new; do "${!which}" --root "$work/store-$which" import "$work/rootfs" base >/dev/null; done

# once BINARY STORE CONTEXT: milliseconds of one build
once() {
  local start end
  start=$(date +%s%N)
  "$1" --root "$2" build -q --no-cache --network none --allow security.insecure "$3" >/dev/null
  end=$(date +%s%N)
  echo $(((end - start) / 1000000))
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for bench in copy runs insecure; do
  o=(); n=()
  for _ in $(seq "$runs"); do
    o+=("$(once "$old" "$work/store-old" "$work/$bench")")
    n+=("$(once "$new" "$work/store-new" "$work/$bench")")
  done
  printf '%-9s old %6d ms   new %6d ms   new/old %5.2f\n' "$bench" "$(median "${o[@]}")" "$(median "${n[@]}")" \
    "$(echo "$(median "${n[@]}") / $(median "${o[@]}")" | bc -l)"
done
