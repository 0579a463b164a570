#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# create: makes volume $SNAPSET_CONFORMANCE_INDEX and prints its name (the
# mount point). A failure undoes what it made.
. "$(dirname "$0")/lib.sh"
i=${SNAPSET_CONFORMANCE_INDEX:?}
lock
trap 'rc=$?; if [ "$rc" -ne 0 ]; then teardown_volume "$i"; teardown_pool_if_unused; fi' EXIT
ensure_pool
truncate -s 64M "$POOL/vol-$i.img"
losetup --find --show "$POOL/vol-$i.img" >"$W/vol-$i.dev"
# No lazy initialisation: a background thread writing inode tables would
# slow every freeze of the run.
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$(cat "$W/vol-$i.dev")"
mkdir -p "$W/vol-$i"
mount -t ext4 "$(cat "$W/vol-$i.dev")" "$W/vol-$i"
# Allocated now, so that every record overwrites the same block in place.
dd if=/dev/zero of="$W/vol-$i/$RECORD_FILE" bs="$BLOCK" count=1 conv=fsync status=none
echo "$W/vol-$i"
