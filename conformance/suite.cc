// SPDX-License-Identifier: Apache-2.0
#include "conformance/suite.hpp"

#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "core/write_hold.hpp"

namespace snapset::conformance {

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kPass:
      return "pass";
    case Verdict::kWarn:
      return "warn";
    case Verdict::kSkip:
      return "skip";
    case Verdict::kFail:
      return "fail";
  }
  return "?";
}

void Fail(const std::string& reason) { throw CaseEnd{Verdict::kFail, reason}; }
void Skip(const std::string& reason) { throw CaseEnd{Verdict::kSkip, reason}; }
void Warn(const std::string& reason) { throw CaseEnd{Verdict::kWarn, reason}; }

std::vector<CaseDef>& Cases() {
  static std::vector<CaseDef> cases;
  return cases;
}

CaseRegistrar::CaseRegistrar(std::vector<CaseDef> defs) {
  for (auto& d : defs) Cases().push_back(std::move(d));
}

namespace {

int64_t RealtimeNs() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Fails the case unless the provider answered OK.
void Expect(const Answer& a, const std::string& what) {
  if (!a.ok()) Fail(what + " failed: " + a.Describe());
}

}  // namespace

CaseContext::CaseContext(Fixture& fixture, const FixtureSetup& setup,
                         const std::vector<Volume>& volumes, const SuiteOptions& options,
                         uint64_t seed)
    : fixture_(fixture), setup_(setup), options_(options), rng_(seed) {
  for (const Volume& v : volumes) {
    resolved_.push_back(std::make_unique<Volume>(v));
    abi_.push_back(std::make_unique<VolumeAbiView>(*resolved_.back()));
  }
}

CaseContext::~CaseContext() = default;

void CaseContext::Open() {
  auto host = PluginHost::Open(setup_.provider_library);
  if (!host.ok()) Fail(host.status().message());
  host_ = std::move(*host);
  Expect(host_->Load(setup_.provider_config), "on_load");
}

void CaseContext::Reload(HostFlavour flavour) {
  host_->Unload();
  Expect(host_->Load(setup_.provider_config, flavour), "on_load after on_unload");
}

const snapset_volume* CaseContext::volume(int i) const { return abi_.at(i)->get(); }

bool CaseContext::HasCapability(const std::string& name) const {
  const snapset_provider_ops& ops = host_->ops();
  if (name == capability::kExpose) return ops.expose_snapshot && ops.unexpose_snapshot;
  if (name == capability::kRevert) return ops.revert_to_snapshot != nullptr;
  if (name == capability::kHoldWrites) return ops.hold_writes && ops.release_writes;
  if (name == capability::kObjects) return ops.list_objects && ops.remove_object;
  if (name == capability::kFences) {
    if (!ops.hold_writes || resolved_.empty()) return false;
    Answer a = host_->CanHoldWrites(volume(0));
    return a.ok() && a.message.find("fence") != std::string::npos;
  }
  if (name == capability::kFaults) return !fixture_.fault_operations().empty();
  if (name == capability::kResidue) return fixture_.residue_visible();
  if (name == capability::kData) {
    auto r = fixture_.ReadRecord(0);
    return r.ok() || r.status().code() != Code::kNotImplemented;
  }
  if (name == capability::kChangedBlocks) return ops.changed_blocks != nullptr;
  return false;
}

void CaseContext::NeedCapability(const std::string& name) {
  if (HasCapability(name)) return;
  const std::string why = "capability " + name + " not offered";
  if (options_.require.count(name)) Fail(why + " (--require " + name + ")");
  Skip(why);
}

std::string CaseContext::NewUuid() {
  static std::mutex mu;
  static std::mt19937_64 gen{std::random_device{}()};
  uint64_t a, b;
  {
    std::lock_guard<std::mutex> lock(mu);
    a = gen(), b = gen();
  }
  a = (a & ~0xf000ull) | 0x4000ull;        // version 4
  b = (b & ~(3ull << 62)) | (2ull << 62);  // RFC 4122 variant
  char text[40];
  std::snprintf(text, sizeof text, "%08x-%04x-%04x-%04x-%012llx", unsigned(a >> 32),
                unsigned((a >> 16) & 0xffff), unsigned(a & 0xffff), unsigned(b >> 48),
                static_cast<unsigned long long>(b & 0xffffffffffffull));
  return text;
}

