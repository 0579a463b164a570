#include "core/set_creation.hpp"

#include <snapset/provider.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <latch>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "core/bounded_calls.hpp"
#include "core/component_volumes.hpp"
#include "core/mount_table.hpp"
#include "core/provider_registration.hpp"
#include "core/thaw_guard.hpp"
#include "core/timeline.hpp"
#include "core/volume_locks.hpp"
#include "core/volume_resolver.hpp"
#include "core/write_hold.hpp"
#include "core/writer_set.hpp"
#include "priority/broker.hpp"

namespace snapset {

using Clock = std::chrono::steady_clock;

std::string NewUuid() {
  std::random_device rd;
  std::uniform_int_distribution<uint32_t> dist;
  uint8_t b[16];
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = dist(rd);
    for (int j = 0; j < 4; ++j) b[i + j] = uint8_t(r >> (8 * j));
  }
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  char s[37];
  std::snprintf(s, sizeof s, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                b[13], b[14], b[15]);
  return s;
}

namespace {

std::string Lane(const ProviderInstance& p) { return "provider:" + p.name(); }
std::string VolumeLane(const std::string& volume) { return "volume:" + volume; }

// The held volumes of a set. Release may come from the coordinator thread
// or the watchdog, whichever is first; each hold is released once.
class HoldSet {
 public:
  struct Held {
    std::unique_ptr<WriteHold> hold;
    bool held;
  };

  HoldSet(Timeline* timeline, ThawGuard* guard) : timeline_(timeline), guard_(guard) {}

  void Add(std::unique_ptr<WriteHold> hold) { holds_.push_back({std::move(hold), false}); }
  void set_guard(ThawGuard* guard) { guard_ = guard; }
  bool empty() const { return holds_.empty(); }

  // Writes back each filesystem's dirty data before the window starts, so
  // that FIFREEZE, inside the window, has little left to flush (the "flush"
  // of flush-and-hold). Best effort: FIFREEZE flushes anyway. One after
  // another on this thread: threads exiting just before a FIFREEZE make its
  // RCU grace periods longer on kernels with lazy RCU (measured: 21 -> 42 ms
  // for one filesystem, see docs/benchmarks.md).
  void Flush() {
    for (auto& h : holds_) {
      if (h.hold->method() != HoldMethod::kFreeze) continue;
      const std::string lane = VolumeLane(h.hold->target());
      timeline_->Begin(lane, "flush");
      int fd = ::open(h.hold->target().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      Status s = fd >= 0 && ::syncfs(fd) == 0
                     ? Status::Ok()
                     : Status::Unavailable(std::string("syncfs: ") + std::strerror(errno));
      if (fd >= 0) ::close(fd);
      timeline_->End(lane, "flush", s);
    }
  }

  // Holds every volume: filesystems first, then the providers' holds
  // (top-down: a filesystem's flush must reach the layer below before that
  // layer closes). Within a stage, in parallel: FIFREEZE waits for a journal
  // commit, and 64 of them one after another would eat much of the window.
  // Every filesystem is registered with the guard, in one round trip, before
  // the first freeze. The watchdog is not running yet, so nothing releases
  // while holds are being taken; the guard covers a FIFREEZE that never
  // returns.
  Status HoldAll(Clock::time_point deadline) {
    std::vector<std::string> frozen;
    for (auto& h : holds_)
      if (h.hold->method() == HoldMethod::kFreeze) frozen.push_back(h.hold->target());
    if (guard_ && !frozen.empty()) {
      Status g = guard_->RegisterAll(frozen, deadline);
      if (!g.ok()) {
        (void)guard_->UnregisterAll(frozen);
        return g.WithContext("cannot register the filesystems with the thaw guard");
      }
    }
    bool first = true;
    for (HoldMethod stage : {HoldMethod::kFreeze, HoldMethod::kGate}) {
      std::vector<Held*> items;
      for (auto& h : holds_)
        if (h.hold->method() == stage) items.push_back(&h);
      if (items.empty()) continue;
      // The threads start before the hold does and wait for one signal, so
      // no thread creation lands inside the hold.
      Status s = RunTogether(items, [this](Held& h) { return HoldOne(h); }, [&] {
        if (!first) return;
        first = false;
        std::lock_guard<std::mutex> lock(mu_);
        first_hold_ns_ = Timeline::NowNs();
        timeline_->Instant("set", "holds begin");
      });
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  Status HoldOne(Held& h) {
    const std::string lane = VolumeLane(h.hold->target());
    timeline_->Begin(lane, "hold");
    Status s = h.hold->Hold();
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      h.held = true;
      return s;
    }
    timeline_->End(lane, "hold", s);
    if (guard_ && h.hold->method() == HoldMethod::kFreeze) (void)guard_->Unregister(h.hold->target());
    return s;
  }

  // Releases every held volume, bottom-up: what the providers hold first,
  // then the filesystems above. Returns the first failure.
  Status ReleaseAll(const char* why) {
    Status first;
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Held*> order;
    for (auto& h : holds_)
      if (h.hold->method() == HoldMethod::kGate) order.push_back(&h);
    for (auto it = holds_.rbegin(); it != holds_.rend(); ++it)
      if (it->hold->method() != HoldMethod::kGate) order.push_back(&*it);
    std::vector<std::string> thawed;
    for (Held* it : order) {
      if (!it->held) continue;
      Status s = it->hold->Release();
      it->held = false;
      last_release_ns_ = Timeline::NowNs();
      timeline_->End(VolumeLane(it->hold->target()), "hold", s);
      timeline_->Instant(VolumeLane(it->hold->target()), "released", why);
      if (s.ok() && it->hold->method() == HoldMethod::kFreeze) thawed.push_back(it->hold->target());
      if (!s.ok() && first.ok()) first = s;
    }
    // After the last thaw, in one round trip: writes flow already.
    if (guard_ && !thawed.empty()) (void)guard_->UnregisterAll(thawed);
    return first;
  }

  // One thread per item, all started first and then let go together by one
  // signal (after `at_start`); returns the first failure.
  template <typename Fn, typename Start>
  Status RunTogether(const std::vector<Held*>& items, Fn fn, Start at_start) {
    std::vector<Status> results(items.size());
    std::latch go(1);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < items.size(); ++i)
      threads.emplace_back([&, i] {
        go.wait();
        results[i] = fn(*items[i]);
      });
    at_start();
    go.count_down();
    for (auto& t : threads) t.join();
    for (auto& r : results)
      if (!r.ok()) return r;
    return Status::Ok();
  }

  int64_t held_ns() const {
    return first_hold_ns_ && last_release_ns_ ? last_release_ns_ - first_hold_ns_ : 0;
  }

 private:
  Timeline* timeline_;
  ThawGuard* guard_;
  std::mutex mu_;
  std::vector<Held> holds_;
  int64_t first_hold_ns_ = 0;
  int64_t last_release_ns_ = 0;
};

// Releases the holds at the deadline unless disarmed first. Depends on no
// provider thread: it is its own thread, waiting on its own clock.
class Watchdog {
 public:
  Watchdog(HoldSet* holds, std::atomic<bool>* cancel, Clock::time_point deadline)
      : thread_([this, holds, cancel, deadline] {
          std::unique_lock<std::mutex> lock(mu_);
          if (cv_.wait_until(lock, deadline, [this] { return disarmed_; })) return;
          fired_ = true;
          cancel->store(true, std::memory_order_release);
          lock.unlock();
          (void)holds->ReleaseAll("watchdog: commit window deadline");
        }) {}
  ~Watchdog() { Disarm(); }
  // Returns true if the watchdog had already fired.
  bool Disarm() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      disarmed_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    return fired_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  bool fired_ = false;
  std::thread thread_;
};

// Answers from begin_prepare_snapshot that another provider would not
// change: they fail the set instead of re-planning it.
bool IsFinalAnswer(const Status& s) {
  return s.Is(Code::kMaxSnapshots) || s.Is(Code::kInsufficientStorage) ||
         s.Is(Code::kAlreadyExists) || s.Is(Code::kInvalidArgument);
}

// A hold the provider makes (provider.h hold_writes): a software-cow
// daemon's write gate, an array's write fence. Every call is bounded, so a
// hung provider costs a thread, never the watchdog.
class GateHold : public WriteHold {
 public:
  GateHold(ProviderInstance* provider, Volume volume, const Clock::time_point* deadline)
      : provider_(provider),
        volume_(std::move(volume)),
        // A filesystem over a cow volume: its freeze is on the mount's lane,
        // the gate below it on the cow volume's.
        target_(volume_.lower.empty() ? volume_.name : volume_.lower),
        deadline_(deadline) {}
  HoldMethod method() const override { return HoldMethod::kGate; }
  const std::string& target() const override { return target_; }

