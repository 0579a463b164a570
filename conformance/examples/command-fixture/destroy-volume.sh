#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# destroy: undoes volume $SNAPSET_CONFORMANCE_INDEX; the last one also
# removes the pool.
. "$(dirname "$0")/lib.sh"
lock
teardown_volume "${SNAPSET_CONFORMANCE_INDEX:?}"
teardown_pool_if_unused
