#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs INSIDE the test bed's guest (scripts/vm/testbed.sh run): readies the
# guest as an iSCSI host (iscsi_tcp, iscsid, this host's initiator name),
# then runs each guest test program, each bounded by its own timeout, and
# exits 0 only when all passed.
#
#   guest_suite.sh ENV_FILE NAME=PROGRAM...
#
# ENV_FILE holds the variables the tests need (written by CMake: the thaw
# guard, the initiator name); each NAME's log goes to $VM_OUT/NAME.log.
set -uo pipefail
env_file=$1
shift
set -a
# shellcheck disable=SC1090
. "$env_file"
set +a
per_test_timeout=${GUEST_TEST_TIMEOUT:-400}
now() { cut -d' ' -f1 /proc/uptime; }
echo "guest suite on $(uname -r), $(nproc) cpus; uptime $(now) s"

modprobe -a iscsi_tcp sd_mod ext4 loop || { echo "FAIL: modprobe"; exit 1; }
# Open-iSCSI logs in with the name in initiatorname.iscsi: the one the
# tests' arrays map their LUNs to (the /etc overlay is the guest's own).
echo "InitiatorName=$SNAPSET_GUEST_INITIATOR" >/etc/iscsi/initiatorname.iscsi
# iscsid.conf's startup command goes through systemctl, which the guest lacks.
iscsid || { echo "FAIL: iscsid did not start"; exit 1; }
for _ in $(seq 50); do iscsiadm -m session >/dev/null 2>&1; [[ $? -ne 20 ]] && break; sleep 0.1; done

failed=()
for entry in "$@"; do
  name=${entry%%=*}
  program=${entry#*=}
  start=$(now)
  echo "---- $name (uptime $start s)"
  timeout -k 10 "$per_test_timeout" "$program" --report_level=short --log_level=message \
    >"$VM_OUT/$name.log" 2>&1
  status=$?
  cat "$VM_OUT/$name.log"
  took=$(awk -v a="$start" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')
  if [[ $status -eq 0 ]]; then
    echo "PASS: $name (${took} s)"
  else
    [[ $status -eq 124 ]] && echo "$name ran past its ${per_test_timeout} s"
    echo "FAIL: $name, exit status $status (${took} s)"
    failed+=("$name")
  fi
  # What a test must never leave behind, whatever it asserted itself.
  leftovers=$(iscsiadm -m session 2>/dev/null; grep -E ' (/tmp/snapset-test-[^ ]*)' /proc/mounts)
  if [[ -n $leftovers ]]; then
    echo "FAIL: $name left sessions or mounts behind:"
    echo "$leftovers"
    failed+=("$name (leftovers)")
    iscsiadm -m node --logoutall=all >/dev/null 2>&1
  fi
done

echo "guest suite done at uptime $(now) s: $(($# - ${#failed[@]})) of $# passed"
[[ ${#failed[@]} -eq 0 ]] || { echo "failed: ${failed[*]}"; exit 1; }
