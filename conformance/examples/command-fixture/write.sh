#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# write: puts $SNAPSET_CONFORMANCE_RECORD on the volume, durably: one whole
# block with O_DIRECT, then fsync.
. "$(dirname "$0")/lib.sh"
block="snapset-conformance
${SNAPSET_CONFORMANCE_RECORD:?}
"
{
  printf '%s' "$block"
  head -c $((BLOCK - ${#block})) /dev/zero
} | dd of="${SNAPSET_CONFORMANCE_VOLUME:?}/$RECORD_FILE" bs="$BLOCK" count=1 iflag=fullblock \
  oflag=direct conv=notrunc,fsync status=none
