#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# residue: what a provider made on the storage's side, one line each: the
# files in the snapshot directory and loop devices attached to them.
. "$(dirname "$0")/lib.sh"
[ -d "$POOL/snapshots" ] || exit 0
find "$POOL/snapshots" -mindepth 1 -printf 'file %P\n' | sort
losetup -l -n -O NAME,BACK-FILE | awk -v d="$POOL/snapshots/" 'index($2, d) == 1 { print "loop " $1 " " $2 }' | sort
