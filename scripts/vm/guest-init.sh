# SPDX-License-Identifier: Apache-2.0
# /init of the test bed's initramfs (busybox sh; testbed.sh prepends the
# shebang and KVER). It builds the guest's root out of the host's folders,
# then hands over to stage2.sh from the run folder:
#   /usr, /etc       host's, read-only over 9p, under a tmpfs overlay (the
#                    guest may write, e.g. /etc/iscsi; the host never changes)
#   /bin /sbin /lib /lib64  -> usr/... (Debian 12 is merged-/usr)
#   /usr/lib/modules/KVER   the downloaded kernel's modules, read-only
#   /mnt/run         the run folder, writable: script in, results out
B=/bb/busybox
fail() { echo "TESTBED-INIT-FAILED: $*"; $B poweroff -f; }

$B mkdir -p /proc /sys /dev /run /tmp /var /usr /etc /root /mnt/run /.host/usr /.host/etc /.rw
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev
while read -r m; do $B insmod "/bb/modules/$m" || fail "insmod $m"; done </bb/modules.order

P9=trans=virtio,version=9p2000.L,msize=512000
$B mount -t 9p -o $P9,ro,cache=loose hostusr /.host/usr || fail "mount host /usr"
$B mount -t 9p -o $P9,ro,cache=loose hostetc /.host/etc || fail "mount host /etc"
$B mount -t tmpfs -o mode=755 tmpfs /.rw
for d in usr etc; do
  $B mkdir -p /.rw/$d/upper /.rw/$d/work
  $B mount -t overlay overlay \
    -o lowerdir=/.host/$d,upperdir=/.rw/$d/upper,workdir=/.rw/$d/work /$d || fail "overlay /$d"
done
for d in bin sbin lib lib64; do $B ln -s usr/$d /$d; done
$B mkdir -p /usr/lib/modules/$KVER
$B mount -t 9p -o $P9,ro,cache=loose modules /usr/lib/modules/$KVER || fail "mount modules"
$B mount -t 9p -o $P9 run /mnt/run || fail "mount the run folder"
[ -x /usr/bin/bash ] || fail "no /usr/bin/bash in the host's /usr"
exec /usr/bin/bash /mnt/run/stage2.sh
