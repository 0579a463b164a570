#!/bin/bash
# bench-cow-fio.sh: what the FUSE path of the software copy-on-write provider
# costs, measured with fio through a loop device, beside the engine's own
# figures (bench/cow_engine_bench; docs/benchmarks.md, "software-cow").
#
# Three arms, on the same file system, in the same run, each repetition
# taking them in a rotating order:
#   plain       a loop device over a plain file in --dir
#   cow         a loop device over <mount>/NAME/origin of a snapset-cowd
#               volume whose origin and diff area are in --dir, no snapshot
#   cow-first   the same, right after a snapshot (snapshot.create on the
#               control socket; deleted again after the run): the writes
#               copy old chunks first
# Jobs (both sides identical): 4 KiB random writes (--io-rand bytes of the
# device, fio's random map, the same offsets in every arm: randrepeat) and
# 1 MiB sequential writes over the whole device, each at iodepth 1 and 4
# (libaio), O_DIRECT on the loop device (--direct=1), --end_fsync=1 so the
# final fsync (through the loop device into the FUSE file, i.e. the
# daemon's Flush) is inside fio's runtime on both sides. Both files are
# filled before the measurement so no arm pays for block allocation; the
# loop devices use the same losetup options (buffered backing file unless
# --loop-dio).
#
# Needs root, fio, losetup, /dev/fuse, python3, and a build tree with
# snapset-cowd and snapset (--build, default ./build). Exit status: 0
# measured, 1 error, 2 cannot run here, 130 interrupted. Everything it
# creates (files, loop devices, the daemon and its mount) is removed on exit.
#
# Usage: sudo scripts/bench-cow-fio.sh [--build DIR] [--dir DIR] [--size 256M]
#             [--io-rand 8M] [--reps 3] [--iodepths "1 4"] [--loop-dio]
set -u -o pipefail

BUILD=build
PARENT=/var/tmp
SIZE=256M
IO_RAND=8M
REPS=3
IODEPTHS="1 4"
LOOP_DIO=off
CMDLINE="$0 $*"

usage() {
  sed -n 's/^# Usage: //p' "$0" >&2
  exit 1
}
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=${2:?}; shift 2 ;;
    --dir) PARENT=${2:?}; shift 2 ;;
    --size) SIZE=${2:?}; shift 2 ;;
    --io-rand) IO_RAND=${2:?}; shift 2 ;;
    --reps) REPS=${2:?}; shift 2 ;;
    --iodepths) IODEPTHS=${2:?}; shift 2 ;;
    --loop-dio) LOOP_DIO=on; shift ;;
    *) usage ;;
  esac
done

say() { echo "bench-cow-fio: $*" >&2; }
cannot() { say "cannot run here: $*"; exit 2; }

[ "$(id -u)" = 0 ] || cannot "needs root (loop devices, FUSE mount)"
for p in fio losetup python3 fusermount3; do
  command -v "$p" >/dev/null || cannot "$p not found"
done
[ -c /dev/fuse ] || cannot "/dev/fuse missing"
[ -e /dev/loop-control ] || cannot "no loop devices (/dev/loop-control)"
find_bin() {
  local f
  f=$(find "$BUILD" -type f -name "$1" -perm -u+x 2>/dev/null | head -n1)
  [ -n "$f" ] || { say "$1 not found under $BUILD; build it first (--build DIR)"; exit 1; }
  echo "$f"
}
COWD=$(find_bin snapset-cowd) || exit 1
SNAPSET=$(find_bin snapset) || exit 1