// ---------------------------------------------------------------- holds

void CaseContext::Holds::Release() {
  std::lock_guard<std::mutex> lock(mu);
  if (released) return;
  released = true;
  // Bottom-up: the provider's holds, then the filesystems above them.
  for (const snapset_volume* v : provider_held) (void)host->ReleaseWrites(v);
  for (auto& f : freezes) (void)f->Release();
}

CaseContext::Holds::~Holds() { Release(); }

std::unique_ptr<CaseContext::Holds> CaseContext::HoldWrites(const std::vector<int>& volumes,
                                                            bool* all_held) {
  auto holds = std::make_unique<Holds>();
  holds->host = host_.get();
  *all_held = true;
  // Top-down: freeze each filesystem, then ask the provider for its holds.
  for (int i : volumes) {
    const Volume& v = resolved(i);
    if (HoldMethodFor(v) == HoldMethod::kFreeze) {
      auto hold = MakeFreezeHold(v.mount_point, {});
      if (!hold.ok()) Fail("cannot freeze " + v.mount_point + ": " + hold.status().message());
      if (Status s = (*hold)->Hold(); !s.ok())
        Fail("cannot freeze " + v.mount_point + ": " + s.message());
      holds->freezes.push_back(std::move(*hold));
      continue;
    }
    if (host_->CanHoldWrites(volume(i)).ok()) {
      CallSettings s;
      s.deadline = Clock::now() + std::chrono::milliseconds(options_.window_ms);
      Answer a = host_->HoldWrites(volume(i), s);
      if (!a.ok()) Fail("hold_writes on " + v.name + " failed: " + a.Describe());
      holds->provider_held.push_back(volume(i));
      continue;
    }
    *all_held = false;
  }
  return holds;
}

// ---------------------------------------------------------------- sets

SetRun CaseContext::Prepare(const std::vector<int>& volumes, uint32_t context) {
  SetRun set;
  set.set_id = NewUuid();
  set.volumes = volumes;
  DriveTo(set, SNAPSET_STATE_PREPARED, context);
  return set;
}

void CaseContext::DriveTo(SetRun& set, int32_t state, uint32_t context) {
  if (set.set_id.empty()) set.set_id = NewUuid();
  while (set.state < state) {
    switch (set.state) {
      case SNAPSET_STATE_IDLE:
        for (int i : set.volumes) {
          const std::string id = NewUuid();
          Expect(host_->BeginPrepare(set.set_id, id, volume(i), context),
                 "begin_prepare_snapshot of " + resolved(i).name);
          set.snapshot_ids.push_back(id);
        }
        set.state = SNAPSET_STATE_PREPARING;
        break;
      case SNAPSET_STATE_PREPARING:
        Expect(host_->SetEvent(Event::kEndPrepare, set.set_id), "end_prepare_snapshots");
        set.state = SNAPSET_STATE_PREPARED;
        break;
      case SNAPSET_STATE_PREPARED:
        Expect(host_->SetEvent(Event::kPreCommit, set.set_id), "pre_commit_snapshots");
        set.state = SNAPSET_STATE_PRECOMMITTED;
        break;
      case SNAPSET_STATE_PRECOMMITTED:
        CommitWindow(set);
        Expect(set.commit, "commit_snapshots");
        set.state = SNAPSET_STATE_COMMITTED;
        break;
      case SNAPSET_STATE_COMMITTED:
        Expect(host_->SetEvent(Event::kPostCommit, set.set_id), "post_commit_snapshots");
        set.state = SNAPSET_STATE_POSTCOMMITTED;
        break;
      case SNAPSET_STATE_POSTCOMMITTED:
        Expect(host_->SetEvent(Event::kPreFinal, set.set_id), "pre_final_commit_snapshots");
        Expect(host_->SetEvent(Event::kPostFinal, set.set_id), "post_final_commit_snapshots");
        set.state = SNAPSET_STATE_COMPLETE;
        break;
      default:
        Fail("cannot drive a set in state " + std::to_string(set.state));
    }
  }
}