  Status Hold() override {
    return Bounded(*deadline_, [](ProviderInstance* p, const Volume& v, const CallOptions& o) {
      return p->HoldWrites(v, o);
    });
  }
  Status Release() override {
    return Bounded(Clock::now() + std::chrono::seconds(1),
                   [](ProviderInstance* p, const Volume& v, const CallOptions& o) {
                     return p->ReleaseWrites(v, o);
                   });
  }

 private:
  template <typename Fn>
  Status Bounded(Clock::time_point deadline, Fn fn) {
    BoundedCalls call;
    call.Start([p = provider_, v = volume_, deadline, fn] {
      CallOptions o;
      o.deadline = deadline;
      return fn(p, v, o);
    });
    Status s = call.Wait(deadline, Status::HoldWritesTimeout("provider " + provider_->name() +
                                                             " did not answer in time"))[0];
    if (call.abandoned()[0]) provider_->MarkUnhealthy("hung holding or releasing writes");
    return s.WithContext(volume_.name);
  }

  ProviderInstance* provider_;
  Volume volume_;
  std::string target_;
  const Clock::time_point* deadline_;
};

// The filesystems FIFREEZE holds for `v`: its own mount, or for a cow
// volume every filesystem stacked on it (core/cow_stack.hpp).
std::vector<std::string> FreezeTargets(const Volume& v) {
  if (HoldMethodFor(v) == HoldMethod::kFreeze) return {v.mount_point};
  if (v.kind == VolumeKind::kCow) return v.upper;
  return {};
}

uint32_t ContextOf(const SetRequest& r) {
  uint32_t c = 0;
  if (r.persistent) c |= SNAPSET_ATTR_PERSISTENT;
  if (r.auto_release) c |= SNAPSET_ATTR_AUTO_RELEASE;
  if (!r.with_writers) c |= SNAPSET_ATTR_NO_WRITERS;
  return c;
}

class SetCreation {
 public:
  SetCreation(const CreationEnv& env, const SetRequest& request)
      : env_(env), request_(request), context_(ContextOf(request)) {}

  // Validation, resolution and planning: everything before any provider or
  // the catalog sees the set. Nothing to undo on failure.
  Status Plan();
  SetResult Run(const std::function<void(const std::vector<PlannedVolume>&)>& on_plan);
  const std::vector<PlannedVolume>& planned() const { return planned_; }