WORK=$(mktemp -d "$PARENT/snapset-cow-fio.XXXXXX") || cannot "cannot create a directory in $PARENT"
STATE=$WORK/state
MNT=$WORK/mnt
SOCK=$WORK/cowd.sock
COWD_PID=
LOOP_PLAIN=
LOOP_COW=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  [ -n "$LOOP_COW" ] && losetup -d "$LOOP_COW" 2>/dev/null
  [ -n "$LOOP_PLAIN" ] && losetup -d "$LOOP_PLAIN" 2>/dev/null
  if [ -n "$COWD_PID" ] && kill -0 "$COWD_PID" 2>/dev/null; then
    kill -TERM "$COWD_PID"
    for _ in $(seq 100); do kill -0 "$COWD_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$COWD_PID" 2>/dev/null; then
      say "snapset-cowd (pid $COWD_PID) did not stop on SIGTERM; killing it"
      kill -KILL "$COWD_PID" 2>/dev/null
    fi
    wait "$COWD_PID" 2>/dev/null
  fi
  if grep -qs " $MNT " /proc/mounts; then
    fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# One request on the control socket; prints the reply line, fails unless ok.
cowd_request() {
  python3 - "$SOCK" "$1" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
reply = json.loads(buf)
print(json.dumps(reply))
sys.exit(0 if reply.get("ok") else 1)
EOF
}
chunks_copied() {
  cowd_request '{"op":"volume.get","name":"bench"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["volume"]["chunks_copied"])'
}

bytes_of() { numfmt --from=iec "$1"; }
SIZE_BYTES=$(bytes_of "$SIZE") || exit 1

# ---- the daemon and the volume
mkdir -p "$STATE" "$MNT"
"$COWD" --state-dir "$STATE" --mount "$MNT" --socket "$SOCK" >"$WORK/cowd.out" 2>"$WORK/cowd.log" &
COWD_PID=$!
for _ in $(seq 100); do
  grep -qs '"ready":true' "$WORK/cowd.out" && break
  kill -0 "$COWD_PID" 2>/dev/null || break
  sleep 0.1
done
if ! grep -qs '"ready":true' "$WORK/cowd.out"; then
  say "snapset-cowd did not get ready:"; cat "$WORK/cowd.log" >&2; exit 1
fi
# The diff area holds a full copy of the origin: the sequential first
# writes copy every chunk, and an overflow would delete the snapshot.
"$SNAPSET" cow create bench --size "$SIZE" --diff-max "$((2 * SIZE_BYTES))" --socket "$SOCK" \
  >/dev/null || { say "snapset cow create failed"; exit 1; }
SERVED=$MNT/bench/origin
[ -f "$SERVED" ] || { say "$SERVED does not exist"; exit 1; }

# ---- the loop devices, both filled once
truncate -s "$SIZE" "$WORK/plain.img"
LOOP_PLAIN=$(losetup --show -f --direct-io="$LOOP_DIO" "$WORK/plain.img") || exit 1
LOOP_COW=$(losetup --show -f --direct-io="$LOOP_DIO" "$SERVED") || exit 1
dio_of() { cat "/sys/block/$(basename "$1")/loop/dio"; }
for dev in "$LOOP_PLAIN" "$LOOP_COW"; do
  dd if=/dev/urandom of="$dev" bs=1M count=$((SIZE_BYTES >> 20)) oflag=direct conv=fsync \
    status=none || { say "filling $dev failed"; exit 1; }
done
sync

# ---- the runs
RESULTS=$WORK/results.tsv
: >"$RESULTS"
run_fio() {  # arm job qd rep dev
  local arm=$1 job=$2 qd=$3 rep=$4 dev=$5 out=$WORK/fio.json args
  case "$job" in
    rand4k) args=(--rw=randwrite --bs=4k --io_size="$IO_RAND" --randrepeat=1) ;;
    seq1m) args=(--rw=write --bs=1M) ;;
  esac
  local before=0 after=0
  [ "$arm" != plain ] && before=$(chunks_copied)
  fio --name="$arm-$job" --filename="$dev" --size="$SIZE" "${args[@]}" \
    --ioengine=libaio --iodepth="$qd" --direct=1 --end_fsync=1 \
    --output-format=json --output="$out" >/dev/null || { say "fio failed ($arm $job)"; exit 1; }
  [ "$arm" != plain ] && after=$(chunks_copied)
  python3 - "$out" "$arm" "$job" "$qd" "$rep" "$((after - before))" >>"$RESULTS" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
