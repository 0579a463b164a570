#!/usr/bin/env bash
# The snapset CLI as a new user meets it: usage errors, exit codes, messages,
# tables and JSON. Usage: cli_test.sh SNAPSET_BINARY TEST_PLUGIN_DIR
set -uo pipefail
snapset="$(realpath "$1")"
plugins="$(realpath "$2")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0
passes=0

# expect CODE PATTERN -- ARGS...: runs snapset ARGS, checks the exit code and
# that stdout+stderr match the extended regex PATTERN.
expect() {
  local code="$1" pattern="$2"
  shift 3
  local out rc
  out="$("$snapset" "$@" 2>&1)"
  rc=$?
  if [ "$rc" -ne "$code" ] || ! grep -Eq -- "$pattern" <<<"$out"; then
    echo "FAIL: snapset $* -> exit $rc (want $code), output:"
    sed 's/^/    /' <<<"$out"
    echo "    (wanted /$pattern/)"
    failures=$((failures + 1))
  else
    passes=$((passes + 1))
  fi
}

cfg="$tmp/config"
mkdir -p "$cfg/providers.d"
chmod 755 "$cfg" "$cfg/providers.d"

# ---- usage ----
expect 2 "usage error" -- 
expect 2 "usage error" -- providers
expect 2 "usage error.*bogus" -- providers bogus
expect 2 "usage error" -- volumes show
expect 2 "usage error.*--frobnicate" -- --frobnicate providers list
expect 0 "Exit codes: 0 ok" -- --help
expect 0 "explain" -- providers --help

# ---- configuration ----
expect 4 "config directory /nonexistent/cfg does not exist" -- --config-dir /nonexistent/cfg providers list
expect 0 "No providers registered in $cfg/providers.d" -- --config-dir "$cfg" providers list

cat >"$cfg/providers.d/bad.json" <<'JSON'
{ "id": "11111111-1111-4111-8111-111111111111", "name": "x", "type": "firmware",
  "library": "nowhere.so" }
JSON
chmod 644 "$cfg/providers.d/bad.json"
expect 17 "$cfg/providers.d/bad.json: unknown provider type \"firmware\"" -- --config-dir "$cfg" providers list
expect 17 "\"code\": \"config\"" -- --config-dir "$cfg" --json providers list
rm "$cfg/providers.d/bad.json"

cat >"$cfg/providers.d/array.json" <<JSON
{ "id": "11111111-1111-4111-8111-111111111111", "name": "demo-array", "type": "hardware",
  "library": "$plugins/libscripted_provider.so",
  "config": { "supports": ["name:cow:array-lun"], "not_supported_reason": "no array LUN has this identity" } }
JSON
cat >"$cfg/providers.d/cow.json" <<JSON
{ "id": "22222222-2222-4222-8222-222222222222", "name": "cow-like", "type": "software",
  "library": "$plugins/libscripted_provider.so", "priority": 5,
  "config": { "supports": ["kind:cow"] } }
