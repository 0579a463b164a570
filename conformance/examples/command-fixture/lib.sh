# SPDX-License-Identifier: Apache-2.0
#
# What the example's commands share. The suite runs each command in this
# directory with SNAPSET_CONFORMANCE_WORK_DIR set to a private directory;
# everything lives there:
#   pool.img, pool/        an xfs (reflink) on a loop device: loop-clone
#                          clones files on it with FICLONE
#   pool/vol-N.img         volume N's backing file (loop device in vol-N.dev)
#   pool/snapshots/        loop-clone's snapshot_dir (see loop-clone.json)
#   vol-N/                 volume N: an ext4 mounted there, its name for snapset
#   vol-N/.snapset-conformance  the record: one 4 KiB block, overwritten in place
set -euo pipefail
export LC_ALL=C

W=${SNAPSET_CONFORMANCE_WORK_DIR:?is set by snapset-conformance}
POOL=$W/pool
RECORD_FILE=.snapset-conformance
BLOCK=4096

# One command at a time changes the pool.
lock() {
  exec 9>"$W/.lock"
  flock 9
}

# Prints the record of the 4 KiB block on stdin: its second line, when the
# first is the marker; nothing when the block holds no record.
decode_record() {
  head -c "$BLOCK" | tr -d '\0' |
    awk 'NR == 1 && $0 != "snapset-conformance" { exit } NR == 2 { print; exit }'
}

ensure_pool() {
  mountpoint -q "$POOL" && return 0
  mkdir -p "$POOL"
  truncate -s 2G "$W/pool.img"
  losetup --find --show "$W/pool.img" >"$W/pool.dev"
  mkfs.xfs -q -f -m reflink=1 "$(cat "$W/pool.dev")"
  mount "$(cat "$W/pool.dev")" "$POOL"
  mkdir -p "$POOL/snapshots"
}

retry_umount() {
  local dir=$1
  mountpoint -q "$dir" || return 0
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    umount "$dir" 2>/dev/null && return 0
    sleep 0.2
  done
  umount -l "$dir"
}

# Undoes volume $1, whatever state a failed create or a crashed case left.
teardown_volume() {
  local i=$1
  local mnt=$W/vol-$i
  if mountpoint -q "$mnt"; then
    fsfreeze -u "$mnt" 2>/dev/null || true # a crashed case may leave a freeze
    retry_umount "$mnt"
  fi
  if [ -f "$W/vol-$i.dev" ]; then
    losetup -d "$(cat "$W/vol-$i.dev")" 2>/dev/null || true
    rm -f "$W/vol-$i.dev"
  fi
  rm -f "$POOL/vol-$i.img"
  rmdir "$mnt" 2>/dev/null || true
}

# Removes the pool once it holds no volume.
teardown_pool_if_unused() {
  compgen -G "$POOL/vol-*.img" >/dev/null && return 0
  if mountpoint -q "$POOL"; then
    # Loop devices a case attached to snapshot images keep the pool busy.
    losetup -l -n -O NAME,BACK-FILE | awk -v d="$POOL/snapshots/" 'index($2, d) == 1 { print $1 }' |
      while read -r dev; do losetup -d "$dev" || true; done
    retry_umount "$POOL"
  fi
  if [ -f "$W/pool.dev" ]; then
    losetup -d "$(cat "$W/pool.dev")" 2>/dev/null || true
    rm -f "$W/pool.dev"
  fi
  rm -f "$W/pool.img"
  rmdir "$POOL" 2>/dev/null || true
}