 private:
  struct Group {
    ProviderInstance* provider;
    std::vector<size_t> volumes;  // indices into volumes_
  };

  Status Validate();
  Status Prepare();
  Status RunPhase(const char* step, Status (ProviderInstance::*event)(const std::string&,
                                                                     const CallOptions&),
                  Clock::time_point deadline);
  Status HoldAndCommit();
  Status RecordComplete();
  void Abort(const Status& why);
  std::vector<AbortOutcome> AbortOn(const std::vector<ProviderInstance*>& providers);
  Status DeleteSnapshotsOn(ProviderInstance* p);
  void Regroup();

  const CreationEnv& env_;
  SetRequest request_;
  uint32_t context_;
  std::string set_id_;
  // Shared with provider threads, which may outlive this object when abandoned.
  std::shared_ptr<Timeline> timeline_ = std::make_shared<Timeline>();
  SetResult result_;

  std::vector<Volume> volumes_;
  std::vector<std::string> snapshot_ids_;  // per volume
  std::vector<std::unique_ptr<InstanceCandidate>> candidates_;
  std::unique_ptr<Broker> broker_;
  BrokerPolicy policy_;
  snapset::Plan plan_;
  std::vector<Group> groups_;
  std::vector<PlannedVolume> planned_;
  std::vector<bool> gated_;  // per volume: its provider holds its writes
  std::set<ProviderInstance*> saw_set_;  // providers that got begin_prepare

