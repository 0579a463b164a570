#!/usr/bin/env bash
# The main job, for now: build snapset, then show it choosing providers for
# real volumes:
#   - an ext4 filesystem on a loop device whose backing file lives on XFS (so
#     the example loop-clone provider can snapshot it with FICLONE);
#   - an ext4 filesystem on a loop device over a file on the root filesystem
#     (which cannot clone files: loop-clone explains why it declines);
#   - a real iSCSI LUN served by a private tgtd on loopback, with its own NAA.
# Providers registered: loop-clone (examples/minimal-provider, type system)
# and "demo-array", the scriptable test provider standing in, until the
# iSCSI hardware provider lands, for an array that owns exactly that LUN's NAA.
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
loop_mount "$work/logs.img" 64M ext4 "$work/logs"                  # volume 2
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

say snapset --config-dir "$cfg" providers list
"$snapset" --config-dir "$cfg" providers list
say snapset volumes show "$work/db" "$work/logs" "$lun"
"$snapset" volumes show "$work/db" "$work/logs" "$lun"
say snapset --config-dir "$cfg" providers explain "$work/db" "$work/logs" "$lun"
"$snapset" --config-dir "$cfg" providers explain "$work/db" "$work/logs" "$lun"
say snapset --config-dir "$cfg" providers explain "$lun" --exclude demo-array
"$snapset" --config-dir "$cfg" providers explain "$lun" --exclude demo-array
echo
echo "demo: done (all loop devices, mounts and tgtd are being removed)"
