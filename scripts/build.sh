#!/usr/bin/env bash
# Configures (once) and builds snapset into build/. Warnings are errors.
# SNAPSET_BUILD_DIR overrides the folder; SNAPSET_SANITIZE=ON builds with
# ASan and UBSan.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${SNAPSET_BUILD_DIR:-$root/build}"

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSNAPSET_WERROR=ON \
    -DSNAPSET_SANITIZE="${SNAPSET_SANITIZE:-OFF}" >/dev/null
fi
cmake --build "$build" -j"$(nproc)"
