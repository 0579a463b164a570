#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# snapset's real-kernel test bed: a throw-away QEMU guest running a Debian
# kernel (iscsi_tcp, SCSI, device-mapper, ublk) whose userland is this host's
# own /usr and /etc, shared read-only. The host kernel of the project's
# machines has none of those, so the paths that need them run here.
#
#   testbed.sh prepare
#       Downloads the kernel package (apt-get download: never installed),
#       unpacks it, decompresses its modules, runs depmod and builds the
#       initramfs. Idempotent: a second run does nothing but check.
#   testbed.sh run [--share DIR]... SCRIPT [ARG...]
#       Boots one guest, runs `bash SCRIPT ARG...` in it as root, powers off.
#       Each --share DIR is a host folder shared read-only at the same path
#       (the source and build trees). SCRIPT is copied in, so it may live
#       anywhere. The exit status is the script's; results are in the run
#       folder printed at the end: console.log (host-timestamped serial
#       console), script.log, status, out/ (what the script wrote to
#       $VM_OUT).
#   testbed.sh shell [--share DIR]...
#       Boots the same guest with an interactive bash on the serial console,
#       for debugging (docs/testing.md). `poweroff -f` or Ctrl-A X leaves.
#
# Environment:
#   SNAPSET_VM_DIR   cache and run folders (default /tmp/snapset-vm-$UID)
#   SNAPSET_VM_KERNEL  kernel meta-package (default linux-image-6.12-amd64,
#                    bookworm's 6.12: its 6.1 kernel has no ublk)
#   VM_ACCEL         auto (default: kvm only where hardware virtualisation
#                    really works, else tcg), kvm, tcg
#   VM_MEM (MiB, 2048)  VM_CPUS (2)  VM_TIMEOUT (s, 900: the whole boot)
#   VM_KEEP=1        keep the run folder after a successful run
#
# The guest has no network device: it has only lo, and everything it starts
# listens on 127.0.0.1 inside it. The host is never modified: the guest writes
# to tmpfs overlays, and only the run folder is shared writable.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
VM_DIR=${SNAPSET_VM_DIR:-/tmp/snapset-vm-$(id -u)}
KMETA=${SNAPSET_VM_KERNEL:-linux-image-6.12-amd64}
VM_MEM=${VM_MEM:-2048}
VM_CPUS=${VM_CPUS:-2}
VM_TIMEOUT=${VM_TIMEOUT:-900}
VM_ACCEL=${VM_ACCEL:-auto}

# What the initramfs loads to reach its root: 9p over virtio and overlayfs.
# Their dependencies are found in modules.dep.
ROOT_MODULES="virtio_pci 9pnet_virtio 9p overlay"

say() { printf 'testbed: %s\n' "$*" >&2; }
die() { printf 'testbed: %s\n' "$*" >&2; exit 1; }

# Names the package that provides a missing program, so the fix is one line.
need() {
  local program=$1 package=$2
  command -v "$program" >/dev/null 2>&1 ||
    die "$program is missing: install the $package package (scripts/install-deps.sh does)"
}

# --- prepare ----------------------------------------------------------------

kernel_package() {
  apt-cache depends "$KMETA" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}'
}

