#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# write_exposed: exits 0 when the exposure could be changed (a defect).
# The suite runs as root, which writes any file whatever its mode, so a
# write attempt proves nothing: loop-clone's promise is the image's mode
# (0444, attached with losetup --read-only) and that it is not the origin.
. "$(dirname "$0")/lib.sh"
image=${SNAPSET_CONFORMANCE_EXPOSED:?}
[ -e "$image" ] || { echo "no such exposure: $image" >&2; exit 1; }
mode=$(stat -c %a "$image")
if (( 8#$mode & 8#222 )); then
  echo "$image is mode $mode: writable" >&2
  exit 0
fi
if [ "$(stat -c %i "$image")" = "$(stat -c %i "$POOL/vol-${SNAPSET_CONFORMANCE_INDEX:?}.img")" ]; then
  echo "$image is the volume's own backing file" >&2
  exit 0
fi
exit 1
