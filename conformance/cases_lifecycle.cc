// SPDX-License-Identifier: Apache-2.0
//
// Lifecycle, idempotency and concurrency: sets of 1, 2 and N volumes
// through every event, their properties, the list after a reload, reused
// ids, and K sets at once.
#include <exception>
#include <thread>

#include "conformance/suite.hpp"

namespace snapset::conformance {

namespace {

// Generous enough for a clock read in another process (an array's) at
// millisecond resolution, far tighter than any copy taken after release.
constexpr int64_t kClockToleranceNs = 2'000'000;

std::vector<int> FirstVolumes(int n) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back(i);
  return v;
}

// The set's snapshots are listed with the right set, source and state.
void ExpectListed(CaseContext& ctx, const SetRun& set, const std::string& when) {
  auto listed = ctx.Listed(set);
  if (listed.size() != set.snapshot_ids.size())
    Fail(when + ": list_snapshots shows " + std::to_string(listed.size()) + " snapshots of set " +
         set.set_id + ", expected " + std::to_string(set.snapshot_ids.size()));
  for (size_t i = 0; i < set.snapshot_ids.size(); ++i) {
    const SnapshotInfo* found = nullptr;
    for (const auto& s : listed)
      if (s.snapshot_id == set.snapshot_ids[i]) found = &s;
    if (!found) Fail(when + ": list_snapshots does not show snapshot " + set.snapshot_ids[i]);
    const std::string& source = ctx.resolved(set.volumes[i]).name;
    if (found->original_volume != source)
      Fail(when + ": snapshot " + found->snapshot_id + " says its source is \"" +
           found->original_volume + "\", not " + source);
    if (found->state != SNAPSET_STATE_COMPLETE)
      Fail(when + ": snapshot " + found->snapshot_id + " is listed in state " +
           std::to_string(found->state) + ", not Complete (6)");
  }
}

void Lifecycle(CaseContext& ctx, int volumes) {
  SetRun set = ctx.CreateSet(FirstVolumes(volumes));
  ExpectListed(ctx, set, "after post_final_commit");
  ctx.DeleteSet(set);
  if (!ctx.Listed(set).empty())
    Fail("list_snapshots still shows snapshots of set " + set.set_id + " after deleting them");
}

void Properties(CaseContext& ctx) {
  const uint32_t context = SNAPSET_ATTR_PERSISTENT;
  SetRun set = ctx.CreateSet({0, 1}, context);
  std::vector<SnapshotInfo> all;
  (void)ctx.host().List(&all);
  for (size_t i = 0; i < set.snapshot_ids.size(); ++i) {
    SnapshotInfo p;
    int calls = 0;
    Answer a = ctx.host().Properties(set.snapshot_ids[i], &p, &calls);
    if (!a.ok()) Fail("get_snapshot_properties failed: " + a.Describe());
    if (calls != 1)
      Fail("get_snapshot_properties called its sink " + std::to_string(calls) + " times");
    if (p.snapshot_id != set.snapshot_ids[i])
      Fail("get_snapshot_properties of " + set.snapshot_ids[i] + " gave snapshot " + p.snapshot_id);
    if (p.set_id != set.set_id)
      Fail("snapshot " + p.snapshot_id + " names set \"" + p.set_id + "\", not " + set.set_id +
           ", in the instance that made it");
    if (p.original_volume != ctx.resolved(set.volumes[i]).name)
      Fail("snapshot " + p.snapshot_id + " names source \"" + p.original_volume + "\", not " +
           ctx.resolved(set.volumes[i]).name);
    if (p.creation_time_ns < set.hold_start_ns - kClockToleranceNs ||
        p.creation_time_ns > set.hold_end_ns + kClockToleranceNs)
      Fail("snapshot " + p.snapshot_id + "'s creation time is " +
           std::to_string((p.creation_time_ns - set.hold_start_ns) / 1000) +
           " us from the start of the commit window, which lasted " +
           std::to_string((set.hold_end_ns - set.hold_start_ns) / 1000) +
           " us: the time must be the instant of the cut");
    if ((p.attributes & context) != context)
      Fail("snapshot " + p.snapshot_id + "'s attributes 0x" + std::to_string(p.attributes) +
           " drop the PERSISTENT context it was asked for");
    for (const auto& l : all)
      if (l.snapshot_id == p.snapshot_id &&
          (l.attributes != p.attributes || l.creation_time_ns != p.creation_time_ns))
        Fail("list_snapshots and get_snapshot_properties disagree on snapshot " + p.snapshot_id);
  }
  ctx.DeleteSet(set);
}

void ListAfterReload(CaseContext& ctx) {
  SetRun set = ctx.CreateSet({0, 1});
  ctx.Reload();
  // Found by snapshot id first: a provider that keeps the snapshots but
  // forgets their set is told so apart.
  std::vector<SnapshotInfo> all;
  if (Answer a = ctx.host().List(&all); !a.ok()) Fail("list_snapshots failed: " + a.Describe());
  std::string lost_set;
  for (const std::string& id : set.snapshot_ids) {
    const SnapshotInfo* found = nullptr;
    for (const auto& s : all)
      if (s.snapshot_id == id) found = &s;
    if (!found) {
      ctx.DeleteSet(set);
      Fail("after on_unload and a new on_load, list_snapshots does not show snapshot " + id);
    }
    if (found->set_id != set.set_id) lost_set = found->set_id;
  }
  SnapshotInfo p;
  Answer a = ctx.host().Properties(set.snapshot_ids[0], &p);
  ctx.DeleteSet(set);
  if (!a.ok()) Fail("after a reload, get_snapshot_properties fails: " + a.Describe());
  if (!lost_set.empty() || p.set_id != set.set_id)
    Warn("after a reload the snapshots are listed, but with set id \"" + lost_set +
         "\" instead of " + set.set_id +
         ": the provider does not keep a snapshot's set, so a "
         "host must keep it (snapset's catalog does)");
}

void SameSnapshotId(CaseContext& ctx) {
  SetRun first = ctx.CreateSet({0});
  const std::string reused = first.snapshot_ids[0];
  const std::string other_set = CaseContext::NewUuid();
  Answer a = ctx.host().BeginPrepare(other_set, reused, ctx.volume(1));
  (void)ctx.host().SetEvent(Event::kAbort, other_set);
  if (a.code != SNAPSET_E_ALREADY_EXISTS || a.message.empty())
    Fail("begin_prepare_snapshot with the id of an existing snapshot gave " +
         (a.ok() ? std::string("OK") : a.Describe()) + ", expected ALREADY_EXISTS with a message");
  if (ctx.Listed(first).size() != 1)
    Fail("the existing snapshot " + reused + " is gone after its id was reused");
  // Twice in one set.
  const std::string set_id = CaseContext::NewUuid(), id = CaseContext::NewUuid();
  Answer b1 = ctx.host().BeginPrepare(set_id, id, ctx.volume(0));
  Answer b2 = ctx.host().BeginPrepare(set_id, id, ctx.volume(1));
  (void)ctx.host().SetEvent(Event::kAbort, set_id);
  if (!b1.ok()) Fail("begin_prepare_snapshot failed: " + b1.Describe());
  if (b2.code != SNAPSET_E_ALREADY_EXISTS)
    Fail("the same snapshot id twice in one set gave " +
         (b2.ok() ? std::string("OK") : b2.Describe()) + ", expected ALREADY_EXISTS");
  ctx.DeleteSet(first);
}

void DeleteTwice(CaseContext& ctx) {
  SetRun set = ctx.CreateSet({0});
  const std::string id = set.snapshot_ids[0];
  Answer first = ctx.host().Delete(id);
  if (!first.ok()) Fail("delete_snapshot failed: " + first.Describe());
  Answer second = ctx.host().Delete(id);
  if (second.code != SNAPSET_E_NOT_FOUND || second.message.empty())
    Fail("a second delete_snapshot of " + id + " gave " +
         (second.ok() ? std::string("OK") : second.Describe()) +
         ", expected NOT_FOUND with a message");
  SnapshotInfo p;
  Answer props = ctx.host().Properties(id, &p);
  if (props.code != SNAPSET_E_NOT_FOUND)
    Fail("get_snapshot_properties of a deleted snapshot gave " +
         (props.ok() ? std::string("OK") : props.Describe()));
}

void SameSetIdTenTimes(CaseContext& ctx) {
  SetRun set = ctx.CreateSet({0});
  int accepted = 0;
  for (int i = 1; i < 10; ++i) {
    Answer a = ctx.host().BeginPrepare(set.set_id, CaseContext::NewUuid(), ctx.volume(0));
    if (a.ok()) {
      ++accepted;
      (void)ctx.host().SetEvent(Event::kAbort, set.set_id);
    }
  }
  const auto listed = ctx.Listed(set);
  ctx.DeleteSet(set);
  if (listed.size() != 1)
    Fail("set " + set.set_id + " holds " + std::to_string(listed.size()) +
         " snapshots after its id was sent 10 times; expected the one set");
  if (accepted)
    Fail("begin_prepare_snapshot took a complete set's id again (" + std::to_string(accepted) +
         " of 9 times); expected BAD_STATE");
}

void ConcurrentSets(CaseContext& ctx) {
  const int k = std::max(1, std::min(ctx.options().concurrent_sets, ctx.volume_count() / 2));
  std::vector<SetRun> sets(k);
  std::vector<std::exception_ptr> errors(k);
  std::vector<std::thread> threads;
  for (int i = 0; i < k; ++i)
    threads.emplace_back([&, i] {
      try {
        sets[i] = ctx.CreateSet({2 * i, 2 * i + 1});
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < k; ++i)
    if (errors[i]) {
      for (int j = 0; j < k; ++j)
        if (!errors[j]) ctx.DeleteSet(sets[j]);
      std::rethrow_exception(errors[i]);
    }
  for (const SetRun& s : sets) ExpectListed(ctx, s, std::to_string(k) + " sets at once");
  for (const SetRun& s : sets) ctx.DeleteSet(s);
}

const CaseRegistrar registrar({
    {"lifecycle.one-volume", "a set of one volume goes through every event and is listed", "", 120,
     [](CaseContext& c) { Lifecycle(c, 1); }},
    {"lifecycle.two-volumes", "a set of two volumes goes through every event and is listed", "",
     120, [](CaseContext& c) { Lifecycle(c, 2); }},
    {"lifecycle.n-volumes",
     "a set of N volumes (--volumes, default 16) goes through every event and is listed", "", 180,
     [](CaseContext& c) { Lifecycle(c, c.options().volumes); }},
    {"lifecycle.properties",
     "a snapshot's set, source, creation time (inside the commit window) and attributes are right",
     "", 120, Properties},
    {"lifecycle.list-after-reload",
     "list_snapshots shows the snapshots after on_unload and a new instance", "", 120,
     ListAfterReload},
    {"idempotency.same-snapshot-id",
     "a snapshot id used twice gets ALREADY_EXISTS and the existing snapshot stays", "", 120,
     SameSnapshotId},
    {"idempotency.delete-twice", "a second delete of a snapshot gives NOT_FOUND", "", 120,
     DeleteTwice},
    {"idempotency.same-set-id-ten-times", "the same set id sent ten times gives one set", "", 120,
     SameSetIdTenTimes},
    {"concurrency.disjoint-sets", "K sets on disjoint volumes taken at once all complete", "", 240,
     ConcurrentSets},
});

}  // namespace

}  // namespace snapset::conformance