JSON
chmod 644 "$cfg"/providers.d/*.json

expect 0 "1 +demo-array +hardware" -- --config-dir "$cfg" providers list
expect 0 "2 +cow-like +software +5" -- --config-dir "$cfg" providers list
expect 0 "\"name\": \"cow-like\"" -- --config-dir "$cfg" --json providers list

# ---- explain ----
expect 0 "demo-array +hardware +0 +not supported +no array LUN has this identity" -- --config-dir "$cfg" providers explain cow:db
expect 0 "=> cow-like takes it" -- --config-dir "$cfg" providers explain cow:db
expect 0 "=> demo-array takes it" -- --config-dir "$cfg" providers explain cow:array-lun
expect 0 "excluded by policy \(--exclude demo-array\)" -- --config-dir "$cfg" providers explain cow:array-lun --exclude demo-array
expect 0 "pinned to cow-like" -- --config-dir "$cfg" providers explain cow:array-lun --provider cow-like=cow:array-lun
expect 0 "\"verdict\": \"chosen\"" -- --config-dir "$cfg" --json providers explain cow:db
expect 3 "cannot pin unknown provider \"nope\"" -- --config-dir "$cfg" providers explain cow:db --provider nope=cow:db
expect 3 "--provider takes NAME=VOLUME" -- --config-dir "$cfg" providers explain cow:db --provider cow-like
expect 3 "cannot exclude unknown provider" -- --config-dir "$cfg" providers explain cow:db --exclude nope
expect 4 "no such file, device or mount point: /no/such/volume" -- --config-dir "$cfg" providers explain /no/such/volume
expect 3 "named twice" -- --config-dir "$cfg" providers explain cow:db cow:db

# ---- volumes ----
expect 0 "cow:db +cow" -- volumes show cow:db
expect 0 "\"kind\": \"cow\"" -- --json volumes show cow:db
expect 3 "unsupported URL scheme" -- volumes show nfs://server/export
expect 4 "no such file" -- --json volumes show /no/such/volume

# ---- snapshot sets (cow: volumes have no write hold, so no root needed) ----
st="$tmp/state"
C=(--config-dir "$cfg" --state-dir "$st")
expect 2 "usage error" -- "${C[@]}" create
expect 3 "commit window is 10001 ms; it must be from 1 to 10000 ms" -- "${C[@]}" create cow:db --window-ms 10001
expect 3 "volume cow:db is named twice" -- "${C[@]}" create cow:db cow:db
expect 14 "the set has 3 volumes; the limit is 2" -- "${C[@]}" create cow:a cow:b cow:c --max-volumes 2
expect 4 "no such file, device or mount point: /no/such/volume" -- "${C[@]}" create cow:db /no/such/volume
expect 3 "is not a UUID" -- "${C[@]}" create cow:db --set-id tuesday
expect 6 "no provider supports it" -- "${C[@]}" create cow:db --exclude cow-like
expect 0 "No snapshots" -- "${C[@]}" list
expect 0 "cow:db +cow-like +nothing \(crash-consistent only\)" -- "${C[@]}" create cow:db
expect 0 "Created set [0-9a-f-]+ in" -- "${C[@]}" create cow:logs
expect 0 "cow:db +cow-like" -- "${C[@]}" list --volume cow:db
set_id="$("$snapset" "${C[@]}" --json list --volume cow:db | sed -n 's/.*"set_id": "\([0-9a-f-]*\)".*/\1/p' | head -n 1)"
expect 0 "commit_snapshots" -- "${C[@]}" show "$set_id" --timeline
expect 0 "\"step\": \"commit_snapshots\"" -- "${C[@]}" --json show "$set_id" --timeline
expect 4 "no snapshot or set nope" -- "${C[@]}" show nope
expect 3 "exactly one of" -- "${C[@]}" delete
expect 3 "exactly one of" -- "${C[@]}" delete "$set_id" --oldest cow:db
expect 0 "Deleted set $set_id" -- "${C[@]}" delete --set "$set_id"
expect 0 "the oldest of cow:logs" -- "${C[@]}" delete --oldest cow:logs
expect 4 "no snapshots of cow:logs" -- "${C[@]}" delete --oldest cow:logs
expect 0 "No snapshots" -- "${C[@]}" list
mkdir -p "$cfg/writers.d"
chmod 755 "$cfg/writers.d"
printf '#!/bin/sh\nexit 0\n' >"$cfg/writers.d/10-db"
chmod 644 "$cfg/writers.d/10-db"
expect 3 "10-db" -- "${C[@]}" create cow:db
chmod 755 "$cfg/writers.d/10-db"
expect 0 "Created set" -- "${C[@]}" create cow:db
printf '#!/bin/sh\n[ "$1" = freeze ] && { echo "db refuses to freeze"; exit 3; }\nexit 0\n' >"$cfg/writers.d/10-db"
expect 11 "writer hook .*10-db.* failed.*db refuses to freeze" -- "${C[@]}" create cow:logs
rm -rf "$cfg/writers.d"

# ---- expose: options must fit what the provider exposes ----
# A scripted "array" persists its snapshots (each command is a new process)
# and exposes them as iSCSI URLs, as the iSCSI hardware provider does; a
# second one exposes plain paths. Nothing listens at the URL: these checks
# come before any I/O to it.
xcfg="$tmp/xconfig"
mkdir -p "$xcfg/providers.d"
chmod 755 "$xcfg" "$xcfg/providers.d"
cat >"$xcfg/providers.d/iscsi-array.json" <<JSON
{ "id": "33333333-3333-4333-8333-333333333333", "name": "iscsi-array", "type": "hardware",
  "library": "$plugins/libscripted_provider.so",
  "config": { "supports": ["name:cow:lun"], "state_dir": "$tmp/iscsi-array-state",
              "expose_as": "iscsi://127.0.0.1:3260/iqn.2026-11.io.snapset.test:{id}/0" } }
JSON
cat >"$xcfg/providers.d/plain.json" <<JSON
{ "id": "44444444-4444-4444-8444-444444444444", "name": "plain", "type": "software",
  "library": "$plugins/libscripted_provider.so",
  "config": { "supports": ["name:cow:plain"], "state_dir": "$tmp/plain-state" } }
