// SPDX-License-Identifier: Apache-2.0
//
// Data through the exposure: what was written before the cut is in the
// snapshot, what was written after is not, the origin keeps its own, and
// the snapshot cannot be written.
#include "conformance/suite.hpp"

namespace snapset::conformance {

namespace {

std::string ReadExposed(CaseContext& ctx, const SetRun& set, size_t i, std::string* exposed_as) {
  Answer e = ctx.host().Expose(set.snapshot_ids[i], exposed_as);
  if (!e.ok()) Fail("expose_snapshot of " + set.snapshot_ids[i] + " failed: " + e.Describe());
  if (exposed_as->empty()) Fail("expose_snapshot answered OK without a path or URL");
  auto record = ctx.fixture().ReadExposedRecord(set.volumes[i], *exposed_as);
  if (!record.ok()) {
    (void)ctx.host().Unexpose(set.snapshot_ids[i]);
    Fail("cannot read the snapshot exposed as " + *exposed_as + ": " + record.status().message());
  }
  return *record;
}

void Unexpose(CaseContext& ctx, const std::string& snapshot_id) {
  Answer u = ctx.host().Unexpose(snapshot_id);
  if (!u.ok()) Fail("unexpose_snapshot of " + snapshot_id + " failed: " + u.Describe());
}

void WriteOrFail(CaseContext& ctx, int volume, const std::string& record) {
  if (Status s = ctx.fixture().WriteRecord(volume, record); !s.ok())
    Fail("the fixture cannot write to " + ctx.resolved(volume).name + ": " + s.message());
}

void SnapshotContent(CaseContext& ctx) {
  ctx.NeedCapability(capability::kExpose);
  const std::string tag = std::to_string(ctx.rng()());
  const std::vector<int> volumes = {0, 1};
  for (int v : volumes) WriteOrFail(ctx, v, "before " + tag + " volume " + std::to_string(v));
  SetRun set = ctx.CreateSet(volumes);
  for (int v : volumes) WriteOrFail(ctx, v, "after " + tag + " volume " + std::to_string(v));
  for (size_t i = 0; i < volumes.size(); ++i) {
    std::string where;
    const std::string got = ReadExposed(ctx, set, i, &where);
    Unexpose(ctx, set.snapshot_ids[i]);
    const std::string want = "before " + tag + " volume " + std::to_string(volumes[i]);
    if (got.starts_with("after "))
      Fail("the snapshot of " + ctx.resolved(volumes[i]).name +
           " holds a write made after the set was complete (\"" + got + "\")");
    if (got != want)
      Fail("the snapshot of " + ctx.resolved(volumes[i]).name + " holds \"" + got +
           "\", not the data written before it (\"" + want + "\")");
    auto origin = ctx.fixture().ReadRecord(volumes[i]);
    const std::string after = "after " + tag + " volume " + std::to_string(volumes[i]);
    if (!origin.ok() || *origin != after)
      Fail("the origin " + ctx.resolved(volumes[i]).name + " lost its own data: it holds \"" +
           (origin.ok() ? *origin : origin.status().message()) + "\", not \"" + after + "\"");
  }
  ctx.DeleteSet(set);
}

void ReadOnly(CaseContext& ctx) {
  ctx.NeedCapability(capability::kExpose);
  const std::string tag = "read-only " + std::to_string(ctx.rng()());
  WriteOrFail(ctx, 0, tag);
  SetRun set = ctx.CreateSet({0});
  std::string where;
  (void)ReadExposed(ctx, set, 0, &where);
  Status w = ctx.fixture().TryWriteExposed(0, where);
  const std::string after = ReadExposed(ctx, set, 0, &where);
  Unexpose(ctx, set.snapshot_ids[0]);
  ctx.DeleteSet(set);
  if (w.code() == Code::kNotImplemented && !ctx.options().require.count(capability::kData))
    Skip("the fixture cannot try to write an exposure: " + w.message());
  if (w.ok()) Fail("the snapshot exposed as " + where + " took a write: it must be read-only");
  if (after != tag) Fail("the snapshot changed after a refused write: it holds \"" + after + "\"");
}

void RevertRestoresOrigin(CaseContext& ctx) {
  ctx.NeedCapability(capability::kRevert);
  const std::string tag = "revert " + std::to_string(ctx.rng()());
  WriteOrFail(ctx, 0, tag);
  SetRun set = ctx.CreateSet({0});
  WriteOrFail(ctx, 0, "after " + tag);
  Answer r = ctx.host().Revert(set.snapshot_ids[0]);
  if (!r.ok()) {
    ctx.DeleteSet(set);
    // The member is there, but this provider (or its array's driver) says
    // it cannot: the capability is not offered after all.
    if (r.code == SNAPSET_E_NOT_IMPLEMENTED && !ctx.options().require.count(capability::kRevert))
      Skip("capability revert not offered: revert_to_snapshot answers " + r.Describe());
    Fail("revert_to_snapshot failed: " + r.Describe());
  }
  auto origin = ctx.fixture().ReadRecord(0);
  ctx.DeleteSet(set);
  if (!origin.ok() || *origin != tag)
    Fail("after revert_to_snapshot the origin holds \"" +
         (origin.ok() ? *origin : origin.status().message()) + "\", not the snapshot's \"" + tag +
         "\"");
}

const CaseRegistrar registrar({
    {"data.snapshot-content",
     "the snapshot holds what was written before the cut, not what came after, and the origin "
     "keeps its own data",
     capability::kData, 180, SnapshotContent},
    {"data.read-only", "an exposed snapshot cannot be written", capability::kData, 120, ReadOnly},
    {"data.revert", "revert_to_snapshot puts the snapshot's data back on the origin",
     capability::kData, 120, RevertRestoresOrigin},
});

}  // namespace

}  // namespace snapset::conformance
