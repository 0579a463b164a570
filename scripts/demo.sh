#!/usr/bin/env bash
# The main job: one consistent snapshot set across two storage arrays and a
# software copy-on-write volume, taken while applications keep writing.
#
# In a temporary directory it starts
#   - two array simulators, "a" and "b" (snapset-mock-array: Redfish /
#     Swordfish REST over HTTPS with a CA made here, real iSCSI through their
#     own tgtd), with LUNs mapped to this host's initiator;
#   - snapset-cowd, serving cow:db, which carries an ext4 filesystem on a
#     loop device;
# registers the iSCSI hardware provider (both arrays) and the software-cow
# provider, keeps writers busy (a counter written to every LUN in turn over
# iSCSI, files written into the ext4), then shows
#   providers list, providers explain   which provider takes which volume, why
#   create                              one set over both arrays and the cow
#                                       volume: the plan, then the set
#   show --timeline                     the set's timeline, drawn
#   expose + read back                  every snapshot holds one instant
#   delete                              and nothing is left on the arrays
# Everything it started is stopped and removed on exit, also on Ctrl-C.
# Run as root (loop devices, mounts, tgtd). The previous tour of plain
# filesystems and the example provider is scripts/demo-filesystems.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" >/dev/null
build="${SNAPSET_BUILD_DIR:-$root/build}"
snapset="$build/tools/snapset"
mock="$build/providers/mock-array/snapset-mock-array"
cowd="$build/providers/software-cow/daemon/snapset-cowd"
lun_tool="$build/examples/demo/snapset-demo-lun"

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (it makes loop devices, mounts a filesystem and starts tgtd)" >&2
  exit 1
fi

work="$(mktemp -d /tmp/snapset-demo.XXXXXX)"
chmod 755 "$work"
host_iqn="iqn.2026-11.io.snapset:host"  # the initiator name snapset logs in with
array_pids=() writer_pids=() cowd_pid="" loop="" mounts=()

