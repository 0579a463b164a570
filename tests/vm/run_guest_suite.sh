#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The ctest entry `guest_suite`: boots the real-kernel test bed once and runs
# every guest test in it (tests/vm/guest_suite.sh).
#
#   run_guest_suite.sh SOURCE_DIR BUILD_DIR ENV_FILE NAME=PROGRAM...
#
# A missing piece (qemu, busybox-static, open-iscsi, udev, tgt, the kernel
# package) is a failure in CI (CI=true) and a skip (exit 77) elsewhere, with
# what to install either way.
set -euo pipefail
src=$1 build=$2
shift 2

missing=()
for need in qemu-system-x86_64:qemu-system-x86 iscsiadm:open-iscsi iscsid:open-iscsi \
  tgtd:tgt udevadm:udev; do
  command -v "${need%%:*}" >/dev/null 2>&1 || missing+=("${need#*:}")
done
[[ -x /bin/busybox ]] || missing+=(busybox-static)
[[ -x /usr/lib/systemd/systemd-udevd ]] || missing+=(udev)
[[ $(id -u) -eq 0 ]] || missing+=("root (tgtd and the guest's iSCSI host run as root)")
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "guest suite needs: ${missing[*]} (scripts/install-deps.sh installs them)" >&2
  [[ ${CI:-} == true ]] && exit 1
  exit 77
fi

testbed=$src/scripts/vm/testbed.sh
if ! "$testbed" prepare; then
  echo "guest suite: the test bed could not be prepared (above: what is missing)" >&2
  [[ ${CI:-} == true ]] && exit 1
  exit 77
fi

shares=(--share "$src")
case $(realpath "$build")/ in
  "$(realpath "$src")"/*) ;;  # the build tree is inside the source tree
  *) shares+=(--share "$build") ;;
esac
exec "$testbed" run "${shares[@]}" "$src/tests/vm/guest_suite.sh" "$@"