  std::unique_ptr<VolumeLocks> locks_;
  std::unique_ptr<WriterSet> writers_;
  std::map<std::string, std::vector<std::string>> components_;  // writer -> selected
  std::unique_ptr<ThawGuard> guard_;
  std::unique_ptr<HoldSet> holds_;
  Clock::time_point window_deadline_;  // read by the providers' holds
  bool recorded_ = false;  // BeginSet done
  // Providers whose abort failed, with what they said: the set's leftovers.
  std::vector<LeftoverRecord> leftovers_;
};

Status SetCreation::Validate() {
  const bool by_component = !request_.writers.empty() || !request_.components.empty();
  if (request_.volumes.empty() && !by_component)
    return Status::InvalidArgument(
        "a snapshot set needs at least one volume (or --writer/--component to take the volumes "
        "of a writer's components)");
  if (by_component && !request_.with_writers)
    return Status::InvalidArgument(
        "--writer and --component select writers' components, so the writers must run; drop "
        "--no-writers");
  if (request_.window.count() <= 0 || request_.window > kMaxCommitWindow)
    return Status::InvalidArgument(
        "the commit window is " + std::to_string(request_.window.count()) +
        " ms; it must be from 1 to " + std::to_string(kMaxCommitWindow.count()) +
        " ms (writes are never held longer than 10 s)");
  if (request_.writer_window.count() <= 0 || request_.writer_window > kMaxWriterWindow)
    return Status::InvalidArgument(
        "the writer window is " + std::to_string(request_.writer_window.count()) +
        " ms; it must be from 1 to " + std::to_string(kMaxWriterWindow.count()) +
        " ms (writers are never held frozen longer than 60 s)");
  if (request_.volumes.size() > request_.max_volumes)
    return Status(Code::kMaxVolumes, "the set has " + std::to_string(request_.volumes.size()) +
                                         " volumes; the limit is " +
                                         std::to_string(request_.max_volumes));
  if (!request_.set_id.empty() && !IsUuid(request_.set_id))
    return Status::InvalidArgument("set id \"" + request_.set_id +
                                   "\" is not a UUID (8-4-4-4-12 hex digits)");
  return Status::Ok();
}

void SetCreation::Regroup() {
  groups_.clear();
  for (const auto& g : plan_.groups) {
    groups_.push_back({static_cast<InstanceCandidate*>(g.provider)->instance(), g.volumes});
  }
  planned_.clear();
  gated_.clear();
  // Which volumes their provider can hold, and what it calls the hold: asked
  // of every provider with hold_writes in parallel, bounded as every call.
  std::vector<std::shared_ptr<std::string>> gate_names(volumes_.size());
  BoundedCalls asked;
  std::vector<size_t> asked_for;
  for (size_t i = 0; i < volumes_.size(); ++i) {
    if (!plan_.explanations[i].chosen) continue;
    ProviderInstance* p = static_cast<InstanceCandidate*>(plan_.explanations[i].chosen)->instance();
    if (!p->can_hold_writes()) continue;
    auto name = std::make_shared<std::string>();
    gate_names[i] = name;
    asked_for.push_back(i);
    asked.Start([p, v = volumes_[i], name, timeout = request_.provider_timeout]() -> Status {
      CallOptions o;
      o.deadline = Clock::now() + timeout;
      Result<std::string> how = p->CanHoldWrites(v, o);
      if (!how.ok()) return how.status();
      *name = *how;
      return Status::Ok();
    });
  }
  const std::vector<Status> answers =
      asked.Wait(Clock::now() + request_.provider_timeout,
                 Status::Unavailable("did not say in time whether it can hold the writes"));
  for (size_t k = 0; k < asked_for.size(); ++k) {
    // Not held by its provider: planned as frozen above, or crash-consistent.
    if (!answers[k].ok()) gate_names[asked_for[k]].reset();
  }
  for (size_t i = 0; i < volumes_.size(); ++i) {
    PlannedVolume pv;
    pv.volume = volumes_[i].name;
    pv.provider = plan_.explanations[i].chosen ? plan_.explanations[i].chosen->name() : "";
    // The host freezes the filesystems; the provider that takes the volume
    // may hold what is below them (a daemon's gate, an array's fence).
    const bool freeze = !FreezeTargets(volumes_[i]).empty();
    const bool gate = gate_names[i] != nullptr;
    const std::string gate_name = gate ? *gate_names[i] : "";
    if (freeze && gate)
      pv.hold = std::string(HoldMethodName(HoldMethod::kFreeze)) + "+" + gate_name;
    else
      pv.hold = freeze ? HoldMethodName(HoldMethod::kFreeze)
                : gate ? gate_name
                       : HoldMethodName(HoldMethod::kNone);
    pv.crash_consistent = !freeze && !gate;
    gated_.push_back(gate);
    planned_.push_back(pv);
  }
}

Status SetCreation::Plan() {
  SNAPSET_RETURN_IF_ERROR(Validate());
  auto mounts = MountTable::Read();
  if (!mounts.ok()) return mounts.status();
  ResolverOptions resolver;
  resolver.mounts = &*mounts;  // read once, not once per volume
  if (request_.with_writers) {
    WriterSetOptions o;
    o.config_dir = env_.config_dir;
    o.run_dir = env_.run_dir;
    o.window = request_.writer_window;
    o.event_timeout = request_.writer_window;
    auto writers = WriterSet::Discover(o, timeline_);
    if (!writers.ok()) return writers.status();
    writers_ = std::move(*writers);
  }
  std::vector<ComponentFile> component_files;
  if (!request_.writers.empty() || !request_.components.empty()) {
    const auto metadata = writers_->metadata();
    auto selected = SelectComponents(metadata, request_.writers, request_.components);
    if (!selected.ok()) return selected.status();
    auto files = ComponentFiles(metadata, *selected, *mounts);
    if (!files.ok()) return files.status();
    component_files = std::move(*files);
    for (const auto& s : *selected) components_[s.writer].push_back(s.logical_path);
  }
  std::vector<std::string> names = request_.volumes;
  if (names.empty())
    for (const auto& f : component_files)
      if (std::find(names.begin(), names.end(), f.mount_point) == names.end())
        names.push_back(f.mount_point);
  if (names.empty())
    return Status::InvalidArgument(
        "the selected components name no files, so they give no volume to snapshot (see `snapset "
        "writers list --json` for what each writer declares); name the volumes instead");
  if (names.size() > request_.max_volumes)
    return Status(Code::kMaxVolumes, "the components' files are on " +
                                         std::to_string(names.size()) + " volumes; the limit is " +
                                         std::to_string(request_.max_volumes));
  std::set<std::string> seen;
  for (const auto& name : names) {
    auto v = ResolveVolume(name, resolver);
    if (!v.ok()) return v.status();
    if (!seen.insert(v->name).second)
      return Status::InvalidArgument("volume " + v->name + " is named twice in the set" +
                                     (v->name != name ? " (as " + name + ")" : ""));
    volumes_.push_back(std::move(*v));
  }
  // A filesystem over a cow volume and that cow volume are one stack.
  for (const auto& v : volumes_)
    if (!v.lower.empty() && seen.count(v.lower))
      return Status::InvalidArgument("volumes " + v.name + " and " + v.lower +
                                     " are one stack (" + v.name + " is a filesystem on " +
                                     v.lower + "); name one of them: either holds both");
  // A selected component must be whole in the set: a file on a volume
  // outside it would be missing from the backup.
  for (const auto& f : component_files) {
    auto v = ResolveVolume(f.mount_point, resolver);
    if (!v.ok()) return v.status().WithContext("the volume of " + f.path);
    bool in_set = seen.count(v->name) > 0;
    for (const auto& member : volumes_) in_set = in_set || member.lower == v->name;
    if (!in_set)
      return Status::InvalidArgument(
          "component " + f.component.writer + ":" + f.component.logical_path + " has file " +
          f.path + " on volume " + v->name + ", which is not in the set; add " + v->name +
          " to the set, or do not select the component");
  }
  for (const auto& [volume, provider] : request_.pins) {
    auto v = ResolveVolume(volume, resolver);
    if (!v.ok()) return v.status().WithContext("provider pin " + provider + "=" + volume);
    policy_.pins[v->name] = provider;
  }
  policy_.excluded.insert(request_.excluded.begin(), request_.excluded.end());
  policy_.replan_on_prepare_failure = request_.replan_on_prepare_failure;

  std::vector<BrokerCandidate*> ptrs;
  for (const auto& p : env_.registry->providers()) {
    candidates_.push_back(std::make_unique<InstanceCandidate>(p.get(), request_.provider_timeout));
    ptrs.push_back(candidates_.back().get());
  }
  broker_ = std::make_unique<Broker>(ptrs);
  auto plan = broker_->MakePlan(volumes_, policy_, context_);
  if (!plan.ok()) return plan.status();
  plan_ = std::move(*plan);
  Regroup();

  // Every hold must be possible before anything starts.
  holds_ = std::make_unique<HoldSet>(timeline_.get(), nullptr);
  std::set<std::string> frozen;
  for (const auto& v : volumes_) {
    for (const auto& mount : FreezeTargets(v)) {
      if (!frozen.insert(mount).second) continue;
      auto hold = MakeFreezeHold(mount, {env_.state_dir});
      if (!hold.ok()) return hold.status().WithContext(v.name);
      holds_->Add(std::move(*hold));
    }
  }
  return Status::Ok();
}

// Provider threads capture only values and shared state, never `this`: a
// thread abandoned at a deadline may run on after the set is finished.

Status SetCreation::Prepare() {
  // begin_prepare: one thread per provider, its volumes in order. A provider
  // that fails here may hand its volumes to the next one (broker re-plan);
  // the providers that take them over are still preparing, so they can.
  std::vector<Group> pending = groups_;
  for (int round = 0; !pending.empty(); ++round) {
    if (round > 8) return Status::Internal("re-planning did not settle");
    BoundedCalls calls;
    const Clock::time_point deadline = Clock::now() + request_.provider_timeout;
    for (const auto& g : pending) {
      saw_set_.insert(g.provider);
      std::vector<std::pair<std::string, Volume>> work;
      for (size_t v : g.volumes) work.emplace_back(snapshot_ids_[v], volumes_[v]);
      calls.Start([timeline = timeline_, p = g.provider, set_id = set_id_, work,
                   context = context_, deadline] {
        timeline->Begin(Lane(*p), "begin_prepare_snapshot");
        CallOptions o;
        o.deadline = deadline;
        Status s;
        for (const auto& [snapshot_id, volume] : work) {
          s = p->BeginPrepareSnapshot(set_id, snapshot_id, volume, context, o);
          if (!s.ok()) {
            s = s.WithContext(volume.name);
            break;
          }
        }
        timeline->End(Lane(*p), "begin_prepare_snapshot", s);
        return s;
      });
    }
    auto results = calls.Wait(deadline, Status::Unavailable(
                                            "did not answer begin_prepare_snapshot within " +
                                            std::to_string(request_.provider_timeout.count()) +
                                            " ms"));
    std::vector<Group> next;
    for (size_t i = 0; i < pending.size(); ++i) {
      if (results[i].ok()) continue;
      ProviderInstance* failed = pending[i].provider;
      if (calls.abandoned()[i]) failed->MarkUnhealthy("hung in begin_prepare_snapshot");
      // A limit is an answer, not a failure: the volume has as many
      // snapshots, or the provider as little room, as it can take.
      if (IsFinalAnswer(results[i])) return results[i].WithContext("provider " + failed->name());
      Status re = broker_->Replan(&plan_, failed->name(), results[i], false, policy_, context_);
      if (!re.ok()) return re;
      timeline_->Instant("set", "re-plan", failed->name() + " failed: " + results[i].ToString());
      // It saw the set and will not take part: undo its part now.
      AbortOn({failed});
      saw_set_.erase(failed);
      for (const auto& g : plan_.groups) {
        std::vector<size_t> moved;
        for (size_t v : g.volumes)
          if (std::count(pending[i].volumes.begin(), pending[i].volumes.end(), v)) moved.push_back(v);
        if (!moved.empty()) next.push_back({static_cast<InstanceCandidate*>(g.provider)->instance(), moved});
      }
    }
    Regroup();
    pending = std::move(next);
  }
  return RunPhase("end_prepare_snapshots", &ProviderInstance::EndPrepareSnapshots,
                  Clock::now() + request_.provider_timeout);
}

Status SetCreation::RunPhase(const char* step,
                             Status (ProviderInstance::*event)(const std::string&,
                                                               const CallOptions&),
                             Clock::time_point deadline) {
  timeline_->Begin("set", step);
  BoundedCalls calls;
  for (const auto& g : groups_) {
    calls.Start([timeline = timeline_, p = g.provider, set_id = set_id_, event, step, deadline] {
      timeline->Begin(Lane(*p), step);
      CallOptions o;
      o.deadline = deadline;
      Status s = (p->*event)(set_id, o);
      timeline->End(Lane(*p), step, s);
      return s;
    });
  }
  auto results = calls.Wait(deadline, Status::Unavailable(std::string("did not answer ") + step +
                                                          " in time"));
  Status first;
  for (size_t i = 0; i < groups_.size(); ++i) {
    if (calls.abandoned()[i]) groups_[i].provider->MarkUnhealthy(std::string("hung in ") + step);
    if (!results[i].ok() && first.ok())
      first = results[i].WithContext("provider " + groups_[i].provider->name() + ": " + step);
  }
  timeline_->End("set", step, first);
  return first;
}

Status SetCreation::HoldAndCommit() {
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  holds_->Flush();
  const Clock::time_point deadline = Clock::now() + request_.window;
  window_deadline_ = deadline;
  timeline_->Instant("set", "commit window", std::to_string(request_.window.count()) + " ms");

  Status held = holds_->HoldAll(deadline);
  if (!held.ok()) {
    (void)holds_->ReleaseAll("a hold failed");
    return held;
  }
  Watchdog watchdog(holds_.get(), cancel.get(), deadline);

  timeline_->Begin("set", "commit_snapshots");
  BoundedCalls calls;
  for (const auto& g : groups_) {
    calls.Start([timeline = timeline_, p = g.provider, set_id = set_id_, deadline, cancel] {
      timeline->Begin(Lane(*p), "commit_snapshots");
      CallOptions o;
      o.deadline = deadline;
      o.cancelled = cancel.get();
      Status s = p->CommitSnapshots(set_id, o);
      timeline->End(Lane(*p), "commit_snapshots", s);
      return s;
    });
  }
  const Status timeout = Status::HoldWritesTimeout(
      "commit_snapshots did not return within the commit window of " +
      std::to_string(request_.window.count()) + " ms; writes were released at the deadline");
  auto results = calls.Wait(deadline, timeout);
  // The moment the last commit returned (or the deadline): release.
  const bool fired = watchdog.Disarm();
  Status released = holds_->ReleaseAll("last commit returned");
  result_.hold_ns = holds_->held_ns();

  Status first;
  for (size_t i = 0; i < groups_.size(); ++i) {
    if (calls.abandoned()[i]) {
      cancel->store(true);
      groups_[i].provider->MarkUnhealthy("hung in commit_snapshots past the commit window");
    }
    if (!results[i].ok() && first.ok())
      first = results[i].WithContext("provider " + groups_[i].provider->name());
  }
  timeline_->End("set", "commit_snapshots", first);
  if (!first.ok()) return first;
  // Every commit answered, but writes may have flowed before the last did.
  if (fired) return timeout;
  if (!released.ok()) return released.WithContext("releasing writes");
  return Status::Ok();
}

std::vector<AbortOutcome> SetCreation::AbortOn(const std::vector<ProviderInstance*>& providers) {
  BoundedCalls calls;
  const Clock::time_point deadline = Clock::now() + request_.provider_timeout;
  for (ProviderInstance* p : providers) {
    calls.Start([timeline = timeline_, p, set_id = set_id_, deadline] {
      timeline->Begin(Lane(*p), "abort_snapshots");
      CallOptions o;
      o.deadline = deadline;
      Status s = p->AbortSnapshots(set_id, o);
      timeline->End(Lane(*p), "abort_snapshots", s);
      return s;
    });
  }
  auto results = calls.Wait(deadline, Status::Unavailable("did not answer abort_snapshots in time"));
  std::vector<AbortOutcome> out;
  for (size_t i = 0; i < providers.size(); ++i) {
    if (calls.abandoned()[i]) providers[i]->MarkUnhealthy("hung in abort_snapshots");
    // A provider that already completed the set (another failed after it,
    // in the last phase) can no longer abort it: all or none then means
    // deleting the snapshots it made.
    if (results[i].IsBadState()) results[i] = DeleteSnapshotsOn(providers[i]);
    out.push_back({providers[i]->name(), results[i]});
    result_.aborts.push_back(out.back());
    if (!results[i].ok())
      leftovers_.push_back({providers[i]->id(), providers[i]->name(), results[i].ToString()});
  }
  return out;
}

Status SetCreation::DeleteSnapshotsOn(ProviderInstance* p) {
  Status first;
  for (const auto& g : groups_) {
    if (g.provider != p) continue;
    for (size_t v : g.volumes) {
      CallOptions o;
      o.deadline = Clock::now() + request_.provider_timeout;
      timeline_->Begin(Lane(*p), "delete_snapshot");
      Status s = p->DeleteSnapshot(snapshot_ids_[v], o);
      if (s.IsNotFound()) s = Status::Ok();
      timeline_->End(Lane(*p), "delete_snapshot", s);
      if (!s.ok() && first.ok()) first = s;
    }
  }
  return first;
}

void SetCreation::Abort(const Status& why) {
  timeline_->Instant("set", "abort", why.ToString());
  if (holds_) (void)holds_->ReleaseAll("set aborted");
  if (writers_) writers_->Abort();
  std::vector<ProviderInstance*> order(saw_set_.begin(), saw_set_.end());
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->name() < b->name(); });
  AbortOn(order);
  if (recorded_) {
    // A failed abort may have left objects behind: the set stays with its
    // plan, and every later start retries (RecoverInterruptedSets).
    Status s = leftovers_.empty()
                   ? env_.catalog->AbortSet(set_id_, why.ToString(), timeline_->ToJson())
                   : env_.catalog->RecordAbortIncomplete(set_id_, why.ToString(), leftovers_,
                                                         timeline_->ToJson());
    if (!s.ok()) timeline_->Instant("set", "catalog", "could not record the abort: " + s.ToString());
  }
}