# Prints the .ko paths (relative to the module folder) that loading $1 needs,
# dependencies first, each once. Built-in modules print nothing.
declare -A seen=()
module_closure() {
  local name=$1 line path dep
  line=$(grep -E "/${name}\.ko(\.xz|\.zst)?:" "$moddir/modules.dep" || true)
  if [[ -z $line ]]; then
    grep -qE "/${name}\.ko\$" "$moddir/modules.builtin" && return 0
    die "kernel $kver has no module $name"
  fi
  path=${line%%:*}
  [[ -n ${seen[$path]:-} ]] && return 0
  seen[$path]=1
  for dep in ${line#*:}; do
    dep=${dep##*/}
    module_closure "${dep%%.ko*}"
  done
  echo "$path"
}

build_initramfs() {
  local tree=$VM_DIR/initramfs.d path
  rm -rf "$tree"
  mkdir -p "$tree/bb/modules"
  cp /bin/busybox "$tree/bb/busybox"
  : >"$tree/bb/modules.order"
  for name in $ROOT_MODULES; do module_closure "$name"; done >"$VM_DIR/root-modules.txt"
  while read -r path; do
    cp "$moddir/$path" "$tree/bb/modules/"
    echo "${path##*/}" >>"$tree/bb/modules.order"
  done <"$VM_DIR/root-modules.txt"
  { echo "#!/bb/busybox sh"; echo "KVER=$kver"; cat "$here/guest-init.sh"; } >"$tree/init"
  chmod 755 "$tree/init"
  # busybox has cpio, so the host needs no cpio package.
  (cd "$tree" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1) \
    >"$VM_DIR/initramfs.img.new"
  mv "$VM_DIR/initramfs.img.new" "$VM_DIR/initramfs.img"
  rm -rf "$tree"
}

prepare() {
  need qemu-system-x86_64 qemu-system-x86
  need apt-get apt
  need dpkg-deb dpkg
  need depmod kmod
  need xz xz-utils
  [[ -x /bin/busybox ]] && grep -qx cpio <(/bin/busybox --list) ||
    die "/bin/busybox is missing: install the busybox-static package (scripts/install-deps.sh does)"
  mkdir -p "$VM_DIR/downloads"

  local pkg deb stamp
  pkg=$(kernel_package || true)
  if [[ -z $pkg && $(id -u) -eq 0 ]]; then
    say "apt does not know $KMETA yet: apt-get update"
    apt-get update -qq
    pkg=$(kernel_package || true)
  fi
  [[ -n $pkg ]] || die "apt cannot resolve $KMETA to a kernel package (is bookworm-security in /etc/apt/sources.list.d? run apt-get update)"

  deb=$(ls "$VM_DIR/downloads/${pkg}_"*.deb 2>/dev/null | head -n 1 || true)
  if [[ -z $deb ]]; then
    say "downloading $pkg (about 110 MB, not installed)"
    (cd "$VM_DIR/downloads" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null) ||
      die "apt-get download $pkg failed: is Debian's package registry reachable?"
    deb=$(ls "$VM_DIR/downloads/${pkg}_"*.deb | head -n 1)
  fi

  kernel=$VM_DIR/kernel
  if [[ $(cat "$kernel/.unpacked" 2>/dev/null) != "$deb" ]]; then
    say "unpacking $(basename "$deb")"
    rm -rf "$kernel"
    mkdir -p "$kernel"
    dpkg-deb -x "$deb" "$kernel"
    kver=$(ls "$kernel/lib/modules")
    moddir=$kernel/lib/modules/$kver
    # Compressed modules cost the guest's kmod about a second each under
    # TCG: decompress them once here.
    find "$moddir" -name '*.ko.xz' -print0 | xargs -0 -r -n 64 -P "$(nproc)" xz -d
    # The package's postinst would have run depmod; nothing installs it here.
    depmod -b "$kernel" "$kver"
    echo "$deb" >"$kernel/.unpacked"
  fi
  kver=$(ls "$kernel/lib/modules")
  moddir=$kernel/lib/modules/$kver

  # The initramfs depends on the kernel, busybox and guest-init.sh only.
  stamp="$kver $(sha256sum /bin/busybox "$here/guest-init.sh" "$0" | cut -d' ' -f1 | tr '\n' ' ')"
  if [[ ! -f $VM_DIR/initramfs.img || $(cat "$VM_DIR/initramfs.stamp" 2>/dev/null) != "$stamp" ]]; then
    build_initramfs
    echo "$stamp" >"$VM_DIR/initramfs.stamp"
    say "initramfs built: $(du -h "$VM_DIR/initramfs.img" | cut -f1), modules $(tr '\n' ' ' <"$VM_DIR/root-modules.txt" | sed 's#[^ ]*/##g')"
  fi
  say "ready: kernel $kver in $VM_DIR"
}

# --- run --------------------------------------------------------------------

# kvm only where the CPU really offers VT-x or AMD-V to us: this project's
# machines have a /dev/kvm backed by kvm_pvm, which accepts -enable-kvm and
# then fails to run a stock Debian kernel (FIELD-NOTES).
accelerator() {
  case $VM_ACCEL in
    kvm | tcg) echo "$VM_ACCEL" ;;
    auto)
      if [[ -w /dev/kvm && ! -d /sys/module/kvm_pvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
        echo kvm
      else
        echo tcg
      fi
      ;;
    *) die "VM_ACCEL must be auto, kvm or tcg, not '$VM_ACCEL'" ;;
  esac
}

# What a boot needs, checked before a run folder exists: nothing is left
# behind by a run that could not start.
check_boot() {  # check_boot SHARE...
  local share
  kernel=$VM_DIR/kernel
  kver=$(ls "$kernel/lib/modules" 2>/dev/null || true)
  [[ -n $kver && -f $VM_DIR/initramfs.img ]] || die "no kernel in $VM_DIR: run '$0 prepare' first"
  need qemu-system-x86_64 qemu-system-x86
  need timeout coreutils
  accelerator >/dev/null
  for share in "$@"; do
    [[ -d $share ]] || die "--share $share: no such folder"
    case $(realpath "$share") in
      / | /usr | /usr/* | /etc | /etc/* | /proc* | /sys* | /dev*) die "will not share $share" ;;
    esac
  done
}

boot() {  # boot MODE(script|shell) RUN_DIR SHARE...
  local mode=$1 run=$2
  shift 2

  cp "$here/guest-stage2.sh" "$run/stage2.sh"
  echo "$mode" >"$run/mode"
  local fs=security_model=none,multidevs=remap share n=0
  local -a shares=()
  : >"$run/shares"
  for share in "$@"; do
    share=$(realpath "$share")
    n=$((n + 1))
    shares+=(-virtfs "local,path=$share,mount_tag=share$n,readonly=on,$fs")
    echo "share$n $share" >>"$run/shares"
  done

  local accel cpu
  accel=$(accelerator)
  [[ $accel == kvm ]] && cpu=host || cpu=max
  local -a serial=(-serial stdio)
  [[ $mode == shell ]] && serial=(-serial mon:stdio)
  say "booting kernel $kver ($accel, $VM_CPUS cpus, $VM_MEM MiB), run folder $run"

  local -a qemu=(qemu-system-x86_64
    -machine "q35,accel=$accel" -cpu "$cpu" -smp "$VM_CPUS" -m "$VM_MEM"
    -nodefaults -no-user-config -nographic -monitor none -nic none -no-reboot "${serial[@]}"
    -kernel "$kernel/boot/vmlinuz-$kver" -initrd "$VM_DIR/initramfs.img"
    -append "console=ttyS0 loglevel=4 panic=-1 rdinit=/init"
    -virtfs "local,path=/usr,mount_tag=hostusr,readonly=on,$fs"
    -virtfs "local,path=/etc,mount_tag=hostetc,readonly=on,$fs"
    -virtfs "local,path=$kernel/lib/modules/$kver,mount_tag=modules,readonly=on,$fs"
    -virtfs "local,path=$run,mount_tag=run,$fs"
    "${shares[@]}")
  if [[ $mode == shell ]]; then
    "${qemu[@]}"
    return 0
  fi
  local start=${EPOCHREALTIME/./}
  set +e
  # The guest powers itself off when the script ends; the timeout bounds a
  # guest that hangs (a kernel oops, a test stuck in D state).
  timeout -k 5 "$VM_TIMEOUT" "${qemu[@]}" </dev/null 2>&1 |
    while IFS= read -r line; do
      local us=$((${EPOCHREALTIME/./} - start))
      printf '%4d.%03d %s\n' $((us / 1000000)) $((us % 1000000 / 1000)) "${line%$'\r'}"
    done >"$run/console.log"
  local qemu_status=${PIPESTATUS[0]}
  set -e
  [[ $qemu_status -eq 124 ]] && say "the guest did not power off within VM_TIMEOUT=${VM_TIMEOUT}s"
  say "guest ran $(awk -v us=$((${EPOCHREALTIME/./} - start)) 'BEGIN {printf "%.1f", us / 1e6}') s (qemu exit $qemu_status)"
}

run() {  # uses the global shares
  [[ $# -ge 1 ]] || die "usage: $0 run [--share DIR]... SCRIPT [ARG...]"
  [[ -f $1 ]] || die "no script $1"
  check_boot "${shares[@]}"
  local run
  run=$(mktemp -d "$VM_DIR/run.XXXXXX")
  cp "$1" "$run/script.sh"
  shift
  : >"$run/args"
  [[ $# -eq 0 ]] || printf '%s\n' "$@" >"$run/args"
  # The guest starts with an empty environment; these few cross over.
  printf 'CI=%q\n' "${CI:-}" >"$run/env"
  mkdir -p "$run/out"
  boot script "$run" "${shares[@]}"
  # Under TCG the guest kernel has, about once in twenty boots here, oopsed in
  # early boot (an int3 trap in timer code while it patches its own text),
  # before the script started. No test ran, so that boot says nothing about
  # the tests: boot once more, keeping the first console log.
  if [[ ! -e $run/script.log ]] && grep -qE 'Kernel panic|Oops' "$run/console.log"; then
    grep -E 'Kernel panic|Oops' "$run/console.log" >&2 || true
    mv "$run/console.log" "$run/console-first-boot.log"
    say "the guest kernel panicked before the script started; booting once more"
    boot script "$run" "${shares[@]}"
  fi

  grep -E 'TESTBED-|Kernel panic|Oops|BUG:' "$run/console.log" >&2 || true
  echo "==== script.log" >&2
  cat "$run/script.log" >&2 2>/dev/null || say "no script.log: the script never ran (see $run/console.log)"
  local status
  status=$(cat "$run/status" 2>/dev/null || echo 125)
  say "script exit status $status; results in $run"
  if [[ $status -eq 0 && -z ${VM_KEEP:-} ]]; then rm -rf "$run"; fi
  return "$status"
}

shell() {  # uses the global shares
  [[ $# -eq 0 ]] || die "usage: $0 shell [--share DIR]..."
  check_boot "${shares[@]}"
  local run
  run=$(mktemp -d "$VM_DIR/shell.XXXXXX")
  mkdir -p "$run/out"
  : >"$run/env"
  boot shell "$run" "${shares[@]}"
  rm -rf "$run"
}

# run and shell take the same leading --share DIR options.
command=${1:-}
shift || true
shares=()
while [[ ${1:-} == --share ]]; do
  [[ $# -ge 2 ]] || die "--share needs a folder"
  shares+=("$2")
  shift 2
done
case $command in
  prepare) prepare ;;
  run) run "$@" ;;
  shell) shell "$@" ;;
  *) sed -n '4,34p' "$0" >&2; exit 2 ;;
esac
