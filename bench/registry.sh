#!/usr/bin/env bash
# Push and pull of a 1 GiB image (four 256 MiB gzip layers of random data
# over busybox) through Debian's docker-registry on loopback: strata against
# `skopeo copy` and buildah pull/push of the same image, in the same run.
# The registry's storage is emptied before every push, so each one uploads
# every blob; each pull goes into an empty store (strata, buildah) or an
# empty OCI layout (skopeo). buildah's pull also unpacks every layer into
# its store, which strata does on first use (FROM, run).
#
#   bash bench/registry.sh [RUNS]     (default 3; as root; needs docker-registry, skopeo,
#                                      buildah, GNU time)
#
# It also prints strata's peak memory (RSS) for each push and pull: data
# streams, so it does not grow with the image.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
. bench/common.sh

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host=127.0.0.1:$port
registry_pid=
start_registry() {
  rm -rf "$work/registry"; mkdir -p "$work/registry"
  cat > "$work/registry.yml" <<EOF
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $work/registry } }
http: { addr: $host }
EOF
  docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
  registry_pid=$!
  until curl -fsS "http://$host/v2/" >/dev/null 2>&1; do sleep 0.05; done
}
stop_registry() { [ -n "$registry_pid" ] && kill "$registry_pid" && wait "$registry_pid" 2>/dev/null || true; registry_pid=; }
trap 'stop_registry; cleanup' EXIT

# The image: four COPY layers of 256 MiB, gzip (as registries are fed).
ctx="$work/context"; mkdir -p "$ctx"
printf 'FROM busybox\n' > "$ctx/Dockerfile"
for i in 1 2 3 4; do
  head -c 256M /dev/urandom > "$ctx/part$i"
  printf 'COPY part%s /data/part%s\n' "$i" "$i" >> "$ctx/Dockerfile"
done
"$strata" build -q -t big:1 --output "type=oci,dest=$work/big.tar,compression=gzip" "$ctx" >/dev/null
rm -f "$work/big.tar"
"$strata" save --format oci -o "$work/layout" big:1
size=$(du -sb "$work/layout/blobs" | cut -f1)
echo "image: $(numfmt --to=iec "$size") in $(ls "$work/layout/blobs/sha256" | wc -l) blobs"

timed() {
  local start end; start=$(now)
  "$@" >/dev/null 2>"$work/error" || { echo "failed: $*" >&2; cat "$work/error" >&2; exit 1; }
  end=$(now); echo "$end - $start" | bc
}
declare -a s_push k_push s_pull k_pull b_push b_pull
for run in $(seq "$runs"); do
  start_registry
  s_push+=("$(timed /usr/bin/time -f %M -o "$work/rss-push" "$strata" push -q big:1 "$host/strata/big:1")")
  stop_registry; start_registry
  k_push+=("$(timed skopeo copy --dest-tls-verify=false "oci:$work/layout:1" "docker://$host/skopeo/big:1")")
  # Both pull the image skopeo pushed.
  rm -rf "$work/pull-store" "$work/pull-layout"
  s_pull+=("$(timed env STRATA_ROOT="$work/pull-store" /usr/bin/time -f %M -o "$work/rss-pull" "$strata" pull -q "$host/skopeo/big:1")")
  k_pull+=("$(timed skopeo copy --src-tls-verify=false "docker://$host/skopeo/big:1" "oci:$work/pull-layout:latest")")
  # buildah: pull into an empty store (it unpacks the layers as it goes),
  # then push that image (uncompressed: its store keeps no gzip blobs, and
  # compressing 1 GiB again would time gzip, not the transfer).
  buildah rmi --all >/dev/null 2>&1 || true
  b_pull+=("$(timed buildah pull --tls-verify=false "docker://$host/skopeo/big:1")")
  # An empty registry again: else buildah mounts the blobs it just pulled.
  stop_registry; start_registry
  b_push+=("$(timed buildah push --tls-verify=false --disable-compression "$host/skopeo/big:1" "docker://$host/buildah/big:1")")
  stop_registry
  echo "run $run: push strata ${s_push[-1]}s skopeo ${k_push[-1]}s buildah ${b_push[-1]}s;" \
    "pull strata ${s_pull[-1]}s skopeo ${k_pull[-1]}s buildah ${b_pull[-1]}s" \
    "(strata peak RSS: push $(cat "$work/rss-push") KiB, pull $(cat "$work/rss-pull") KiB)"
done
report() { # what peer strata-times... peer-times...
  local what=$1 peer=$2 ours theirs
  ours=$(median "${@:3:$runs}"); theirs=$(median "${@:$((runs + 3))}")
  printf '%-5s strata %6.2fs (%4.0f MB/s)   %-11s %6.2fs (%4.0f MB/s)   %s/strata %.2fx\n' \
    "$what" "$ours" "$(echo "$size / $ours / 1000000" | bc -l)" "$peer" "$theirs" \
    "$(echo "$size / $theirs / 1000000" | bc -l)" "${peer%% *}" "$(echo "$theirs / $ours" | bc -l)"
}
echo "medians of $runs runs:"
report push "skopeo copy" "${s_push[@]}" "${k_push[@]}"
report push "buildah" "${s_push[@]}" "${b_push[@]}"
report pull "skopeo copy" "${s_pull[@]}" "${k_pull[@]}"
report pull "buildah" "${s_pull[@]}" "${b_pull[@]}"