w = j["write"]
print("\t".join(sys.argv[2:6] + [str(w["iops"]), str(w["bw"] / 1024), str(w["runtime"]),
                                 str(w["total_ios"]), sys.argv[6]]))
EOF
}
snapshot() { cowd_request "{\"op\":\"snapshot.$1\",\"volume\":\"bench\",\"id\":\"fio\"}" >/dev/null ||
  { say "snapshot.$1 failed"; exit 1; }; }

arms=(plain cow cow-first)
for rep in $(seq "$REPS"); do
  for job in rand4k seq1m; do
    for qd in $IODEPTHS; do
      say "rep $rep/$REPS: $job iodepth $qd"
      for k in 0 1 2; do
        arm=${arms[$(((k + rep) % 3))]}
        case "$arm" in
          plain) run_fio plain "$job" "$qd" "$rep" "$LOOP_PLAIN" ;;
          cow) run_fio cow "$job" "$qd" "$rep" "$LOOP_COW" ;;
          cow-first)
            snapshot create
            run_fio cow-first "$job" "$qd" "$rep" "$LOOP_COW"
            snapshot delete ;;
        esac
      done
    done
  done
done

# ---- the table
python3 - "$RESULTS" "$CMDLINE" "$(dio_of "$LOOP_PLAIN")" "$(dio_of "$LOOP_COW")" \
  "$(cat /proc/loadavg | cut -d' ' -f1-3)" "$SIZE" "$IO_RAND" <<'EOF'
import sys, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
cmd, dio_plain, dio_cow, load, size, io_rand = sys.argv[2:8]
runs = collections.defaultdict(dict)   # (job, qd) -> rep -> arm -> row
for arm, job, qd, rep, iops, mibs, rt, ios, copied in rows:
    runs[(job, int(qd))].setdefault(rep, {})[arm] = dict(
        iops=float(iops), mibs=float(mibs), ios=int(ios), copied=int(copied))
def med(v):
    v = sorted(v); return v[(len(v) - 1) // 2]
def fmt(v):
    return f"{v:.0f}" if v >= 100 else f"{v:.2f}"
print(f"### FUSE + loop: fio through a loop device ({size}, O_DIRECT on the loop device, "
      f"end_fsync inside the timing)\n")
print(f"Command: `{cmd}`; loop backing dio: plain {dio_plain}, cow {dio_cow}; "
      f"load average at the end {load}.\n")
print("| job | iodepth | unit | plain file | cowd origin, no snapshot | cowd origin, after a snapshot "
      "| **cow / plain** (min..max) | **cow-first / plain** (min..max) | cow-first / cow | "
      "chunks copied per write (cow-first) |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
for (job, qd) in sorted(runs, key=lambda k: (k[0] != "rand4k", k[1])):
    reps = runs[(job, qd)].values()
    key = "iops" if job == "rand4k" else "mibs"
    unit = "IOPS" if job == "rand4k" else "MiB/s"
    a = {arm: [r[arm][key] for r in reps] for arm in ("plain", "cow", "cow-first")}
    r1 = [r["cow"][key] / r["plain"][key] for r in reps]
    r2 = [r["cow-first"][key] / r["plain"][key] for r in reps]
    r3 = [r["cow-first"][key] / r["cow"][key] for r in reps]
    cpw = med([r["cow-first"]["copied"] / max(1, r["cow-first"]["ios"]) for r in reps])
    name = "4 KiB random write (" + io_rand + ")" if job == "rand4k" else "1 MiB sequential write"
    print(f"| {name} | {qd} | {unit} | {fmt(med(a['plain']))} | {fmt(med(a['cow']))} | "
          f"{fmt(med(a['cow-first']))} | **{med(r1):.3f}** ({min(r1):.3f}..{max(r1):.3f}) | "
          f"**{med(r2):.3f}** ({min(r2):.3f}..{max(r2):.3f}) | {med(r3):.3f} | {cpw:.2f} |")
print(f"\nMedians over {len(next(iter(runs.values())))} reps; ratios paired within each rep.")
EOF
