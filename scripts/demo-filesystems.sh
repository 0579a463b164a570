#!/usr/bin/env bash
# A tour of plain filesystems and the example provider (the main job is
# scripts/demo.sh): build snapset, then take a consistent snapshot of a set of
# two real ext4 filesystems and show the whole life of the set:
#   providers list / volumes show / providers explain   (who takes what, why)
#   create        the plan, then the set: both filesystems frozen together
#                 for a few milliseconds inside the 10-second commit window
#   list, show --timeline, expose --mount   (the snapshot holds the old data)
#   create on a volume no provider supports: refused, nothing kept
#   delete --set
#   software copy-on-write: snapset-cowd serves cow:demo through FUSE, ext4
#   on a loop device over it; snapset create cow:demo freezes the ext4, then
#   closes the daemon's write gate, and the snapshot mounts read-only with
#   the files of that instant
# Volumes: ext4 filesystems on loop devices whose backing files live on XFS,
# so the example provider loop-clone (examples/minimal-provider, type system)
# snapshots them for real with FICLONE; one ext4 over a file on the root
# filesystem (which cannot clone: loop-clone says why it declines); and a real
# iSCSI LUN from a private tgtd on loopback, taken by "demo-array" -- the
# scriptable test provider standing in for an array that owns that LUN's NAA
# until the iSCSI hardware provider lands.
# Run as root. Everything is undone on exit.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" >/dev/null
build="${SNAPSET_BUILD_DIR:-$root/build}"
snapset="$build/tools/snapset"

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (it makes loop devices, mounts filesystems and starts tgtd)" >&2
  exit 1
fi

work="$(mktemp -d /tmp/snapset-demo.XXXXXX)"
undo=()  # cleanup steps, run last to first
tgtd_pid=""
ctl=$((2000 + RANDOM % 30000))
export TGT_IPC_SOCKET="$work/tgtd.ipc"

