// SPDX-License-Identifier: Apache-2.0
//
// ABI and planning cases: the table, version negotiation, flags, NULL
// members, error messages; is_volume_supported.
#include <cstring>

#include "conformance/suite.hpp"

namespace snapset::conformance {

namespace {

constexpr uint32_t kUnknownFlag = 1u << 31;

std::string Version(uint32_t v) {
  return std::to_string(SNAPSET_ABI_MAJOR(v)) + "." + std::to_string(SNAPSET_ABI_MINOR(v));
}

// Appends "what: answer" to `bad` unless the answer is INVALID_ARGUMENT
// with a message. An OK fails the case at once: the call took effect, and
// the set is no longer where the case thinks it is.
void ExpectRejected(const Answer& a, const std::string& what, std::vector<std::string>* bad) {
  if (a.code == SNAPSET_E_INVALID_ARGUMENT && !a.message.empty()) return;
  bad->push_back(what + " gave " + (a.ok() ? std::string("OK") : a.Describe()));
  if (a.ok()) {
    std::string text;
    for (const auto& b : *bad) text += (text.empty() ? "" : "; ") + b;
    Fail("unknown flag bits must give INVALID_ARGUMENT with a message: " + text);
  }
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : "; ") + s;
  return out;
}

void EntryAndVersion(CaseContext& ctx) {
  const PluginHost& h = ctx.host();
  const snapset_provider_ops& ops = h.ops();
  const uint32_t minor = SNAPSET_ABI_MINOR(h.plugin_abi_version());
  // What a table of each minor must at least hold.
  size_t needed = offsetof(snapset_provider_ops, can_hold_writes);
  if (minor >= 1) needed = offsetof(snapset_provider_ops, list_objects);
  if (minor >= 2) needed = sizeof(snapset_provider_ops);
  if (h.plugin_struct_size() < needed)
    Fail("the table claims ABI " + Version(h.plugin_abi_version()) + " but its struct_size " +
         std::to_string(h.plugin_struct_size()) + " is smaller than that version's " +
         std::to_string(needed) + " bytes");
  struct Required {
    const void* fn;
    const char* name;
  };
  const Required required[] = {
      {reinterpret_cast<const void*>(ops.on_load), "on_load"},
      {reinterpret_cast<const void*>(ops.on_unload), "on_unload"},
      {reinterpret_cast<const void*>(ops.is_volume_supported), "is_volume_supported"},
      {reinterpret_cast<const void*>(ops.begin_prepare_snapshot), "begin_prepare_snapshot"},
      {reinterpret_cast<const void*>(ops.end_prepare_snapshots), "end_prepare_snapshots"},
      {reinterpret_cast<const void*>(ops.pre_commit_snapshots), "pre_commit_snapshots"},
      {reinterpret_cast<const void*>(ops.commit_snapshots), "commit_snapshots"},
      {reinterpret_cast<const void*>(ops.post_commit_snapshots), "post_commit_snapshots"},
      {reinterpret_cast<const void*>(ops.abort_snapshots), "abort_snapshots"},
      {reinterpret_cast<const void*>(ops.delete_snapshot), "delete_snapshot"},
      {reinterpret_cast<const void*>(ops.list_snapshots), "list_snapshots"},
      {reinterpret_cast<const void*>(ops.get_snapshot_properties), "get_snapshot_properties"},
  };
  std::vector<std::string> missing;
  for (const auto& r : required)
    if (!r.fn) missing.push_back(r.name);
  if (!missing.empty()) Fail("required members are NULL: " + Join(missing));
  if ((ops.hold_writes == nullptr) != (ops.release_writes == nullptr))
    Fail("hold_writes and release_writes must both be set or both be NULL");
  if ((ops.list_objects == nullptr) != (ops.remove_object == nullptr))
    Fail("list_objects and remove_object must both be set or both be NULL");
  if ((ops.expose_snapshot == nullptr) != (ops.unexpose_snapshot == nullptr))
    Fail("expose_snapshot and unexpose_snapshot must both be set or both be NULL");
  // The evidence, and what the capability cases will skip.
  std::string offered, absent;
  for (const char* cap : {capability::kExpose, capability::kRevert, capability::kHoldWrites,
                          capability::kFences, capability::kObjects, capability::kChangedBlocks}) {
    std::string& list = ctx.HasCapability(cap) ? offered : absent;
    list += (list.empty() ? "" : ", ") + std::string(cap);
  }
  throw CaseEnd{Verdict::kPass, "ABI " + Version(h.plugin_abi_version()) + ", table of " +
                                    std::to_string(h.plugin_struct_size()) + " bytes; offers " +
                                    (offered.empty() ? "none" : offered) +
                                    "; not offered: " + (absent.empty() ? "none" : absent)};
}

// The provider works with a host table of another minor version.
void OtherHost(CaseContext& ctx, HostFlavour flavour) {
  ctx.Reload(flavour);
  SetRun set = ctx.CreateSet({0});
  if (ctx.Listed(set).size() != 1)
    Fail("list_snapshots does not show the snapshot made with this host table");
  ctx.DeleteSet(set);
}

void StructSizes(CaseContext& ctx) {
  // A host of a later minor passes a longer snapset_volume (members this
  // provider does not know at the end); the answer must not change.
  struct Longer {
    snapset_volume v;
    uint64_t future[4];
  } longer{};
  std::memcpy(&longer.v, ctx.volume(0), sizeof(snapset_volume));
  longer.v.struct_size = sizeof(Longer);
  const Answer normal = ctx.host().IsVolumeSupported(ctx.volume(0));
  const Answer grown = ctx.host().IsVolumeSupported(&longer.v);
  if (normal.code != grown.code)
    Fail("is_volume_supported answers " + normal.Describe() + " for a volume struct of " +
         std::to_string(sizeof(snapset_volume)) + " bytes but " + grown.Describe() +
         " for the same volume in a longer struct (a newer host's)");
  // Properties come back whole (at least ABI 1.0's struct).
  SetRun set = ctx.CreateSet({0});
  SnapshotInfo info;
  int sink_calls = 0;
  Answer a = ctx.host().Properties(set.snapshot_ids[0], &info, &sink_calls);
  if (!a.ok()) Fail("get_snapshot_properties failed: " + a.Describe());
  if (sink_calls != 1)
    Fail("get_snapshot_properties called the sink " + std::to_string(sink_calls) +
         " times; it must call it exactly once");
  if (info.snapshot_id.empty())
    Fail("the properties struct is smaller than ABI 1.0's " +
         std::to_string(sizeof(snapset_snapshot_properties)) + " bytes, or has no snapshot_id");
  ctx.DeleteSet(set);
}

void UnknownFlags(CaseContext& ctx) {
  PluginHost& h = ctx.host();
  std::vector<std::string> bad;
  CallSettings flagged;
  flagged.flags = kUnknownFlag;

  // on_load: a second instance, refused.
  h.Unload();
  Answer load = h.Load(ctx.setup().provider_config, HostFlavour::kCurrent, kUnknownFlag);
  if (load.ok()) h.Unload();
  ExpectRejected(load, "on_load", &bad);
  ctx.Reload();

  ExpectRejected(h.IsVolumeSupported(ctx.volume(0), 0, flagged), "is_volume_supported", &bad);
  // Each event with the flag, in the state where it would otherwise be
  // right; the refused call must not move the set.
  SetRun set;
  set.set_id = CaseContext::NewUuid();
  set.volumes = {0};
  ExpectRejected(h.BeginPrepare(set.set_id, CaseContext::NewUuid(), ctx.volume(0), 0, flagged),
                 "begin_prepare_snapshot", &bad);
  const struct {
    int32_t state;
    Event event;
  } steps[] = {{SNAPSET_STATE_PREPARING, Event::kEndPrepare},
               {SNAPSET_STATE_PREPARED, Event::kPreCommit},
               {SNAPSET_STATE_PRECOMMITTED, Event::kCommit},
               {SNAPSET_STATE_COMMITTED, Event::kPostCommit},
               {SNAPSET_STATE_POSTCOMMITTED, Event::kPostFinal}};
  for (const auto& step : steps) {
    ctx.DriveTo(set, step.state);
    if (step.event == Event::kPostFinal && !h.ops().post_final_commit_snapshots) continue;
    if (step.event == Event::kPostFinal && h.ops().pre_final_commit_snapshots)
      ExpectRejected(h.SetEvent(Event::kPreFinal, set.set_id, flagged), EventName(Event::kPreFinal),
                     &bad);
    ExpectRejected(h.SetEvent(step.event, set.set_id, flagged), EventName(step.event), &bad);
  }
  ctx.DriveTo(set, SNAPSET_STATE_COMPLETE);
  const std::string snap = set.snapshot_ids[0];
  std::vector<SnapshotInfo> listed;
  ExpectRejected(h.List(&listed, flagged), "list_snapshots", &bad);
  SnapshotInfo info;
  ExpectRejected(h.Properties(snap, &info, nullptr, flagged), "get_snapshot_properties", &bad);
  if (h.ops().expose_snapshot) {
    std::string where;
    Answer a = h.Expose(snap, &where, flagged);
    if (a.ok()) (void)h.Unexpose(snap);
    ExpectRejected(a, "expose_snapshot", &bad);
    ExpectRejected(h.Unexpose(snap, flagged), "unexpose_snapshot", &bad);
  }
  if (h.ops().hold_writes) {
    Answer a = h.HoldWrites(ctx.volume(0), flagged);
    if (a.ok()) (void)h.ReleaseWrites(ctx.volume(0));
    ExpectRejected(a, "hold_writes", &bad);
    ExpectRejected(h.ReleaseWrites(ctx.volume(0), flagged), "release_writes", &bad);
  }
  if (h.ops().can_hold_writes)
    ExpectRejected(h.CanHoldWrites(ctx.volume(0), flagged), "can_hold_writes", &bad);
  if (h.ops().list_objects) {
    std::vector<std::string> objects;
    ExpectRejected(h.ListObjects(&objects, flagged), "list_objects", &bad);
  }
  Answer del = h.Delete(snap, flagged);
  ExpectRejected(del, "delete_snapshot", &bad);
  if (!del.ok()) (void)h.Delete(snap);
  // Abort last, on a set of its own.
  SetRun other = ctx.Prepare({0});
  ExpectRejected(h.SetEvent(Event::kAbort, other.set_id, flagged), "abort_snapshots", &bad);
  (void)h.SetEvent(Event::kAbort, other.set_id);
  if (!bad.empty())
    Fail("unknown flag bits must give INVALID_ARGUMENT with a message: " + Join(bad));
}

// A volume with every optional member NULL or 0.
void NullOptionalMembers(CaseContext& ctx) {
  snapset_volume bare{};
  bare.struct_size = sizeof bare;
  bare.kind = ctx.volume(0)->kind;
  bare.name = ctx.volume(0)->name;
  Answer a = ctx.host().IsVolumeSupported(&bare);
  if (!a.ok() && a.message.empty())
    Fail("is_volume_supported of a volume without device, identity or mount gave " + a.Describe() +
         " with no message");
  if (a.ok()) {
    const std::string set_id = CaseContext::NewUuid();
    Answer b = ctx.host().BeginPrepare(set_id, CaseContext::NewUuid(), &bare);
    if (!b.ok() && b.message.empty()) Fail("begin_prepare_snapshot of it gave no message");
    Answer abort = ctx.host().SetEvent(Event::kAbort, set_id);
    if (!abort.ok()) Fail("abort after preparing it failed: " + abort.Describe());
  }
}

void ErrorsHaveMessages(CaseContext& ctx) {
  PluginHost& h = ctx.host();
  const std::string unknown = CaseContext::NewUuid();
  SnapshotInfo info;
  struct Probe {
    std::string what;
    Answer answer;
    int32_t expected;
  };
  std::vector<Probe> probes = {
      {"get_snapshot_properties of an unknown id", h.Properties(unknown, &info),
       SNAPSET_E_NOT_FOUND},
      {"delete_snapshot of an unknown id", h.Delete(unknown), SNAPSET_E_NOT_FOUND},
      {"commit_snapshots of an unknown set", h.SetEvent(Event::kCommit, unknown),
       SNAPSET_E_BAD_STATE},
      {"end_prepare_snapshots of an unknown set", h.SetEvent(Event::kEndPrepare, unknown),
       SNAPSET_E_BAD_STATE},
  };
  snapset_volume nowhere{};
  nowhere.struct_size = sizeof nowhere;
  nowhere.kind = SNAPSET_VOLUME_BLOCK;
  nowhere.name = nowhere.device_path = "/dev/snapset-conformance-no-such-device";
  nowhere.size_bytes = 1 << 20;
  nowhere.block_size = 512;
  probes.push_back({"is_volume_supported of a device that does not exist",
                    h.IsVolumeSupported(&nowhere), SNAPSET_E_VOLUME_NOT_SUPPORTED});
  std::vector<std::string> bad;
  for (const auto& p : probes) {
    if (p.answer.ok())
      bad.push_back(p.what + " gave OK");
    else if (p.answer.message.empty())
      bad.push_back(p.what + " gave " + p.answer.Describe() + " with no message");
    else if (p.answer.code != p.expected)
      bad.push_back(p.what + " gave " + p.answer.Describe() + ", expected " +
                    std::string(CodeName(CodeFromAbi(p.expected))));
  }
  if (!bad.empty()) Fail(Join(bad));
}

// Garbage ids: refused, never a crash (the runner sees a crash).
void GarbageInput(CaseContext& ctx) {
  PluginHost& h = ctx.host();
  const std::string ids[] = {"", "not-a-uuid", "../../etc/passwd", std::string(8192, 'a')};
  std::vector<std::string> bad;
  for (const std::string& id : ids) {
    const std::string shown =
        id.size() > 20 ? id.substr(0, 8) + "... (" + std::to_string(id.size()) + " bytes)"
                       : "\"" + id + "\"";
    const std::string set_id = CaseContext::NewUuid();
    Answer b = h.BeginPrepare(set_id, id, ctx.volume(0));
    if (b.ok()) bad.push_back("begin_prepare_snapshot took snapshot id " + shown);
    (void)h.SetEvent(Event::kAbort, set_id);
    SnapshotInfo info;
    Answer p = h.Properties(id, &info);
    if (p.ok()) bad.push_back("get_snapshot_properties found snapshot id " + shown);
    Answer d = h.Delete(id);
    if (d.ok()) bad.push_back("delete_snapshot deleted snapshot id " + shown);
    for (const Answer* a : {&b, &p, &d})
      if (!a->ok() && a->message.empty())
        bad.push_back("an answer to snapshot id " + shown + " has no message");
  }
  if (!bad.empty()) Fail(Join(bad));
}

void PlanningDeterministic(CaseContext& ctx) {
  for (int i = 0; i < ctx.volume_count(); ++i) {
    Answer first = ctx.host().IsVolumeSupported(ctx.volume(i));
    if (!first.ok())
      Fail("the fixture's volume " + ctx.resolved(i).name +
           " is not supported: " + first.Describe());
    for (int round = 0; round < 2; ++round) {
      Answer again = ctx.host().IsVolumeSupported(ctx.volume(i));
      if (again.code != first.code)
        Fail("is_volume_supported of " + ctx.resolved(i).name + " answered " + first.Describe() +
             ", then " + again.Describe());
    }
  }
}

void RefusalHasReason(CaseContext& ctx) {
  snapset_volume nowhere{};
  nowhere.struct_size = sizeof nowhere;
  nowhere.kind = SNAPSET_VOLUME_BLOCK;
  nowhere.name = nowhere.device_path = "/dev/snapset-conformance-no-such-device";
  nowhere.size_bytes = 1 << 20;
  nowhere.block_size = 512;
  Answer a = ctx.host().IsVolumeSupported(&nowhere);
  if (a.ok()) Fail("is_volume_supported took a block device that does not exist");
  if (a.code != SNAPSET_E_VOLUME_NOT_SUPPORTED && a.code != SNAPSET_E_UNAVAILABLE)
    Fail("a refusal must be VOLUME_NOT_SUPPORTED (or UNAVAILABLE), not " + a.Describe());
  if (a.message.empty()) Fail("the refusal gives no reason (host->set_error)");
  Answer again = ctx.host().IsVolumeSupported(&nowhere);
  if (again.code != a.code) Fail("the refusal is not deterministic: " + again.Describe());
}

const CaseRegistrar registrar({
    {"abi.entry-and-version",
     "the library exports snapset_provider_entry, a table of a major version the host speaks "
     "whose size matches its minor, with every required member",
     "", 60, EntryAndVersion},
    {"abi.host-older-minor",
     "the provider runs under a host of an older minor version (host table 1.0)", "", 120,
     [](CaseContext& c) { OtherHost(c, HostFlavour::kOlderMinor); }},
    {"abi.host-newer-minor",
     "the provider runs under a host of a newer minor version, with members it does not know", "",
     120, [](CaseContext& c) { OtherHost(c, HostFlavour::kNewerMinor); }},
    {"abi.struct-sizes",
     "a longer volume struct from a newer host changes nothing; properties come back whole and "
     "once",
     "", 120, StructSizes},
    {"abi.unknown-flags",
     "every call refuses flag bits it does not know with INVALID_ARGUMENT, so new flags are "
     "never silently ignored",
     "", 120, UnknownFlags},
    {"abi.null-optional-members",
     "a volume whose optional members are NULL gets an answer, not a crash", "", 60,
     NullOptionalMembers},
    {"abi.errors-have-messages",
     "every error comes with a message saying what was wrong, and the documented code", "", 60,
     ErrorsHaveMessages},
    {"abi.garbage-input", "ids that are empty, not UUIDs, paths or 8 KiB long are refused", "", 60,
     GarbageInput},
    {"planning.deterministic",
     "is_volume_supported takes every fixture volume and gives the same answer each time", "", 60,
     PlanningDeterministic},
    {"planning.refusal-has-reason",
     "a volume the provider cannot take is refused with VOLUME_NOT_SUPPORTED and the reason", "",
     60, RefusalHasReason},
});

}  // namespace

}  // namespace snapset::conformance
