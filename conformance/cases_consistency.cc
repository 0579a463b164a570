// SPDX-License-Identifier: Apache-2.0
//
// Write-order consistency under load: one writer writes increasing sequence
// numbers to every volume of the set in a fixed order, without pause, while
// sets are taken. A set cut at one instant holds a prefix of that stream:
// no volume is ahead of an earlier one, and an earlier one is ahead by at
// most the writer's one step. Each member's cut time must lie inside the
// window in which the host held the writes (or, where nothing held them,
// inside the commit call: such a set is crash-consistent).
#include <atomic>
#include <thread>

#include "conformance/suite.hpp"

namespace snapset::conformance {

namespace {

constexpr int kRounds = 5;
constexpr int64_t kClockToleranceNs = 2'000'000;

// Reads "seq N" back from a member; 0 when the volume holds no record yet.
uint64_t SequenceOf(const std::string& record) {
  if (!record.starts_with("seq ")) return 0;
  return std::stoull(record.substr(4));
}

struct LoadWriter {
  std::vector<std::unique_ptr<RecordWriter>> writers;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0};  // the last sequence number on every volume
  std::string error;
  std::thread thread;

  void Run() {
    for (uint64_t n = 1; !stop; ++n) {
      const std::string record = "seq " + std::to_string(n);
      for (auto& w : writers) {
        if (Status s = w->Write(record); !s.ok()) {
          error = s.message();
          stop = true;
          return;
        }
      }
      done = n;
    }
  }
  void Stop() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
  ~LoadWriter() { Stop(); }
};

void WriteOrderUnderLoad(CaseContext& ctx) {
  ctx.NeedCapability(capability::kExpose);
  const int m = std::min(4, ctx.volume_count());
  std::vector<int> volumes;
  LoadWriter load;
  for (int i = 0; i < m; ++i) {
    volumes.push_back(i);
    auto w = ctx.fixture().OpenWriter(i);
    if (!w.ok())
      Fail("the fixture cannot write to " + ctx.resolved(i).name + ": " + w.status().message());
    load.writers.push_back(std::move(*w));
  }
  load.thread = std::thread([&] { load.Run(); });
  while (load.done < 3 && load.error.empty() && !load.stop)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));

  std::string failure, notes;
  bool all_held = true;
  uint64_t max_skew = 0;
  const uint64_t first = load.done;
  for (int round = 0; round < kRounds && failure.empty(); ++round) {
    SetRun set;
    try {
      set = ctx.CreateSet(volumes);
    } catch (const CaseEnd&) {
      load.Stop();
      throw;
    }
    all_held = all_held && set.held;
    std::vector<uint64_t> seq;
    for (size_t i = 0; i < volumes.size() && failure.empty(); ++i) {
      SnapshotInfo p;
      if (Answer a = ctx.host().Properties(set.snapshot_ids[i], &p); !a.ok()) {
        failure = "get_snapshot_properties failed: " + a.Describe();
        break;
      }
      if (p.creation_time_ns < set.hold_start_ns - kClockToleranceNs ||
          p.creation_time_ns > set.hold_end_ns + kClockToleranceNs)
        failure = "set " + std::to_string(round + 1) + ": the member of " +
                  ctx.resolved(volumes[i]).name + " was cut " +
                  std::to_string((p.creation_time_ns - set.hold_end_ns) / 1000000) +
                  " ms after the end of the window in which writes were " +
                  (set.held ? "held" : "committed") + " (" +
                  std::to_string((set.hold_end_ns - set.hold_start_ns) / 1000000) +
                  " ms long): not a point-in-time copy";
      std::string where;
      Answer e = ctx.host().Expose(set.snapshot_ids[i], &where);
      if (!e.ok()) {
        failure = "expose_snapshot failed: " + e.Describe();
        break;
      }
      auto record = ctx.fixture().ReadExposedRecord(volumes[i], where);
      (void)ctx.host().Unexpose(set.snapshot_ids[i]);
      if (!record.ok() && record.status().code() != Code::kNotFound) {
        failure = "cannot read the snapshot exposed as " + where + ": " + record.status().message();
        break;
      }
      seq.push_back(record.ok() ? SequenceOf(*record) : 0);
    }
    for (size_t i = 1; i < seq.size() && failure.empty(); ++i) {
      if (seq[i] > seq[i - 1] || seq[i - 1] > seq[i] + 1) {
        std::string shown;
        for (size_t j = 0; j < seq.size(); ++j)
          shown += (j ? ", " : "") + ctx.resolved(volumes[j]).name + "=" + std::to_string(seq[j]);
        failure = "set " + std::to_string(round + 1) +
                  " is not one instant of the writes: the writer wrote each number to every "
                  "volume in order, but the members hold " +
                  shown;
      }
    }
    if (seq.size() >= 2) max_skew = std::max(max_skew, seq.front() - seq.back());
    for (const std::string& id : set.snapshot_ids) (void)ctx.host().Delete(id);
  }
  load.Stop();
  if (!load.error.empty()) Fail("the load writer failed: " + load.error);
  if (!failure.empty()) Fail(failure);
  const uint64_t writes = load.done - first;
  notes = std::to_string(kRounds) + " sets of " + std::to_string(m) + " volumes under " +
          std::to_string(writes) + " rounds of writes: each a prefix of the writes, skew at most " +
          std::to_string(max_skew) + (max_skew == 1 ? " step" : " steps");
  if (writes < uint64_t(kRounds))
    Warn(notes + "; the writer made too little progress for this to prove much");
  // A pass carries its evidence in the report.
  throw CaseEnd{Verdict::kPass,
                notes + (all_held ? "; writes held by the host"
                                  : "; writes not held: crash-consistent, the provider's group "
                                    "cut alone kept the order")};
}

const CaseRegistrar registrar({
    {"consistency.write-order-under-load",
     "a set is one instant: under continuous ordered writes every set holds a prefix of them, "
     "and each member is cut inside the window",
     capability::kData, 240, WriteOrderUnderLoad},
});

}  // namespace

}  // namespace snapset::conformance