cleanup() {
  set +e
  if [ -n "$tgtd_pid" ]; then
    tgtadm -C "$ctl" --lld iscsi --op delete --mode target --tid 1 --force >/dev/null 2>&1
    tgtadm -C "$ctl" --op delete --mode system >/dev/null 2>&1
    sleep 0.2
    kill -9 "$tgtd_pid" 2>/dev/null
    wait "$tgtd_pid" 2>/dev/null
  fi
  for ((i = ${#undo[@]} - 1; i >= 0; i--)); do ${undo[$i]}; done
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# loop_mount FILE SIZE FSTYPE MOUNTPOINT: a filesystem on a new loop device.
loop_mount() {
  truncate -s "$2" "$1"
  local dev
  dev="$(losetup --find --show "$1")"
  undo+=("losetup -d $dev")
  "mkfs.$3" -q "$dev"
  mkdir -p "$4"
  mount "$dev" "$4"
  undo+=("umount $4")
}

# Volumes
loop_mount "$work/store.img" 512M xfs "$work/xfs-store"            # holds backing files
loop_mount "$work/xfs-store/db.img" 64M ext4 "$work/db"            # volume 1
loop_mount "$work/xfs-store/logs.img" 64M ext4 "$work/logs"        # volume 2
loop_mount "$work/scratch.img" 64M ext4 "$work/scratch"            # not clonable
mkdir -p "$work/xfs-store/snapshots"

# A private tgtd with one LUN on a free loopback port.
port=""
for _ in $(seq 20); do
  candidate=$((20000 + RANDOM % 20000))
  if ! ss -ltn 2>/dev/null | grep -q ":$candidate "; then port=$candidate; break; fi
done
tgtd -f -C "$ctl" --iscsi "portal=127.0.0.1:$port" >"$work/tgtd.log" 2>&1 &
tgtd_pid=$!
iqn="iqn.2026-11.io.snapset.demo:array"
for _ in $(seq 50); do
  tgtadm -C "$ctl" --op show --mode system >/dev/null 2>&1 && break
  sleep 0.1
done
truncate -s 128M "$work/lun1.img"
scsi_id="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
tgtadm -C "$ctl" --lld iscsi --op new --mode target --tid 1 -T "$iqn"
tgtadm -C "$ctl" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$work/lun1.img"
tgtadm -C "$ctl" --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 \
  --params "scsi_id=$scsi_id,scsi_sn=DEMO0001"
tgtadm -C "$ctl" --lld iscsi --op bind --mode target --tid 1 -I ALL
lun="iscsi://127.0.0.1:$port/$iqn/1"

# The array "owns" the LUN: register the demo array with the NAA snapset reads.
naa="$("$snapset" --json volumes show "$lun" | sed -n 's/.*"naa": "\([0-9a-f]*\)".*/\1/p')"

cfg="$work/config"
mkdir -p "$cfg/providers.d"
chmod 755 "$cfg" "$cfg/providers.d"
cat >"$cfg/providers.d/loop-clone.json" <<JSON
{
  "id": "$(cat /proc/sys/kernel/random/uuid)",
  "name": "loop-clone",
  "type": "system",
  "library": "$build/providers/libsnapset_loop_clone.so",
  "config": { "snapshot_dir": "$work/xfs-store/snapshots" }
}
JSON
cat >"$cfg/providers.d/demo-array.json" <<JSON
{
  "id": "$(cat /proc/sys/kernel/random/uuid)",
  "name": "demo-array",
  "type": "hardware",
  "library": "$build/tests/plugins/libscripted_provider.so",
  "config": { "supports": ["naa:$naa"],
              "not_supported_reason": "no LUN of this array has that identity (volume has no matching NAA)" }
}
JSON
chmod 644 "$cfg"/providers.d/*.json

run() {
  say "snapset $*"
  "$snapset" --config-dir "$cfg" --state-dir "$work/state" "$@"
}

run providers list
run volumes show "$work/db" "$work/logs" "$lun"
run providers explain "$work/db" "$work/scratch" "$lun"

echo "balance=100" >"$work/db/accounts"
echo "opened account" >"$work/logs/journal"
sync
run create "$work/db" "$work/logs"
set_id="$("$snapset" --state-dir "$work/state" --config-dir "$cfg" --json list |
          sed -n 's/.*"set_id": "\([0-9a-f-]*\)".*/\1/p' | head -n 1)"
snap_id="$("$snapset" --state-dir "$work/state" --config-dir "$cfg" --json list --volume "$work/db" |
           sed -n 's/.*"snapshot_id": "\([0-9a-f-]*\)".*/\1/p' | head -n 1)"

echo "balance=0" >"$work/db/accounts"   # the live volume moves on
run list
run show "$set_id" --timeline

mkdir -p "$work/restore"
run expose "$snap_id" --mount "$work/restore"
say "cat $work/restore/accounts   # the snapshot still holds the old balance"
cat "$work/restore/accounts"
umount "$work/restore"
run unexpose "$snap_id"

say "snapset create $work/db $work/scratch   # scratch: no provider can snapshot it"
"$snapset" --config-dir "$cfg" --state-dir "$work/state" create "$work/db" "$work/scratch" ||
  echo "(exit code $?: refused, and nothing was created)"
run list

run delete --set "$set_id"
run list

# Software copy-on-write: the fallback when no array owns a volume.
cowd_pid=""
stop_cowd() { kill "$cowd_pid" 2>/dev/null; wait "$cowd_pid" 2>/dev/null; }
mkdir -p "$work/cow-mount"
"$build/providers/software-cow/daemon/snapset-cowd" --state-dir "$work/cow-state" \
  --mount "$work/cow-mount" --socket "$work/cowd.sock" >"$work/cowd.log" 2>&1 &
cowd_pid=$!
undo+=("stop_cowd")
for _ in $(seq 100); do grep -q '"ready":true' "$work/cowd.log" && break; sleep 0.1; done
cat >"$cfg/providers.d/software-cow.json" <<JSON
{
  "id": "$(cat /proc/sys/kernel/random/uuid)",
  "name": "software-cow",
  "type": "software",
  "library": "$build/providers/libsnapset_cow_provider.so",
  "config": { "socket": "$work/cowd.sock" }
}
JSON
chmod 644 "$cfg/providers.d/software-cow.json"
export SNAPSET_COWD_SOCKET="$work/cowd.sock"

run cow create demo --size 256M
cow_dev="$(losetup --direct-io=on --find --show "$work/cow-mount/demo/origin")"
undo+=("losetup -d $cow_dev")
mkfs.ext4 -q "$cow_dev"
mkdir -p "$work/cowfs"
mount "$cow_dev" "$work/cowfs"
undo+=("umount $work/cowfs")
echo "version 1" >"$work/cowfs/report.txt"
sync
run volumes show cow:demo
run create cow:demo
cow_snap="$("$snapset" --state-dir "$work/state" --config-dir "$cfg" --json list --volume cow:demo |
            sed -n 's/.*"snapshot_id": "\([0-9a-f-]*\)".*/\1/p' | head -n 1)"
echo "version 2" >"$work/cowfs/report.txt"   # the live volume moves on
sync
mkdir -p "$work/cow-restore"
run expose "$cow_snap" --mount "$work/cow-restore"
say "cat $work/cow-restore/report.txt   # the cow snapshot holds version 1"
cat "$work/cow-restore/report.txt"
umount "$work/cow-restore"
run cow stats demo
run delete "$cow_snap"

echo
echo "demo: done (all loop devices, mounts, snapset-cowd and tgtd are being removed)"
