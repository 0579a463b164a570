#!/usr/bin/env bash
# The whole test suite: installs dependencies, prepares the real-kernel test
# bed, builds, runs every test with ctest (the guest suite included, as the
# entry guest_suite). Run as root (CI does): loop devices, mounts, tgtd and
# the guest's iSCSI need it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
# The guest suite's kernel and initramfs (downloaded once, then cached).
# Outside CI a test bed that cannot be prepared makes guest_suite a skip
# that says why; in CI it is a failure.
"$root/scripts/vm/testbed.sh" prepare || [ "${CI:-}" != true ]
"$root/scripts/build.sh"
cd "${SNAPSET_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j"$(nproc)" "$@"
