#!/usr/bin/env bash
# An IHV's path, end to end: install snapset to a prefix, build
# examples/minimal-provider out of tree against it with find_package(snapset),
# check that the plugin exports only its entry point, register it, and see the
# CLI load it. Array drivers over the REST toolkit and a provider over the
# iSCSI LUN toolkit are built against the same prefix, with CMake and with
# pkg-config. As root, also check its verdicts on real loop devices: a loop
# ext4 whose backing file is on xfs (it takes it), and one whose backing file
# is on a filesystem that cannot clone (it refuses, saying why).
#
# usage: out_of_tree_test.sh SOURCE_DIR BUILD_DIR SNAPSET_BINARY
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 SOURCE_DIR BUILD_DIR SNAPSET_BINARY" >&2
  exit 2
fi
SOURCE_DIR=$(realpath "$1")
BUILD_DIR=$(realpath "$2")
SNAPSET=$(realpath "$3")

# snapset loads only registrations and libraries nobody else can write; keep
# everything this test creates at 0755/0644 whatever the caller's umask.
umask 022
TMP=$(mktemp -d "${TMPDIR:-/tmp}/snapset-oot.XXXXXX")

# Undo steps, run in reverse order on exit: "umount PATH" or "detach LOOP".
UNDO_KIND=()
UNDO_ARG=()
cleanup() {
  local rc=$? i
  set +e
  for ((i = ${#UNDO_KIND[@]} - 1; i >= 0; i--)); do
    case ${UNDO_KIND[i]} in
      umount) umount "${UNDO_ARG[i]}" || umount -l "${UNDO_ARG[i]}" ;;
      detach) losetup -d "${UNDO_ARG[i]}" ;;
    esac
  done
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Runs a command quietly; shows its output only when it fails.
quiet() {
  if ! "$@" >"$TMP/last.log" 2>&1; then
    cat "$TMP/last.log" >&2
    fail "command failed: $*"
  fi
}

# ---- install the SDK and build the example as an IHV would ----
echo "== cmake --install $BUILD_DIR --prefix $TMP/prefix"
quiet cmake --install "$BUILD_DIR" --prefix "$TMP/prefix"
# An install to a prefix writes nothing outside it (a packager stages into
# one; a user trying the SDK must not find files in /usr/local or /lib).
[[ -s $BUILD_DIR/install_manifest.txt ]] || fail "cmake --install wrote no install_manifest.txt"
if outside=$(grep -v "^$TMP/prefix/" "$BUILD_DIR/install_manifest.txt"); then
  fail "cmake --install --prefix $TMP/prefix wrote outside the prefix: $outside"
fi

configure_args=(-S "$SOURCE_DIR/examples/minimal-provider" -B "$TMP/build"
                -DCMAKE_PREFIX_PATH="$TMP/prefix")
command -v ninja >/dev/null && configure_args+=(-G Ninja)
# Share the main build's compiler cache, if this user can write to it.
if command -v ccache >/dev/null && cache_dir=$(ccache --get-config cache_dir 2>/dev/null) &&
   mkdir -p "$cache_dir" 2>/dev/null && [[ -w $cache_dir ]]; then
  configure_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
echo "== build examples/minimal-provider out of tree"
quiet cmake "${configure_args[@]}"
quiet cmake --build "$TMP/build"

PLUGIN=$TMP/build/libsnapset_loop_clone.so
[[ -f $PLUGIN ]] || fail "the build made no $PLUGIN"

# The one symbol the host looks up, and nothing else: a provider that exports
# more can clash with the host or another provider. The linker's own markers
# (_init, _edata, ...) are not the plugin's.
echo "== exported symbols"
mapfile -t exported < <(nm -D --defined-only "$PLUGIN" | awk '{print $NF}' | sed 's/@.*//' |
                        grep -vxE '_init|_fini|_edata|_end|__bss_start' || true)
if [[ ${#exported[@]} -ne 1 || ${exported[0]} != snapset_provider_entry ]]; then
  printf '  %s\n' "${exported[@]}" >&2
  fail "$PLUGIN exports ${#exported[@]} symbols; it must export only snapset_provider_entry"
fi

# ---- an array driver over the REST toolkit, with CMake and with pkg-config ----
# exports_only LIBRARY SYMBOL: fails unless LIBRARY exports exactly SYMBOL.
exports_only() {
  local exported
  mapfile -t exported < <(nm -D --defined-only "$1" | awk '{print $NF}' | sed 's/@.*//' |
                          grep -vxE '_init|_fini|_edata|_end|__bss_start' || true)
  if [[ ${#exported[@]} -ne 1 || ${exported[0]} != "$2" ]]; then
    printf '  %s\n' "${exported[@]}" >&2
    fail "$1 exports ${#exported[@]} symbols; it must export only $2"
  fi
}
# build_out_of_tree SOURCE BUILD: configures SOURCE against the installed
# prefix, as a vendor's project, and builds it in BUILD.
build_out_of_tree() {
  local args=("${configure_args[@]}")
  args[1]=$1
  args[3]=$2
  quiet cmake "${args[@]}"
  quiet cmake --build "$2"
}
# build_with_pkg_config LIBRARY SOURCE PACKAGE ENTRY: builds LIBRARY from
# SOURCE with one c++ command and pkg-config PACKAGE, as a build without
# CMake does; it must export ENTRY.
build_with_pkg_config() {
  quiet c++ -std=c++20 -shared -fPIC -fvisibility=hidden -o "$1" "$2" \
    $(PKG_CONFIG_PATH=$TMP/prefix/lib/pkgconfig pkg-config --cflags --libs "$3") \
    -Wl,--no-undefined
  nm -D --defined-only "$1" | grep -q " $4\$" || fail "the pkg-config build of $1 exports no $4"
}
echo "== build an array driver out of tree: find_package(snapset COMPONENTS array rest)"
build_out_of_tree "$SOURCE_DIR/tests/sdk/oot-rest-driver" "$TMP/driver-build"
exports_only "$TMP/driver-build/liboot_rest_driver.so" snapset_array_driver_entry
echo "== the bundled Swordfish driver, built from its folder against the installed prefix"
build_out_of_tree "$SOURCE_DIR/providers/iscsi/swordfish" "$TMP/swordfish-build"
exports_only "$TMP/swordfish-build/array-drivers/libsnapset_array_swordfish.so" \
  snapset_array_driver_entry
echo "== examples/twophase-driver, built out of tree against the installed prefix"
build_out_of_tree "$SOURCE_DIR/examples/twophase-driver" "$TMP/twophase-build"
exports_only "$TMP/twophase-build/libsnapset_array_twophase.so" snapset_array_driver_entry
echo "== the same small driver with pkg-config snapset-rest"
build_with_pkg_config "$TMP/liboot_pc.so" "$SOURCE_DIR/tests/sdk/oot-rest-driver/oot_rest_driver.cc" \
  snapset-rest snapset_array_driver_entry

# ---- a whole provider over the iSCSI LUN toolkit (libiscsi found for it) ----
echo "== build a provider out of tree: find_package(snapset COMPONENTS provider iscsi)"
build_out_of_tree "$SOURCE_DIR/tests/sdk/oot-iscsi-provider" "$TMP/iscsi-build"
exports_only "$TMP/iscsi-build/liboot_iscsi_provider.so" snapset_provider_entry
echo "== the same provider with pkg-config snapset-iscsi"
build_with_pkg_config "$TMP/liboot_iscsi_pc.so" \
  "$SOURCE_DIR/tests/sdk/oot-iscsi-provider/oot_iscsi_provider.cc" snapset-iscsi \
  snapset_provider_entry
# The toolkit is built with hidden visibility: none of its functions leaks
# into the vendor's library, even without a version script (instances of
# standard templates do: that is what the version script is for).
if leaked=$(nm -DC --defined-only "$TMP/liboot_iscsi_pc.so" | grep -E ' [A-Za-z] snapset::iscsi::'); then
  fail "the iSCSI LUN toolkit exports symbols from a vendor's library: $leaked"
fi
# An unknown component is refused by find_package, naming it.
mkdir -p "$TMP/bad-component"
cat >"$TMP/bad-component/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(bad LANGUAGES CXX)
find_package(snapset REQUIRED COMPONENTS nosuch)
CMAKE
if cmake -S "$TMP/bad-component" -B "$TMP/bad-build" -DCMAKE_PREFIX_PATH="$TMP/prefix" \
     >"$TMP/bad.log" 2>&1; then
  fail "find_package(snapset COMPONENTS nosuch) succeeded"
fi
grep -q "nosuch" "$TMP/bad.log" || fail "find_package does not name the unknown component"

# ---- register it and let the CLI load it ----
CONFIG=$TMP/config
SNAPSHOT_DIR=$TMP/snapshots
mkdir -p "$CONFIG/providers.d" "$SNAPSHOT_DIR"
chmod 0755 "$CONFIG" "$CONFIG/providers.d"

# register SNAPSHOT_DIR: (re)writes providers.d/loop-clone.json.
register() {
  local uuid
  uuid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$CONFIG/providers.d/loop-clone.json" <<EOF
{
  "id": "$uuid",
  "name": "loop-clone",
  "type": "system",
  "library": "$PLUGIN",
  "priority": 0,
  "config": {"snapshot_dir": "$1"}
}
EOF
  chmod 0644 "$CONFIG/providers.d/loop-clone.json"
}
register "$SNAPSHOT_DIR"

echo "== snapset providers list"
out=$("$SNAPSET" --config-dir "$CONFIG" providers list) || fail "providers list failed: $out"
echo "$out"
grep -q "loop-clone" <<<"$out" || fail "providers list does not show loop-clone"
out=$("$SNAPSET" --config-dir "$CONFIG" --json providers list) ||
  fail "--json providers list failed: $out"
grep -q '"name": *"loop-clone"' <<<"$out" || fail "--json providers list lacks loop-clone: $out"

# ---- verdicts on real loop devices ----
if [[ $(id -u) -ne 0 ]]; then
  [[ ${CI:-} == true ]] && fail "CI must run this test as root (it needs loop devices)"
  echo "SKIP: the loop-device check needs root for loop devices"
  exit 0
fi
if ! command -v mkfs.xfs >/dev/null; then
  [[ ${CI:-} == true ]] && fail "mkfs.xfs is missing (install xfsprogs: scripts/install-deps.sh)"
  echo "SKIP: the loop-device check needs mkfs.xfs (apt-get install xfsprogs)"
  exit 0
fi

# attach FILE: attaches a loop device to FILE; its path is in $LOOP.
attach() {
  LOOP=$(losetup --find --show "$1")
  UNDO_KIND+=(detach)
  UNDO_ARG+=("$LOOP")
}
# mount_at DEVICE DIR [mount options...]
mount_at() {
  local device=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  mount "$@" "$device" "$dir"
  UNDO_KIND+=(umount)
  UNDO_ARG+=("$dir")
}
# make_loop_ext4 BACKING_FILE MOUNT_DIR: a 64 MiB ext4 on a loop device.
make_loop_ext4() {
  truncate -s 64M "$1"
  attach "$1"
  quiet mkfs.ext4 -q "$LOOP"
  mount_at "$LOOP" "$2"
}

echo "== a loop ext4 whose backing file is on xfs"
truncate -s 300M "$TMP/xfs.img"
quiet mkfs.xfs -q "$TMP/xfs.img"
attach "$TMP/xfs.img"
mount_at "$LOOP" "$TMP/xfs"
mkdir -p "$TMP/xfs/snapshots"
make_loop_ext4 "$TMP/xfs/backing.img" "$TMP/vol"
register "$TMP/xfs/snapshots"

out=$("$SNAPSET" --config-dir "$CONFIG" providers explain "$TMP/vol") ||
  fail "providers explain $TMP/vol failed: $out"
echo "$out"
grep -q "loop-clone takes it" <<<"$out" || fail "loop-clone did not take $TMP/vol"

# The second backing file must sit where files cannot be cloned. $TMP is
# usually on the root filesystem; if that one can clone, use a tmpfs.
echo "== a loop ext4 whose backing file is on a filesystem that cannot clone"
plain=$TMP/plain
mkdir -p "$plain"
case $(stat -f -c %T "$TMP") in
  xfs | btrfs) mount_at tmpfs "$plain" -t tmpfs -o size=80M ;;
esac
make_loop_ext4 "$plain/backing.img" "$TMP/vol2"
out=$("$SNAPSET" --config-dir "$CONFIG" providers explain "$TMP/vol2") ||
  fail "providers explain $TMP/vol2 failed: $out"
echo "$out"
if grep -q "loop-clone takes it" <<<"$out"; then fail "loop-clone took $TMP/vol2"; fi
grep "loop-clone" <<<"$out" | grep -q "not supported" ||
  fail "explain does not say loop-clone does not support $TMP/vol2"
grep -q "cannot clone files (FICLONE" <<<"$out" || fail "explain does not give the FICLONE reason"

echo "PASS"