JSON
chmod 644 "$xcfg"/providers.d/*.json
X=(--config-dir "$xcfg" --state-dir "$tmp/xstate")
mnt="$tmp/mnt"
mkdir -p "$mnt"
chap="$tmp/chap.json"
printf '{"CHAPUsername": "snap", "CHAPPassword": "not-for-your-eyes"}\n' >"$chap"
chmod 644 "$chap"
expect 2 "usage error: --chap-file requires --attach" -- "${X[@]}" expose any-id --chap-file "$chap"
expect 0 "Created set" -- "${X[@]}" create cow:lun
expect 0 "Created set" -- "${X[@]}" create cow:plain
snap_of() {
  "$snapset" "${X[@]}" --json list --volume "$1" |
    sed -n 's/.*"snapshot_id": "\([^"]*\)".*/\1/p' | head -n 1
}
lun_snap="$(snap_of cow:lun)"
plain_snap="$(snap_of cow:plain)"
expect 2 "usage error: snapshot $lun_snap is exposed as iscsi://.*must be attached to this host before it can be mounted: add --attach.*exposure this command made was undone" -- "${X[@]}" expose "$lun_snap" --mount "$mnt"
expect 0 "\"exposed_as\": null" -- "${X[@]}" --json show "$lun_snap"
expect 3 "CHAP file $chap has mode 0644.*chmod 600 $chap" -- "${X[@]}" expose "$lun_snap" --attach --chap-file "$chap"
expect 0 "\"exposed_as\": null" -- "${X[@]}" --json show "$lun_snap"
if [ ! -e /sys/module/iscsi_tcp ]; then
  # This machine's kernel has no iSCSI initiator: the attach fails clearly and
  # the exposure stays, readable with libiscsi, until unexpose.
  expect 15 "exposed as iscsi://127.0.0.1:3260/iqn.2026-11.io.snapset.test:$lun_snap/0, but attaching it to this host failed: .*module iscsi_tcp is missing.*libiscsi.*stays exposed; .snapset unexpose $lun_snap. undoes that" -- "${X[@]}" expose "$lun_snap" --attach
  expect 0 "exposed as  iscsi://127.0.0.1:3260/" -- "${X[@]}" show "$lun_snap"
  expect 0 "Snapshot $lun_snap is no longer exposed" -- "${X[@]}" unexpose "$lun_snap"
  expect 0 "\"exposed_as\": null" -- "${X[@]}" --json show "$lun_snap"
fi
chmod 600 "$chap"
out="$("$snapset" "${X[@]}" expose "$lun_snap" --attach --chap-file "$chap" 2>&1)"
if grep -q "not-for-your-eyes" <<<"$out"; then
  echo "FAIL: the CHAP password was printed:"
  sed 's/^/    /' <<<"$out"
  failures=$((failures + 1))
fi
"$snapset" "${X[@]}" unexpose "$lun_snap" >/dev/null 2>&1
expect 0 "Snapshot $lun_snap is exposed as iscsi://127.0.0.1:3260/iqn.2026-11.io.snapset.test:$lun_snap/0\." -- "${X[@]}" expose "$lun_snap"
expect 0 "no longer exposed" -- "${X[@]}" unexpose "$lun_snap"
expect 2 "usage error: --attach is for iSCSI exposures .iscsi://...., but snapshot $plain_snap is exposed as scripted://$plain_snap; use it directly" -- "${X[@]}" expose "$plain_snap" --attach
expect 0 "\"exposed_as\": null" -- "${X[@]}" --json show "$plain_snap"

# ---- snapset cow: arguments checked before the daemon is asked ----
nodaemon="$tmp/no-cowd.sock"
expect 2 "usage error" -- cow
expect 2 "usage error.*NAME" -- cow create
expect 2 "usage error.*--size excludes --origin" -- cow create db --size 1G --origin /tmp/x
expect 3 "either --size SIZE .* or --origin PATH" -- cow create db --socket "$nodaemon"
expect 3 "--size 12Q is not a size" -- cow create db --size 12Q --socket "$nodaemon"
expect 3 "--diff-max -1G is not a size" -- cow create db --size 1G --diff-max -1G --socket "$nodaemon"
expect 15 "snapset-cowd is not running .*$nodaemon" -- cow create db --size 1G --socket "$nodaemon"
expect 15 "snapset-cowd is not running" -- cow list --socket "$nodaemon"
expect 15 "snapset-cowd is not running" -- --json cow stats db --socket "$nodaemon"
SNAPSET_COWD_SOCKET="$nodaemon" expect 15 "nobody listens on $nodaemon" -- cow list

echo "cli_test: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