void CaseContext::CommitWindow(SetRun& set, const std::atomic<bool>* cancel) {
  auto holds = HoldWrites(set.volumes, &set.held);
  std::atomic<bool> cancelled{false};
  CallSettings s;
  s.deadline = Clock::now() + std::chrono::milliseconds(options_.window_ms);
  s.cancelled = cancel ? cancel : &cancelled;
  // The watchdog: writes are released at the deadline whatever commit does,
  // as the coordinator's window does (DESIGN §4).
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_until(lock, s.deadline, [&] { return done; })) {
      cancelled = true;
      holds->Release();
    }
  });
  set.hold_start_ns = RealtimeNs();
  set.commit = host_->SetEvent(Event::kCommit, set.set_id, s);
  set.hold_end_ns = RealtimeNs();
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  holds->Release();
}

SetRun CaseContext::CreateSet(const std::vector<int>& volumes, uint32_t context) {
  SetRun set;
  set.set_id = NewUuid();
  set.volumes = volumes;
  DriveTo(set, SNAPSET_STATE_COMPLETE, context);
  return set;
}

void CaseContext::DeleteSet(const SetRun& set) {
  for (const std::string& id : set.snapshot_ids) Expect(host_->Delete(id), "delete_snapshot " + id);
}

std::vector<SnapshotInfo> CaseContext::Listed(const std::string& set_id) {
  std::vector<SnapshotInfo> all;
  Expect(host_->List(&all), "list_snapshots");
  std::vector<SnapshotInfo> out;
  for (auto& s : all)
    if (s.set_id == set_id) out.push_back(std::move(s));
  return out;
}

std::vector<SnapshotInfo> CaseContext::Listed(const SetRun& set) {
  std::vector<SnapshotInfo> all;
  Expect(host_->List(&all), "list_snapshots");
  std::vector<SnapshotInfo> out;
  for (auto& s : all) {
    const bool mine = std::find(set.snapshot_ids.begin(), set.snapshot_ids.end(), s.snapshot_id) !=
                      set.snapshot_ids.end();
    if (s.set_id != set.set_id && !mine) continue;
    if (s.set_id != set.set_id)
      Note("snapshots are listed with set id \"" + s.set_id +
           "\", not the set they were made in: "
           "the provider does not keep a snapshot's set, so a host must (snapset's catalog does)");
    out.push_back(std::move(s));
  }
  return out;
}

void CaseContext::Note(const std::string& warning) {
  std::lock_guard<std::mutex> lock(notes_mu_);
  if (std::find(notes_.begin(), notes_.end(), warning) == notes_.end()) notes_.push_back(warning);
}

// ---------------------------------------------------------------- residue

void CaseContext::TakeResidueBaseline() {
  std::vector<SnapshotInfo> all;
  baseline_snapshots_.clear();
  if (host_ && host_->loaded() && host_->List(&all).ok())
    for (const auto& s : all) baseline_snapshots_.push_back(s.snapshot_id);
  auto residue = fixture_.Residue();
  baseline_residue_ = residue.ok() ? *residue : std::vector<std::string>{};
}

std::vector<std::string> CaseContext::NewResidue() {
  std::vector<std::string> out;
  std::vector<SnapshotInfo> all;
  if (host_ && host_->loaded()) {
    Answer a = host_->List(&all);
    if (!a.ok()) out.push_back("list_snapshots failed: " + a.Describe());
    for (const auto& s : all)
      if (std::find(baseline_snapshots_.begin(), baseline_snapshots_.end(), s.snapshot_id) ==
          baseline_snapshots_.end())
        out.push_back("snapshot " + s.snapshot_id + " of set " + s.set_id + " (" +
                      s.original_volume + ") in list_snapshots");
  }
  auto residue = fixture_.Residue();
  if (!residue.ok()) {
    out.push_back("cannot read the fixture's residue: " + residue.status().message());
  } else {
    for (const auto& r : *residue)
      if (std::find(baseline_residue_.begin(), baseline_residue_.end(), r) ==
          baseline_residue_.end())
        out.push_back(r + " on the storage side");
  }
  return out;
}

}  // namespace snapset::conformance
