#!/usr/bin/env bash
# Peak memory of `strata build --dry-run` on big generated Dockerfiles, as
# a multiple of the file's size (issue 16: at most about 20 times), and its
# time. Each file is just under SIZE_MB (default 16: strata reads
# Dockerfiles up to 16 MiB, BuildKit's limit), and a 100 MB one is refused
# on its size, unread. Not a test: it prints, and fails only if strata does.
#   bash bench/big-dockerfile.sh            # STRATA_BIN=path to skip the build
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${SIZE_MB:-16}
work=$(mktemp -d /var/tmp/strata-bench-big-dockerfile.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -z "${STRATA_BIN:-}" ]; then cargo build --release --quiet; fi
strata="${STRATA_BIN:-$PWD/target/release/strata}"
mkdir -p "$work/context"
limit=$((size_mb * 1024 * 1024 - 4096))

# $1: the file; stdin: an awk function `body(n)`, line N (from 0) after
# `FROM scratch`, printed until the file would pass the limit.
generate() {
  awk -v limit="$limit" "BEGIN {
      size = 13; print \"FROM scratch\"
      for (n = 0; ; n++) { line = body(n); size += length(line) + 1; if (size > limit) exit; print line }
    }
    $(cat)" > "$1"
}

generate "$work/label.Dockerfile" <<'AWK'
function body(n) { return sprintf("LABEL org.example.key%07d=\"value %07d of a label, padded like real ones\"", n, n) }
AWK
generate "$work/run.Dockerfile" <<'AWK'
function body(n) { return "RUN true" }
AWK
generate "$work/copy.Dockerfile" <<'AWK'
function body(n) { return sprintf("COPY --chown=1:1 src/f%d /dst/", n) }
AWK
generate "$work/mix.Dockerfile" <<'AWK'
function body(n) {
  k = n % 7
  if (k == 0) return sprintf("LABEL k%d=v%d", n, n)
  if (k == 1) return sprintf("RUN echo step %d > /dev/null", n)
  if (k == 2) return sprintf("ENV E%d=x%d", n % 10, n)
  if (k == 3) return sprintf("WORKDIR /w%d", n % 10)
  if (k == 4) return sprintf("USER u%d", n % 5)
  if (k == 5) return sprintf("COPY a%d /b/", n)
  return sprintf("EXPOSE %d", n % 60000 + 1)
}
AWK
# One line of 15 MB, and one instruction continued on a million lines.
awk 'BEGIN { printf "FROM scratch\nRUN echo "; for (i = 0; i < 1500000; i++) printf "aaaaaaaaaa"; print "" }' > "$work/line.Dockerfile"
awk 'BEGIN { print "FROM scratch\nRUN echo \\"; for (i = 0; i < 1000000; i++) print "a \\"; print "end" }' > "$work/continued.Dockerfile"

printf '%-10s %10s %10s %12s %7s %8s\n' file lines bytes "peak RSS KB" ratio seconds
for name in label run copy mix line continued; do
  file="$work/$name.Dockerfile"
  bytes=$(stat -c %s "$file")
  /usr/bin/time -v "$strata" build --dry-run -f "$file" "$work/context" \
    >/dev/null 2>"$work/time" || { cat "$work/time"; exit 1; }
  peak=$(awk -F': ' '/Maximum resident/ {print $2}' "$work/time")
  elapsed=$(awk -F': ' '/Elapsed/ {print $2}' "$work/time" | awk -F: '{print $(NF-1) * 60 + $NF}')
  printf '%-10s %10s %10s %12s %7.1f %8s\n' "$name" "$(wc -l < "$file")" "$bytes" "$peak" \
    "$(echo "$peak * 1024 / $bytes" | bc -l)" "$elapsed"
done

# Over the limit: refused on its size (a sparse file: nothing is read).
truncate -s 100M "$work/big.Dockerfile"
if "$strata" build --dry-run -f "$work/big.Dockerfile" "$work/context" >/dev/null 2>"$work/err"; then
  echo "a 100 MB Dockerfile was accepted"; exit 1
fi
head -1 "$work/err" | cut -c1-160