Status SetCreation::RecordComplete() {
  std::vector<SnapshotRecord> records;
  for (const auto& g : groups_) {
    for (size_t v : g.volumes) {
      SnapshotRecord r;
      r.snapshot_id = snapshot_ids_[v];
      r.set_id = set_id_;
      r.volume = volumes_[v].name;
      r.volume_device = DeviceKey(volumes_[v]);
      r.provider_id = g.provider->id();
      r.provider_name = g.provider->name();
      r.attributes = context_ | (planned_[v].crash_consistent ? SNAPSET_ATTR_CRASH_CONSISTENT : 0);
      CallOptions o;
      o.deadline = Clock::now() + request_.provider_timeout;
      auto props = g.provider->GetSnapshotProperties(snapshot_ids_[v], o);
      if (props.ok()) {
        r.created_ns = props->creation_time_ns;
        r.attributes |= props->attributes;
        r.snapshot_device = props->snapshot_device;
        r.exposed_as = props->exposed_as;
      }
      if (r.created_ns == 0) r.created_ns = timeline_->start_realtime_ns();
      records.push_back(std::move(r));
      result_.snapshots.push_back({snapshot_ids_[v], volumes_[v].name, g.provider->name(),
                                   g.provider->id(), planned_[v].crash_consistent});
    }
  }
  timeline_->Instant("set", "complete");
  std::vector<WriterRecord> writers;
  if (writers_) writers = writers_->Records();
  return env_.catalog->CompleteSet(set_id_, records, timeline_->ToJson(), writers);
}

