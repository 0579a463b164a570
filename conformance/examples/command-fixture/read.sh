#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# read: prints the volume's record.
. "$(dirname "$0")/lib.sh"
dd if="${SNAPSET_CONFORMANCE_VOLUME:?}/$RECORD_FILE" bs="$BLOCK" count=1 iflag=direct status=none |
  decode_record
