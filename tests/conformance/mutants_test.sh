#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Mutation proof for snapset-conformance: the suite passes the good shim
# (mutant_none, mutant_iscsi_none: the same source with no defect) and
# fails each deliberately broken provider in the case that catches its
# defect. Usage: mutants_test.sh SNAPSET_CONFORMANCE MUTANT_DIR
set -euo pipefail

suite=$1
dir=$(cd "$2" && pwd)  # the iSCSI provider takes only an absolute driver path
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ $(id -u) -ne 0 ]]; then
  echo "conformance_mutants needs root (loop devices, mounts, iSCSI targets)" >&2
  [[ "${CI:-}" == "true" ]] && exit 1
  exit 77
fi

# mutant | fixture | the case that must fail ("-": none may fail) | extra arguments
cases=(
  "none|loop|-|"
  "iscsi_none|mock-swordfish|-|--filter ^(lifecycle|abort|consistency|faults)\."
  "ignores_unknown_flags|loop|abi.unknown-flags|"
  "leaks_abort_prepared|loop|abort.in-prepared|"
  "leaks_abort_committed|loop|abort.in-committed|"
  "aborts_on_bad_order|loop|order.bad-state-matrix|"
  "copy_after_release|loop|consistency.write-order-under-load|"
  "members_apart|mock-swordfish|consistency.write-order-under-load|"
  "slow_commit|loop|window.commit-latency|--commit-fail-ms 1500"
  "forgets_after_reload|loop|lifecycle.list-after-reload|"
  "delete_not_idempotent|loop|idempotency.delete-twice|"
  "wrong_code|loop|idempotency.same-snapshot-id|"
  "logs_secret|loop|secrets.not-logged|--secret hunter2-conformance --filter ^(lifecycle.one-volume|secrets.not-logged)$"
  "ignores_deadline|loop|window.deadline-and-cancel|"
  "leaks_after_fault|mock-swordfish|faults.*|--filter ^faults\.(prepare|post-commit)$"
  # Array drivers (mutant_driver.cc), hosted by the real iSCSI provider.
  "driver:driver_none|mock-swordfish|-|--filter ^(consistency\.write-order-under-load|faults\.(post-commit|delete))$"
  "driver:driver_members_apart|mock-swordfish|consistency.write-order-under-load|"
  "driver:driver_leaks_after_fault|mock-swordfish|faults.*|--filter ^faults\.(post-commit|delete)$"
)

failures=0
printf '%-24s %-16s %-36s %4s  %s\n' mutant fixture "expected to fail" time result
for row in "${cases[@]}"; do
  IFS='|' read -r name fixture expected extra <<<"$row"
  load=--library
  if [[ "$name" == driver:* ]]; then
    name=${name#driver:}
    load=--driver
  fi
  args=(--fixture "$fixture" "$load" "$dir/libmutant_$name.so" -q --json "$work/$name.json")
  more=()
  [[ -n "$extra" ]] && read -r -a more <<<"$extra"
  args+=("${more[@]}")
  # Only the case that must fail runs, unless the row filters itself.
  if [[ "$expected" != "-" && " $extra " != *" --filter "* ]]; then
    args+=(--filter "^${expected//./\\.}\$")
  fi
  start=$SECONDS
  set +e
  "$suite" "${args[@]}" >"$work/$name.out" 2>&1
  status=$?
  set -e
  took=$((SECONDS - start))
  verdict=$(python3 "$here/check_report.py" "$work/$name.json" "$expected" "$status")
  printf '%-24s %-16s %-36s %3ss  %s\n' "$name" "$fixture" "$expected" "$took" "$verdict"
  if [[ "$verdict" != ok:* ]]; then
    failures=$((failures + 1))
    sed 's/^/    /' "$work/$name.out" | tail -20
  fi
done

if ((failures)); then
  echo "FAIL: $failures of ${#cases[@]} rows went wrong"
  exit 1
fi
echo "PASS: the suite passes the good providers and fails every mutant in its case"
