// SPDX-License-Identifier: Apache-2.0
//
// The commit window: commit latency against a budget, no write gets through
// a hold until it is released, and commit honours its deadline and the
// cancellation flag.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <thread>

#include "conformance/suite.hpp"
#include "core/write_hold.hpp"

namespace snapset::conformance {

namespace {

constexpr int kLatencySets = 5;
constexpr double kCancelGraceMs = 100;

std::string Ms(double ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f ms", ms);
  return text;
}

void CommitLatency(CaseContext& ctx) {
  std::vector<double> ms;
  for (int i = 0; i < kLatencySets; ++i) {
    SetRun set = ctx.CreateSet({0, 1});
    ms.push_back(set.commit.ms);
    ctx.DeleteSet(set);
  }
  std::sort(ms.begin(), ms.end());
  const double p50 = ms[ms.size() / 2], p99 = ms.back();
  const std::string text = "commit p50 " + Ms(p50) + ", p99 " + Ms(p99) + " over " +
                           std::to_string(kLatencySets) + " sets of 2 volumes (budget: warn " +
                           Ms(ctx.options().commit_warn_ms) + ", fail " +
                           Ms(ctx.options().commit_fail_ms) + ")";
  if (p99 > ctx.options().commit_fail_ms) Fail(text);
  if (p99 > ctx.options().commit_warn_ms) Warn(text);
  throw CaseEnd{Verdict::kPass, text};
}

bool Holdable(CaseContext& ctx, int i) {
  return HoldMethodFor(ctx.resolved(i)) == HoldMethod::kFreeze ||
         ctx.host().CanHoldWrites(ctx.volume(i)).ok();
}

int64_t RealtimeNs() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// A write started while the writes are held must not get through before
// the cut. Some holds end at the cut itself (an array whose group snapshot
// ends its fence); a write let through after the cut is safe, and noted.
void NoIoWhileHeld(CaseContext& ctx) {
  ctx.NeedCapability(capability::kData);
  if (!Holdable(ctx, 0))
    Skip("capability hold not offered: the writes of " + ctx.resolved(0).name +
         " cannot be held (crash-consistent only)");
  const std::string before = "before the hold " + std::to_string(ctx.rng()());
  if (Status w = ctx.fixture().WriteRecord(0, before); !w.ok())
    Fail("the fixture cannot write: " + w.message());
  SetRun set;
  set.volumes = {0};
  ctx.DriveTo(set, SNAPSET_STATE_PRECOMMITTED);
  bool held = false;
  auto holds = ctx.HoldWrites({0}, &held);
  std::atomic<bool> finished{false};
  std::atomic<int64_t> finished_ns{0};
  std::string write_error;
  std::thread writer([&] {
    Status s = ctx.fixture().WriteRecord(0, "written while held");
    finished_ns = RealtimeNs();
    if (!s.ok()) write_error = s.message();
    finished = true;
  });
  std::string failure;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  if (finished)
    failure = "a write to " + ctx.resolved(0).name + " completed while its writes were held";
  CallSettings s;
  s.deadline = Clock::now() + std::chrono::milliseconds(ctx.options().window_ms);
  Answer commit = ctx.host().SetEvent(Event::kCommit, set.set_id, s);
  const bool through_in_commit = finished;
  const int64_t released_ns = RealtimeNs();
  holds.reset();  // releases
  writer.join();
  if (!commit.ok()) {
    (void)ctx.host().SetEvent(Event::kAbort, set.set_id);
    Fail("commit_snapshots failed: " + commit.Describe());
  }
  set.state = SNAPSET_STATE_COMMITTED;
  ctx.DriveTo(set, SNAPSET_STATE_COMPLETE);
  SnapshotInfo p;
  Answer props = ctx.host().Properties(set.snapshot_ids[0], &p);
  std::string in_snapshot;
  if (failure.empty() && ctx.HasCapability(capability::kExpose)) {
    std::string where;
    if (ctx.host().Expose(set.snapshot_ids[0], &where).ok()) {
      auto r = ctx.fixture().ReadExposedRecord(0, where);
      if (r.ok()) in_snapshot = *r;
      (void)ctx.host().Unexpose(set.snapshot_ids[0]);
    }
  }
  ctx.DeleteSet(set);
  if (!failure.empty()) Fail(failure);
  if (!props.ok()) Fail("get_snapshot_properties failed: " + props.Describe());
  if (in_snapshot == "written while held")
    Fail("the snapshot holds the write made while the writes were held");
  if (through_in_commit && finished_ns < p.creation_time_ns)
    Fail("a write to " + ctx.resolved(0).name +
         " went through during commit_snapshots, before the cut");
  if (!write_error.empty()) Fail("the held write failed after the release: " + write_error);
  if (finished_ns < released_ns)
    throw CaseEnd{Verdict::kPass,
                  "the held write went through at the cut, before release_writes: the hold "
                  "ends with the commit (as an array's fence may)"};
}

// Commit with a short deadline and the flag raised at it, then with the flag
// raised before the call.
void DeadlineAndCancel(CaseContext& ctx) {
  std::string failure;
  for (int variant = 0; variant < 2 && failure.empty(); ++variant) {
    SetRun set;
    set.volumes = {0, 1};
    ctx.DriveTo(set, SNAPSET_STATE_PRECOMMITTED);
    bool held = false;
    auto holds = ctx.HoldWrites(set.volumes, &held);
    std::atomic<bool> cancelled{variant == 1};
    CallSettings s;
    s.cancelled = &cancelled;
    const auto start = Clock::now();
    s.deadline = start + std::chrono::milliseconds(300);
    std::thread canceller([&] {
      std::this_thread::sleep_until(s.deadline);
      cancelled = true;
      holds->Release();  // as the coordinator's watchdog does
    });
    Answer a = ctx.host().SetEvent(Event::kCommit, set.set_id, s);
    const auto end = Clock::now();
    canceller.join();
    const double late_ms =
        std::chrono::duration<double, std::milli>(end - (variant ? start : s.deadline)).count();
    if (late_ms > kCancelGraceMs)
      failure = variant ? "with the cancellation flag already raised, commit_snapshots took " +
                              Ms(late_ms) + " (at most 100 ms)"
                        : "commit_snapshots returned " + Ms(late_ms) +
                              " after its deadline and the cancellation (at most 100 ms)";
    else if (!a.ok() && a.message.empty())
      failure = "a cancelled commit gave " + a.Describe() + " with no message";
    Answer abort = ctx.host().SetEvent(Event::kAbort, set.set_id);
    if (failure.empty() && !abort.ok())
      failure = "abort after a cancelled commit failed: " + abort.Describe();
  }
  if (!failure.empty()) Fail(failure);
}

const CaseRegistrar registrar({
    {"window.commit-latency",
     "commit_snapshots is fast enough for the window: p99 against a budget (default 1 s "
     "warns, 10 s fails)",
     "", 180, CommitLatency},
    {"window.no-io-while-held", "a write blocked by the hold stays blocked until the release",
     capability::kData, 120, NoIoWhileHeld},
    {"window.deadline-and-cancel",
     "commit_snapshots returns within 100 ms of its deadline or a cancellation", "", 120,
     DeadlineAndCancel},
});

}  // namespace

}  // namespace snapset::conformance
