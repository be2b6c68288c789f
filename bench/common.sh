# Shared by the benchmark scripts (sourced, not run): a work directory, a
# release build of strata with its own store, a busybox base in strata's
# store and (with `with_buildah`) in buildah's, and timing helpers.

# Lowercase: buildah names images after `oci:` paths.
work=/var/tmp/strata-bench-$(basename "$0" .sh)-$$
rm -rf "$work"; mkdir -p "$work"
cleanup() {
  command buildah --root "$work/buildah" --runroot "$work/buildah-run" --storage-driver overlay rm --all >/dev/null 2>&1 || true
  umount -R "$work/buildah/overlay" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# STRATA_BIN: a binary already built (nothing is built then).
[ -n "${STRATA_BIN:-}" ] || cargo build --release --quiet
strata="${STRATA_BIN:-$PWD/target/release/strata}"
export STRATA_ROOT="$work/strata"

# The base: busybox-static, its applets, root in /etc/passwd.
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp,root,proc,sys,dev}
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for applet in $("$rootfs/bin/busybox" --list); do [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"; printf 'root:x:0:\n' > "$rootfs/etc/group"
SOURCE_DATE_EPOCH=0 "$strata" import "$rootfs" busybox:latest >/dev/null

buildah() { command buildah --root "$work/buildah" --runroot "$work/buildah-run" --storage-driver overlay "$@"; }
# The same base in buildah's store, as localhost/busybox:latest.
with_buildah() {
  "$strata" save --format oci -o "$work/layout" busybox:latest
  local base_id
  base_id=$(buildah pull --quiet "oci:$work/layout:latest")
  buildah tag "$base_id" localhost/busybox:latest
}

now() { date +%s.%N; }
# The median of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
