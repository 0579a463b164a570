#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# read_exposed: prints the record in a snapshot. loop-clone exposes the
# snapshot as an ext4 image file; debugfs reads the record file out of it
# without mounting it (read only, no journal replay).
. "$(dirname "$0")/lib.sh"
image=${SNAPSET_CONFORMANCE_EXPOSED:?}
[ -f "$image" ] || { echo "no such exposure: $image" >&2; exit 1; }
debugfs -R "cat /$RECORD_FILE" "$image" 2>/dev/null | decode_record
