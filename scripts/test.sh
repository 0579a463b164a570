#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs every test with
# ctest. Run as root (CI does): loop devices, mounts and tgtd need it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
cd "${SNAPSET_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j"$(nproc)" "$@"