SetResult SetCreation::Run(const std::function<void(const std::vector<PlannedVolume>&)>& on_plan) {
  set_id_ = request_.set_id.empty() ? NewUuid() : request_.set_id;
  result_.set_id = set_id_;
  auto finish = [this](Status s) {
    if (!s.ok()) Abort(s);
    result_.status = std::move(s);
    result_.plan = planned_;
    result_.timeline = timeline_->data();
    if (!result_.status.ok()) result_.snapshots.clear();
    return result_;
  };

  timeline_->Begin("set", "plan");
  Status planned = Plan();
  timeline_->End("set", "plan", planned);
  if (!planned.ok()) return finish(planned);
  if (on_plan) on_plan(planned_);

  std::vector<std::string> names;
  for (const auto& v : volumes_) names.push_back(v.name);
  auto locks = VolumeLocks::Acquire(env_.state_dir, names, set_id_);
  if (!locks.ok()) return finish(locks.status());
  locks_ = std::move(*locks);

  for (size_t i = 0; i < volumes_.size(); ++i) snapshot_ids_.push_back(NewUuid());
  SetRecord record;
  record.set_id = set_id_;
  record.state = SetState::kCreating;
  record.created_ns = timeline_->start_realtime_ns();
  record.context = context_;
  record.requestor_pid = env_.requestor_pid;
  for (const auto& g : groups_)
    for (size_t v : g.volumes)
      record.snapshots.push_back({snapshot_ids_[v], set_id_, volumes_[v].name, g.provider->id(),
                                  g.provider->name(), 0, context_, "", ""});
  if (Status s = env_.catalog->BeginSet(record); !s.ok()) return finish(s);
  recorded_ = true;

  if (!holds_->empty()) {
    auto guard = ThawGuard::Start(env_.thaw_guard);
    if (!guard.ok()) return finish(guard.status().WithContext("the thaw guard is required to freeze"));
    guard_ = std::move(*guard);
    holds_->set_guard(guard_.get());
  }

  if (writers_ && !writers_->empty()) {
    timeline_->Begin("set", "writers prepare-backup");
    Status s = writers_->PrepareBackup(set_id_, names, components_);
    timeline_->End("set", "writers prepare-backup", s);
    if (!s.ok()) return finish(s);
  }

  timeline_->Begin("set", "prepare");
  Status s = Prepare();
  timeline_->End("set", "prepare", s);
  if (!s.ok()) return finish(s);
  // The plan is final now (re-planning is over): the providers' holds.
  for (const auto& g : groups_)
    for (size_t v : g.volumes)
      if (gated_[v])
        holds_->Add(std::make_unique<GateHold>(g.provider, volumes_[v], &window_deadline_));

  if (writers_ && !writers_->empty()) {
    timeline_->Begin("set", "writers prepare-snapshot");
    s = writers_->PrepareSnapshot();
    timeline_->End("set", "writers prepare-snapshot", s);
    if (!s.ok()) return finish(s);
    timeline_->Begin("set", "writers freeze");
    s = writers_->Freeze();
    timeline_->End("set", "writers freeze", s);
    if (!s.ok()) return finish(s);
  }

  s = RunPhase("pre_commit_snapshots", &ProviderInstance::PreCommitSnapshots,
               Clock::now() + request_.provider_timeout);
  if (!s.ok()) return finish(s);

  s = HoldAndCommit();
  if (!s.ok()) return finish(s);

  s = RunPhase("post_commit_snapshots", &ProviderInstance::PostCommitSnapshots,
               Clock::now() + request_.provider_timeout);
  if (!s.ok()) return finish(s);

  if (writers_ && !writers_->empty()) {
    // Thaw, then each writer's state: any failure fails the set.
    timeline_->Begin("set", "writers thaw");
    s = writers_->Thaw();
    timeline_->End("set", "writers thaw", s);
    if (!s.ok()) return finish(s);
  }

  s = RunPhase("pre_final_commit_snapshots", &ProviderInstance::PreFinalCommitSnapshots,
               Clock::now() + request_.provider_timeout);
  if (!s.ok()) return finish(s);
  s = RunPhase("post_final_commit_snapshots", &ProviderInstance::PostFinalCommitSnapshots,
               Clock::now() + request_.provider_timeout);
  if (!s.ok()) return finish(s);
  if (writers_ && !writers_->empty()) {
    timeline_->Begin("set", "writers post-snapshot");
    s = writers_->PostSnapshot();
    timeline_->End("set", "writers post-snapshot", s);
    if (!s.ok()) return finish(s);
  }

  s = RecordComplete();
  if (!s.ok()) {
    // The providers completed the set but the catalog could not say so: the
    // snapshots would be invisible. Delete them rather than leak them.
    for (const auto& snap : result_.snapshots)
      if (auto* p = env_.registry->FindById(snap.provider_id)) (void)p->DeleteSnapshot(snap.snapshot_id);
    (void)env_.catalog->DeleteSet(set_id_);
    if (writers_) writers_->Abort();  // they were told the set was cut
    result_.status = s.WithContext("recording the set in the catalog");
    result_.snapshots.clear();
    result_.plan = planned_;
    result_.timeline = timeline_->data();
    return result_;
  }
  return finish(Status::Ok());
}

}  // namespace

