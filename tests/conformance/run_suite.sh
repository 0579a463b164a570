#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs snapset-conformance for a ctest entry: run_suite.sh SUITE ARGS...
# The built-in fixtures need root (loop devices, mounts, tgtd, FUSE). In CI
# (CI=true) a missing prerequisite is a failure; elsewhere the entry is
# skipped, loudly (ctest's SKIP_RETURN_CODE 77), never silently passed.
set -euo pipefail

suite=$1
shift
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIPPED: snapset-conformance's built-in fixtures need root (loop devices, mounts, iSCSI" \
       "targets); run ctest as root to run it" >&2
  [[ "${CI:-}" == "true" ]] && exit 1
  exit 77
fi
set +e
"$suite" "$@"
status=$?
set -e
# 3: the fixture could not start (a tool or kernel feature is missing).
if ((status == 3)) && [[ "${CI:-}" != "true" ]]; then
  echo "SKIPPED: the fixture could not start on this machine (see above)" >&2
  exit 77
fi
exit "$status"
