#!/usr/bin/env bash
# Runs mock_array_cg_bench (docs/benchmarks.md) on the two copy paths of
# snapset-mock-array's snapshots:
#   xfs  the state directory on a fresh XFS with reflink=1 on a loop device
#        (FICLONE works: the reflink path), backing file 8 GiB sparse in
#        $SNAPSET_BENCH_BACKING_DIR (default /var/tmp, the real disk);
#   tmp  the state directory in the system temp directory (/tmp, ext4 here:
#        the sparse-copy path).
# Usage: sudo scripts/bench-mock-array.sh [xfs|tmp|both] [bench options...]
# e.g.   sudo scripts/bench-mock-array.sh both --luns 1,8,32 --runs 30
# Needs a build (scripts/build.sh), root, tgt and xfsprogs. The loop device,
# the mount and the backing file are removed on every way out.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${SNAPSET_BUILD_DIR:-$root/build}"
bench="$build/bench/mock_array_cg_bench"
which="${1:-both}"
case "$which" in
  xfs | tmp | both) [ $# -gt 0 ] && shift ;;
  -*) which=both ;;
  *) echo "usage: $0 [xfs|tmp|both] [mock_array_cg_bench options...]" >&2; exit 1 ;;
esac

if [ "$(id -u)" -ne 0 ]; then echo "$0: needs root" >&2; exit 2; fi
if [ ! -x "$bench" ]; then echo "$0: build first: $bench is missing" >&2; exit 1; fi

work="" loop="" mnt=""
cleanup() {
  set +e
  if [ -n "$mnt" ] && mountpoint -q "$mnt"; then umount "$mnt"; fi
  if [ -n "$loop" ]; then losetup --detach "$loop"; fi
  if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

run_xfs() {
  command -v mkfs.xfs >/dev/null || { echo "$0: needs mkfs.xfs (xfsprogs)" >&2; exit 2; }
  work="$(mktemp -d "${SNAPSET_BENCH_BACKING_DIR:-/var/tmp}/snapset-cg-xfs.XXXXXX")"
  mnt="$work/mnt"
  mkdir "$mnt"
  truncate -s 8G "$work/backing.img"
  loop="$(losetup --find --show "$work/backing.img")"
  mkfs.xfs -q -m reflink=1 "$loop"
  mount "$loop" "$mnt"
  echo "== reflink path: XFS (reflink=1) on $loop, backing file $work/backing.img" >&2
  "$bench" --dir "$mnt" "$@"
  cleanup
  work="" loop="" mnt=""
}

run_tmp() {
  echo "== sparse-copy path: $(df --output=fstype "${TMPDIR:-/tmp}" | tail -1) at ${TMPDIR:-/tmp}" >&2
  "$bench" "$@"
}

case "$which" in
  xfs) run_xfs "$@" ;;
  tmp) run_tmp "$@" ;;
  both) run_xfs "$@"; run_tmp "$@" ;;
esac