Result<std::vector<PlannedVolume>> PlanSnapshotSet(const CreationEnv& env,
                                                   const SetRequest& request) {
  SetCreation creation(env, request);
  SNAPSET_RETURN_IF_ERROR(creation.Plan());
  return creation.planned();
}

SetResult CreateSnapshotSet(const CreationEnv& env, const SetRequest& request,
                            const std::function<void(const std::vector<PlannedVolume>&)>& on_plan) {
  // Idempotent on a caller-supplied set id (CSI's rule).
  if (!request.set_id.empty()) {
    auto existing = env.catalog->GetSet(request.set_id);
    if (existing.ok()) {
      SetResult r;
      r.set_id = request.set_id;
      if (existing->state == SetState::kComplete) {
        for (const auto& s : existing->snapshots)
          r.snapshots.push_back({s.snapshot_id, s.volume, s.provider_name, s.provider_id,
                                 (s.attributes & SNAPSET_ATTR_CRASH_CONSISTENT) != 0});
        if (auto t = TimelineData::FromJson(existing->timeline_json); t.ok()) r.timeline = *t;
        return r;  // OK: the set exists as asked
      }
      r.status = existing->state == SetState::kCreating
                     ? Status::BadState("set in progress: set " + request.set_id +
                                        " is still being created")
                     : Status::AlreadyExists("set " + request.set_id + " failed earlier (" +
                                             existing->error + "); use a new set id");
      return r;
    }
  }
  SetCreation creation(env, request);
  return creation.Run(on_plan);
}

