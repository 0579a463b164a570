#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench-cow-diff.sh: how long `snapset diff` takes on a software-cow volume
# (issue 16: 1 GiB with 1 % changed, under 50 ms), against `snapset show` of
# the same snapshot in the same run: the same process start, catalog and
# provider load, and one provider listing (show asks the provider which
# snapshots it still holds), so the ratio is what the changed blocks add.
#
# A 1 GiB cow volume (64 KiB chunks) served by a snapset-cowd of its own; a
# set; 4 KiB written into 1 % of the chunks (163 of 16384, at random); a
# second set. Then --runs times each, alternating: `snapset --json diff S2
# --base S1` and `snapset --json show S2`. Prints the median and min..max of
# each in ms and their ratio, and checks the diff found every chunk written.
#
# Needs root, /dev/fuse, python3 and jq, and a build tree with snapset-cowd,
# snapset and the software-cow provider (--build, default ./build). Exit
# status: 0 measured, 1 error, 2 cannot run here. Everything it creates (the
# daemon, its mount, files) is removed on exit.
#
# Usage: sudo scripts/bench-cow-diff.sh [--build DIR] [--dir DIR] [--runs 20]
set -u -o pipefail

BUILD=build
PARENT=/var/tmp
RUNS=20
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=${2:?}; shift 2 ;;
    --dir) PARENT=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    *) sed -n 's/^# Usage: //p' "$0" >&2; exit 1 ;;
  esac
done

say() { echo "bench-cow-diff: $*" >&2; }
cannot() { say "cannot run here: $*"; exit 2; }
[ "$(id -u)" = 0 ] || cannot "needs root (FUSE mount)"
for p in python3 jq fusermount3; do command -v "$p" >/dev/null || cannot "$p not found"; done
[ -c /dev/fuse ] || cannot "/dev/fuse missing"
find_bin() {
  local f
  f=$(find "$BUILD" -type f -name "$1" 2>/dev/null | head -n1)
  [ -n "$f" ] || { say "$1 not found under $BUILD; build it first (--build DIR)"; exit 1; }
  echo "$f"
}
COWD=$(find_bin snapset-cowd) || exit 1
SNAPSET=$(find_bin snapset) || exit 1
PROVIDER=$(find_bin libsnapset_cow_provider.so) || exit 1
PROVIDER=$(realpath "$PROVIDER")

WORK=$(mktemp -d "$PARENT/snapset-cow-diff.XXXXXX") || cannot "cannot create a directory in $PARENT"
MNT=$WORK/mnt
SOCK=$WORK/cowd.sock
COWD_PID=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$COWD_PID" ] && kill -0 "$COWD_PID" 2>/dev/null; then
    kill -TERM "$COWD_PID"
    for _ in $(seq 100); do kill -0 "$COWD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$COWD_PID" 2>/dev/null
    wait "$COWD_PID" 2>/dev/null
  fi
  if grep -qs " $MNT " /proc/mounts; then fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"; fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$WORK/state" "$MNT" "$WORK/config/providers.d" "$WORK/catalog"
"$COWD" --state-dir "$WORK/state" --mount "$MNT" --socket "$SOCK" >"$WORK/cowd.out" 2>"$WORK/cowd.log" &
COWD_PID=$!
for _ in $(seq 100); do
  grep -qs '"ready":true' "$WORK/cowd.out" && break
  kill -0 "$COWD_PID" 2>/dev/null || break
  sleep 0.1
done
grep -qs '"ready":true' "$WORK/cowd.out" || { say "snapset-cowd did not get ready"; cat "$WORK/cowd.log" >&2; exit 1; }
jq -n --arg lib "$PROVIDER" --arg sock "$SOCK" '
  {id: "6fa459ea-ee8a-3ca4-894e-db77e160355e", name: "software-cow", type: "software",
   library: $lib, config: {socket: $sock}}' >"$WORK/config/providers.d/software-cow.json"
chmod 755 "$WORK/config" "$WORK/config/providers.d"
chmod 644 "$WORK/config/providers.d/software-cow.json"
snapset() { "$SNAPSET" --config-dir "$WORK/config" --state-dir "$WORK/catalog" "$@"; }

snapset cow create diffbench --size 1G --chunk 64K --socket "$SOCK" >/dev/null || { say "cow create failed"; exit 1; }
S1=$(snapset --json create cow:diffbench | jq -r '.snapshots[0].snapshot_id') || exit 1
CHUNKS=$(python3 - "$MNT/diffbench/origin" <<'EOF'
import os, random, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
chunks = random.Random(16).sample(range(16384), 163)
for c in chunks:
    os.pwrite(fd, os.urandom(4096), c * 65536 + 8192)
os.fsync(fd)
os.close(fd)
print(len(chunks))
EOF
) || exit 1
S2=$(snapset --json create cow:diffbench | jq -r '.snapshots[0].snapshot_id') || exit 1
FOUND=$(snapset --json diff "$S2" --base "$S1" | jq '.ranges | map(.length) | add / 65536') || exit 1
[ "$FOUND" = "$CHUNKS" ] || { say "diff found $FOUND chunks, $CHUNKS were written"; exit 1; }

: >"$WORK/times"
for i in $(seq "$RUNS"); do
  for arm in diff show; do
    t0=$(date +%s%N)
    if [ "$arm" = diff ]; then snapset --json diff "$S2" --base "$S1" >/dev/null || exit 1
    else snapset --json show "$S2" >/dev/null || exit 1; fi
    t1=$(date +%s%N)
    echo "$arm $(( (t1 - t0) ))" >>"$WORK/times"
  done
done
python3 - "$WORK/times" "$RUNS" "$CHUNKS" <<'EOF'
import statistics, sys
t = {"diff": [], "show": []}
for line in open(sys.argv[1]):
    arm, ns = line.split()
    t[arm].append(int(ns) / 1e6)
d, s = statistics.median(t["diff"]), statistics.median(t["show"])
print(f"snapset diff, 1 GiB cow volume, {sys.argv[3]} of 16384 chunks changed, {sys.argv[2]} runs each")
for arm in ("diff", "show"):
    v = t[arm]
    print(f"  {arm:5s} median {statistics.median(v):7.1f} ms  min {min(v):7.1f}  max {max(v):7.1f}")
print(f"  diff / show (medians) {d / s:.2f}; diff - show {d - s:+.1f} ms")
EOF