cleanup() {
  set +e
  trap - INT TERM HUP
  for pid in "${writer_pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[$i]}" 2>/dev/null; done
  [ -n "$loop" ] && losetup -d "$loop"
  [ -n "$cowd_pid" ] && { kill "$cowd_pid"; wait "$cowd_pid"; } 2>/dev/null
  # An array stops its own tgtd on SIGTERM.
  for pid in "${array_pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${array_pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted; cleaning up"; exit 130' INT TERM HUP

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
note() { printf '\033[2m# %s\033[0m\n' "$*"; }
run() {
  say "snapset $*"
  "$snapset" --config-dir "$work/config" --state-dir "$work/state" --initiator-iqn "$host_iqn" "$@"
}
quiet() { "$snapset" --config-dir "$work/config" --state-dir "$work/state" --initiator-iqn "$host_iqn" "$@" 2>/dev/null; }

# --------------------------------------------------------------- the arrays
# A CA of our own and a certificate for 127.0.0.1: TLS verification stays on.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=snapset demo CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$work/array.key" -out "$work/array.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$work/san.ext"
openssl x509 -req -in "$work/array.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 1 -extfile "$work/san.ext" -out "$work/array.pem" 2>/dev/null

declare -A rest portal token
start_array() {
  local name="$1"
  "$mock" --listen 127.0.0.1:0 --iscsi-portal 127.0.0.1:0 --state-dir "$work/array-$name" \
    --name "$name" --tls-cert "$work/array.pem" --tls-key "$work/array.key" \
    >"$work/array-$name.ready" 2>"$work/array-$name.log" &
  array_pids+=($!)
  for _ in $(seq 150); do grep -q '"ready"' "$work/array-$name.ready" 2>/dev/null && break; sleep 0.1; done
  rest[$name]="$(jq -r .rest "$work/array-$name.ready")"
  portal[$name]="$(jq -r .iscsi_portal "$work/array-$name.ready")"
  token[$name]="$(curl -sS --cacert "$work/ca.pem" -D - -o /dev/null \
    -d '{"UserName":"admin","Password":"admin"}' "${rest[$name]}/redfish/v1/SessionService/Sessions" |
    sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: *\([^[:space:]]*\).*/\1/p')"
}
api() {  # api ARRAY METHOD PATH [BODY]
  curl -sS --fail-with-body --cacert "$work/ca.pem" -H "X-Auth-Token: ${token[$1]}" -X "$2" \
    ${4:+-d "$4"} "${rest[$1]}$3"
}
# make_luns ARRAY NAME...: volumes of 64 MiB, mapped as LUNs 1..N to this
# host; prints their iscsi:// URLs.
make_luns() {
  local array="$1" ids=() body
  shift
  for name in "$@"; do
    ids+=("$(api "$array" POST /redfish/v1/Storage/array/Volumes \
      "{\"Name\":\"$name\",\"CapacityBytes\":67108864}" | jq -r '."@odata.id"')")
  done
  body="$(printf '%s\n' "${ids[@]}" | jq -R '{Volume: {"@odata.id": .}}' | jq -s \
    --arg iqn "$host_iqn" '{Name: "host", VolumeInfo: ., Oem: {Snapset: {InitiatorIqn: $iqn}}}')"
  api "$array" POST /redfish/v1/Fabrics/iSCSI/Connections "$body" |
    jq -r --arg portal "${portal[$array]}" \
      '.Oem.Snapset.IscsiTarget as $t | .VolumeInfo[] | "iscsi://\($portal)/\($t)/\(.LUN)"'
}

start_array a
start_array b
mapfile -t luns_a < <(make_luns a orders ledger)
mapfile -t luns_b < <(make_luns b audit)
note "array a at ${rest[a]} (iSCSI ${portal[a]}): LUNs orders, ledger"
note "array b at ${rest[b]} (iSCSI ${portal[b]}): LUN audit"

# ------------------------------------------------------- snapset-cowd + ext4
mkdir -p "$work/cow-mount" "$work/config/providers.d"
"$cowd" --state-dir "$work/cow-state" --mount "$work/cow-mount" --socket "$work/cowd.sock" \
  >"$work/cowd.log" 2>&1 &
cowd_pid=$!
for _ in $(seq 100); do grep -q '"ready":true' "$work/cowd.log" && break; sleep 0.1; done

# ------------------------------------------------------ registering providers
printf '{"UserName":"admin","Password":"admin"}\n' >"$work/config/array.cred"
chmod 600 "$work/config/array.cred"
chmod 755 "$work/config" "$work/config/providers.d"
jq -n --arg iqn "$host_iqn" --arg ra "${rest[a]}" --arg rb "${rest[b]}" \
  --arg pa "${portal[a]}" --arg pb "${portal[b]}" --arg cred "$work/config/array.cred" \
  --arg ca "$work/ca.pem" --arg lib "$build/providers/libsnapset_iscsi_provider.so" '
  {id: "1b4e28ba-2fa1-41d2-883f-0016d3cca427", name: "iscsi", type: "hardware", library: $lib,
   config: {initiator_iqn: $iqn, arrays: [
     {name: "a", driver: "swordfish", rest_url: $ra, credentials_file: $cred, ca_file: $ca,
      portals: [$pa]},
     {name: "b", driver: "swordfish", rest_url: $rb, credentials_file: $cred, ca_file: $ca,
      portals: [$pb]}]}}' >"$work/config/providers.d/iscsi.json"
jq -n --arg lib "$build/providers/libsnapset_cow_provider.so" --arg sock "$work/cowd.sock" '
  {id: "6fa459ea-ee8a-3ca4-894e-db77e160355e", name: "software-cow", type: "software",
   library: $lib, config: {socket: $sock}}' >"$work/config/providers.d/software-cow.json"
chmod 644 "$work/config/providers.d/"*.json
export SNAPSET_COWD_SOCKET="$work/cowd.sock"

quiet cow create db --size 128M >/dev/null
loop="$(losetup --direct-io=on --find --show "$work/cow-mount/db/origin")"
mkfs.ext4 -q "$loop"
mkdir -p "$work/db"
mount "$loop" "$work/db"
mounts+=("$work/db")

# ----------------------------------------------------------------- writers
note "writers: a counter to every LUN in turn over iSCSI; files into the ext4 on cow:db"
"$lun_tool" write --initiator "$host_iqn" --status "$work/lun-writer.round" \
  "${luns_a[@]}" "${luns_b[@]}" >"$work/lun-writer.log" 2>&1 &
writer_pids+=($!)
(
  i=0
  while :; do
    i=$((i + 1))
    printf 'file %d\n' "$i" >"$work/db/file-$((i % 500))"
    printf '%d\n' "$i" >"$work/db/counter.new" && mv "$work/db/counter.new" "$work/db/counter"
  done
) &
writer_pids+=($!)
sleep 1

# -------------------------------------------------------------- the tour
run providers list
run providers explain "${luns_a[@]}" "${luns_b[@]}" "$work/db"

note "writer round before the set: $(cat "$work/lun-writer.round")"
run create "${luns_a[@]}" "${luns_b[@]}" "$work/db"
note "writer round after the set:  $(cat "$work/lun-writer.round") (it never stopped)"

set_id="$(quiet --json list | jq -r '.snapshots[0].set_id')"
run show "$set_id" --timeline

# ------------------------------------------------------------ read back
snapshot_of() { quiet --json list --set "$set_id" | jq -r --arg v "$1" \
  '.snapshots[] | select(.volume == $v) | .snapshot_id'; }
exposed=()  # snapshot ids
exposed_as=()  # filled by expose_all: the snapshots' iscsi:// URLs
expose_all() {  # expose_all URL...: exposes the snapshots of these LUNs
  exposed_as=()
  for url in "$@"; do
    local id
    id="$(snapshot_of "$url")"
    exposed+=("$id")
    exposed_as+=("$(quiet --json expose "$id" | jq -r .exposed_as)")
  done
}
say "snapset expose ... for every LUN snapshot of array a; snapset-demo-lun check"
expose_all "${luns_a[@]}"
"$lun_tool" check --initiator "$host_iqn" "${exposed_as[@]}"
say "snapset expose ... for the LUN snapshot of array b; snapset-demo-lun check"
expose_all "${luns_b[@]}"
"$lun_tool" check --initiator "$host_iqn" "${exposed_as[@]}"
note "each array cut its LUNs at one instant inside the commit window; the live LUNs"
note "have moved on (round $(cat "$work/lun-writer.round")). The two arrays cut at their own"
note "instants: nothing holds writes to a LUN reached over libiscsi (the plan says"
note "crash-consistent), while the ext4 was frozen for the whole window"

cow_snap="$(snapshot_of "$work/db")"
mkdir -p "$work/db-snapshot"
run expose "$cow_snap" --mount "$work/db-snapshot"
mounts+=("$work/db-snapshot")
say "cat $work/db-snapshot/counter   # the ext4 as it was when frozen"
cat "$work/db-snapshot/counter"
note "live counter now: $(cat "$work/db/counter")"
umount "$work/db-snapshot"
unset 'mounts[${#mounts[@]}-1]'

# ------------------------------------------------------------- clean-up
for id in "${exposed[@]}" "$cow_snap"; do quiet unexpose "$id" >/dev/null; done
run delete --set "$set_id"
say "GET /mock/state on both arrays: snapshots, groups and connections left"
for array in a b; do
  api "$array" GET /mock/state | jq -c --arg a "$array" '{array: $a,
    snapshots: [.Volumes[] | select(.SourceId != null)] | length,
    groups: (.ConsistencyGroups | length),
    connections: [.Exposures[] | select(.Name != "host")] | length}'
done

echo
echo "demo: done (writers, mounts, the loop device, snapset-cowd and both arrays are being stopped)"