namespace {

// Undoes an unfinished set on `providers`: abort_snapshots, then a delete of
// every planned snapshot. The process may have died after a provider
// completed its part: the abort then answers BAD_STATE (or OK, from a
// provider that kept no state). The catalog never recorded the set
// complete, so none of its snapshots may stay: delete each planned one, as
// AbortOn does within one process for a provider that completed. The ids
// were made for this set alone; NOT_FOUND is the usual answer. Returns what
// each provider that failed said.
std::vector<LeftoverRecord> UndoUnfinishedSet(const SetRecord& set,
                                              const std::vector<ProviderInstance*>& providers,
                                              std::chrono::milliseconds per_call,
                                              Timeline* timeline) {
  std::vector<LeftoverRecord> left;
  for (ProviderInstance* p : providers) {
    timeline->Begin(Lane(*p), "abort_snapshots");
    CallOptions o;
    o.deadline = Clock::now() + per_call;
    Status s = p->AbortSnapshots(set.set_id, o);
    timeline->End(Lane(*p), "abort_snapshots", s);
    Status deleted;
    for (const auto& snapshot : set.snapshots) {
      timeline->Begin(Lane(*p), "delete_snapshot");
      CallOptions d;
      d.deadline = Clock::now() + per_call;
      Status one = p->DeleteSnapshot(snapshot.snapshot_id, d);
      if (one.IsNotFound()) one = Status::Ok();
      timeline->End(Lane(*p), "delete_snapshot", one);
      if (!one.ok() && deleted.ok()) deleted = one.WithContext("snapshot " + snapshot.snapshot_id);
    }
    if (s.ok() || s.IsBadState()) s = deleted;
    if (!s.ok()) left.push_back({p->id(), p->name(), s.ToString()});
  }
  return left;
}

}  // namespace

Result<RecoveryReport> RecoverInterruptedSets(const CreationEnv& env) {
  auto unfinished = env.catalog->ListUnfinished();
  if (!unfinished.ok()) return unfinished.status();
  RecoveryReport report;
  for (const auto& set : *unfinished) {
    const bool retry = set.state == SetState::kAbortIncomplete;
    std::vector<std::string> volumes;
    std::vector<std::string> needed;  // provider ids the undoing needs
    for (const auto& s : set.snapshots) {
      volumes.push_back(s.volume);
      needed.push_back(s.provider_id);
    }
    for (const auto& l : set.leftovers) needed.push_back(l.provider_id);
    for (const auto& id : needed) {
      if (env.registry->FindById(id)) continue;
      std::string name = id;
      for (const auto& s : set.snapshots)
        if (s.provider_id == id) name = s.provider_name;
      for (const auto& l : set.leftovers)
        if (l.provider_id == id) name = l.provider_name;
      return Status::Config("set " + set.set_id + " was left unfinished on provider " + name +
                            " (" + id +
                            "), which is no longer registered; register it again so the set "
                            "can be aborted on it");
    }
    // A live coordinator still holds the volume locks: not ours to touch.
    auto locks = VolumeLocks::Acquire(env.state_dir, volumes, set.set_id);
    if (!locks.ok()) continue;
    Timeline timeline;  // of the recovery; the crashed run's was never stored
    // A crashed set: every registered provider, not only the planned ones
    // (a re-plan may have moved volumes to a provider the record does not
    // name; aborting a set a provider never saw is a no-op). A retry: the
    // providers whose abort failed; the others finished theirs.
    std::vector<ProviderInstance*> providers;
    if (retry) {
      for (const auto& l : set.leftovers)
        providers.push_back(env.registry->FindById(l.provider_id));
    } else {
      for (const auto& instance : env.registry->providers()) providers.push_back(instance.get());
    }
    // A retry runs at every start until it works: bounded tighter, so an
    // array that is down does not make every command wait long.
    const auto per_call = retry ? std::chrono::seconds(10) : std::chrono::seconds(30);
    std::vector<LeftoverRecord> left = UndoUnfinishedSet(set, providers, per_call, &timeline);
    const std::string reason =
        retry ? std::string()
              : "the coordinator stopped while creating this set; aborted at the next start";
    // A retry keeps the failed run's timeline, which says how it failed.
    const std::string timeline_json = retry ? std::string() : timeline.ToJson();
    if (left.empty()) {
      SNAPSET_RETURN_IF_ERROR(env.catalog->AbortSet(set.set_id, reason, timeline_json));
      ++report.aborted;
      continue;
    }
    SNAPSET_RETURN_IF_ERROR(
        env.catalog->RecordAbortIncomplete(set.set_id, reason, left, timeline_json));
    auto now = env.catalog->GetSet(set.set_id);
    if (!now.ok()) return now.status();
    report.incomplete.push_back(std::move(*now));
  }
  return report;
}

}  // namespace snapset
