#!/usr/bin/env bash
# Installs every Debian 12 package snapset needs to build, test and run its
# demo. Idempotent and non-interactive; run as root. Does nothing (and needs
# no network) when everything is already installed.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config
  # libraries (DESIGN §2)
  libiscsi-dev libcurl4-openssl-dev rapidjson-dev libboost-test-dev
  libcpp-httplib-dev libssl-dev libsqlite3-dev libfuse3-dev libcli11-dev libisal-dev
  # the bundled PostgreSQL writer's client library (writer/postgresql)
  libpq-dev
  # system tools the tests and demo drive for real
  tgt libiscsi-bin fuse3 e2fsprogs xfsprogs btrfs-progs util-linux kmod openssl iproute2
  curl jq
  # the conformance mutants test reads the suite's JSON reports (tests/conformance)
  python3
  # the real databases the writers' tests start (tests/writer): PostgreSQL's
  # server, pgbench and pg_amcheck; the SQLite library is above
  postgresql-15 postgresql-client-15
  # peers the benchmarks measure against (bench/)
  fio qemu-utils
  # the real-kernel test bed (scripts/vm/testbed.sh): the guest runs this
  # host's own Open-iSCSI, udev and tgt; its kernel is downloaded by
  # `testbed.sh prepare`, never installed
  qemu-system-x86 busybox-static open-iscsi udev xz-utils
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run this script as root to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The tgt package starts a system tgtd on the default portal; snapset's tests
# and the mock array start their own instances and do not need it.
# Likewise open-iscsi's iscsid: the test bed's guest runs its own.
for unit in tgt iscsid open-iscsi; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
    systemctl stop "$unit" || true
  fi
done
# Likewise the cluster Debian's postgresql package may create and start:
# the writers' tests start their own servers in temporary directories.
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _port status _rest; do
    if [ "$status" = online ]; then pg_ctlcluster "$version" "$cluster" stop || true; fi
  done
fi
echo "install-deps: done"
