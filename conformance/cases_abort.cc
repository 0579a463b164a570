// SPDX-License-Identifier: Apache-2.0
//
// Abort: in each state before Complete it leaves nothing, twice is fine, an
// unknown set is fine, and a new set afterwards works. The runner checks
// the fixture's side (an array's /mock/state, a pool's files) after each.
#include "conformance/suite.hpp"

namespace snapset::conformance {

namespace {

void AbortIn(CaseContext& ctx, int32_t state) {
  SetRun set;
  set.volumes = {0, 1};
  ctx.DriveTo(set, state);
  Answer a = ctx.host().SetEvent(Event::kAbort, set.set_id);
  if (!a.ok()) Fail("abort_snapshots failed: " + a.Describe());
  if (auto listed = ctx.Listed(set); !listed.empty())
    Fail("after abort_snapshots, list_snapshots still shows " + std::to_string(listed.size()) +
         " snapshots of the set");
  for (const std::string& id : set.snapshot_ids) {
    SnapshotInfo p;
    Answer props = ctx.host().Properties(id, &p);
    if (props.code != SNAPSET_E_NOT_FOUND)
      Fail("after abort_snapshots, get_snapshot_properties of " + id + " gives " +
           (props.ok() ? std::string("OK") : props.Describe()) + ", expected NOT_FOUND");
  }
}

void AbortTwiceAndUnknown(CaseContext& ctx) {
  SetRun set = ctx.Prepare({0});
  for (int i = 0; i < 2; ++i) {
    Answer a = ctx.host().SetEvent(Event::kAbort, set.set_id);
    if (!a.ok())
      Fail(std::string(i ? "a second" : "the first") + " abort_snapshots failed: " + a.Describe());
  }
  Answer unknown = ctx.host().SetEvent(Event::kAbort, CaseContext::NewUuid());
  if (!unknown.ok())
    Fail("abort_snapshots of a set the provider never saw failed: " + unknown.Describe());
}

void NewSetAfterAbort(CaseContext& ctx) {
  SetRun aborted;
  aborted.volumes = {0, 1};
  ctx.DriveTo(aborted, SNAPSET_STATE_COMMITTED);
  Answer a = ctx.host().SetEvent(Event::kAbort, aborted.set_id);
  if (!a.ok()) Fail("abort_snapshots failed: " + a.Describe());
  SetRun next = ctx.CreateSet({0, 1});
  if (ctx.Listed(next).size() != 2)
    Fail("a set taken after an abort on the same volumes is not listed whole");
  ctx.DeleteSet(next);
}

const CaseRegistrar registrar({
    {"abort.in-preparing", "an abort while preparing leaves no snapshot and nothing on the storage",
     "", 120, [](CaseContext& c) { AbortIn(c, SNAPSET_STATE_PREPARING); }},
    {"abort.in-prepared", "an abort once prepared leaves no snapshot and nothing on the storage",
     "", 120, [](CaseContext& c) { AbortIn(c, SNAPSET_STATE_PREPARED); }},
    {"abort.in-precommitted",
     "an abort after pre-commit leaves no snapshot and nothing on the storage", "", 120,
     [](CaseContext& c) { AbortIn(c, SNAPSET_STATE_PRECOMMITTED); }},
    {"abort.in-committed",
     "an abort after the commit (the cut is taken) leaves no snapshot and nothing on the storage",
     "", 120, [](CaseContext& c) { AbortIn(c, SNAPSET_STATE_COMMITTED); }},
    {"abort.in-postcommitted",
     "an abort after post-commit leaves no snapshot and nothing on the storage", "", 120,
     [](CaseContext& c) { AbortIn(c, SNAPSET_STATE_POSTCOMMITTED); }},
    {"abort.twice-and-unknown", "a second abort, and an abort of an unknown set, answer OK", "", 60,
     AbortTwiceAndUnknown},
    {"abort.then-new-set", "after an abort a new set on the same volumes works", "", 120,
     NewSetAfterAbort},
});

}  // namespace

}  // namespace snapset::conformance
