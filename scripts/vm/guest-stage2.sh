#!/usr/bin/bash
# SPDX-License-Identifier: Apache-2.0
# PID 1 of the test bed's guest, after the initramfs built its root
# (guest-init.sh). Mounts the rest, starts udev, then either runs the run
# folder's script (mode "script") or gives an interactive shell on the
# console (mode "shell"), and powers off. The TESTBED- lines on the console
# carry the guest's uptime, so a slow boot shows where its time went.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin HOME=/root TERM=dumb LANG=C.UTF-8
uptime_s() { cut -d' ' -f1 /proc/uptime; }
off() {
  sync
  /bb/busybox poweroff -f
  echo o >/proc/sysrq-trigger
  sleep 10
}

mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /var
mkdir -p /run/lock /var/lib /var/log /var/tmp /var/cache /dev/pts /dev/shm
ln -s /run /var/run
ln -s /run/lock /var/lock
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
hostname testbed
ip link set lo up
echo "TESTBED-STAGE2 uptime=$(uptime_s) kernel=$(uname -r)"

# The project's trees, read-only, at the paths the host has them at: the
# build tree's absolute paths (test binaries, plugins) work unchanged.
while read -r tag dir; do
  mkdir -p "$dir"
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro,cache=loose "$tag" "$dir" ||
    echo "TESTBED-SHARE-FAILED $dir"
done </mnt/run/shares

# udev makes /dev/disk/by-path and by-id for the iSCSI disks. Only block
# devices are triggered now (a full coldplug takes 30 s under TCG); disks
# that come later arrive as ordinary uevents.
/usr/lib/systemd/systemd-udevd --daemon
udevadm trigger --action=add --subsystem-match=block
udevadm settle --timeout=30
echo "TESTBED-UDEV uptime=$(uptime_s)"

if [[ $(cat /mnt/run/mode) == shell ]]; then
  echo "TESTBED-SHELL: the project's trees are at $(cut -d' ' -f2 /mnt/run/shares | tr '\n' ' ')"
  echo "TESTBED-SHELL: 'poweroff -f' (or Ctrl-A X) ends the guest"
  setsid -c bash -i </dev/ttyS0 >/dev/ttyS0 2>&1
  off
fi

set -a
# shellcheck disable=SC1091
. /mnt/run/env
set +a
export VM_OUT=/mnt/run/out
mapfile -t args </mnt/run/args
echo "TESTBED-SCRIPT-START uptime=$(uptime_s)"
(cd /tmp && bash /mnt/run/script.sh "${args[@]}") >/mnt/run/script.log 2>&1
status=$?
echo "$status" >/mnt/run/status
echo "TESTBED-SCRIPT-END status=$status uptime=$(uptime_s)"
off
