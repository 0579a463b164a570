// The requestor API (include/snapset/requestor.hpp) over the core: the
// registry of providers, the catalog, and set creation.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <snapset/requestor.hpp>

#include "core/bounded_calls.hpp"
#include "core/catalog.hpp"
#include "core/holdings_audit.hpp"
#include "core/host_log.hpp"
#include "core/provider_registry.hpp"
#include "core/set_creation.hpp"
#include "core/set_revert.hpp"
#include "core/thaw_guard.hpp"
#include "core/writer_set.hpp"
#include "writer/writer_protocol.hpp"

namespace snapset {

namespace {

SnapshotEntry ToEntry(const SnapshotRecord& r) {
  return {r.snapshot_id,     r.set_id,      r.volume,     r.provider_name,
          r.provider_id,     r.created_ns,  r.attributes, r.exposed_as,
          r.snapshot_device, r.lost_reason, r.lost_ns};
}

SetEntry ToEntry(const SetRecord& r) {
  SetEntry e;
  e.set_id = r.set_id;
  e.state = SetStateName(r.state);
  e.created_ns = r.created_ns;
  e.context = r.context;
  e.error = r.error;
  for (const auto& s : r.snapshots) e.snapshots.push_back(ToEntry(s));
  for (const auto& l : r.leftovers)
    e.leftovers.push_back({l.provider_name, l.provider_id, l.detail});
  for (const auto& w : r.writers) {
    SetWriterEntry we{w.name, w.kind, w.state, w.metadata_json, {}};
    // Written by this coordinator from a parsed reply: always an object.
    if (auto blob = writer_protocol::BlobFromJson(w.backup_blob_json); blob.ok())
      we.backup_blob = std::move(*blob);
    e.writers.push_back(std::move(we));
  }
  if (auto t = TimelineData::FromJson(r.timeline_json); t.ok()) e.timeline = std::move(*t);
  return e;
}

// Bound on each provider call of a management command.
constexpr std::chrono::seconds kManagementTimeout{60};
// RefreshLost runs before every `snapset list`: a provider that does not
// answer within this costs the listing no more, and changes nothing.
constexpr std::chrono::seconds kRefreshTimeout{5};

bool ProcessAlive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

class RequestorImpl : public Requestor {
 public:
  RequestorImpl(const RequestorOptions& options, std::unique_ptr<HostLog> log,
                std::unique_ptr<ProviderRegistry> registry, std::unique_ptr<Catalog> catalog)
      : options_(options),
        log_(std::move(log)),
        registry_(std::move(registry)),
        catalog_(std::move(catalog)) {
    env_.registry = registry_.get();
    env_.catalog = catalog_.get();
    env_.config_dir = options.config_dir;
    env_.state_dir = options.state_dir;
    env_.run_dir = options.run_dir;
    env_.thaw_guard = options.thaw_guard.empty() ? DefaultThawGuardPath() : options.thaw_guard;
    env_.requestor_pid = ::getpid();
  }

  ~RequestorImpl() override {
    // Auto-release snapshots live as long as the requestor that made them.
    std::vector<std::string> ids;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ids = auto_release_;
    }
    for (const auto& id : ids) (void)DeleteSet(id);
    // A provider that hung may still log from its abandoned thread: then its
    // log stays alive (reachable, not leaked) until the process exits.
    const bool keep_log = registry_->has_unhealthy();
    registry_.reset();  // before the log: on_unload may log
    log_->Flush();
    if (keep_log) {
      static auto* kept = new std::vector<std::unique_ptr<HostLog>>();
      static std::mutex kept_mu;
      std::lock_guard<std::mutex> lock(kept_mu);
      kept->push_back(std::move(log_));
    }
  }

  // Start-up housekeeping: sets a crashed coordinator left half-made, and
  // auto-release sets whose requestor is gone.
  Status Recover() {
    auto recovered = RecoverInterruptedSets(env_);
    if (!recovered.ok()) return recovered.status();
    if (recovered->aborted > 0)
      log_->Push(SNAPSET_LOG_WARNING, "snapset",
                 "aborted " + std::to_string(recovered->aborted) +
                     " set(s) left unfinished by a coordinator that stopped or by an abort "
                     "that had failed");
    for (const auto& set : recovered->incomplete) {
      std::string where;
      for (const auto& l : set.leftovers)
        where += "; provider " + l.provider_name + ": " + l.detail;
      log_->Push(SNAPSET_LOG_WARNING, "snapset",
                 "the abort of set " + set.set_id + " is still incomplete" + where +
                     ". Every snapset command retries it; fix what the provider reports, or "
                     "see `snapset show " +
                     set.set_id + "`");
    }
    auto sets = catalog_->ListSets(false);
    if (!sets.ok()) return sets.status();
    for (const auto& set : *sets) {
      if ((set.context & SNAPSET_ATTR_AUTO_RELEASE) && !ProcessAlive(set.requestor_pid))
        (void)DeleteSet(set.set_id);
    }
    return Status::Ok();
  }

  Result<std::vector<PlannedVolume>> PlanSet(const SetRequest& request) override {
    return PlanSnapshotSet(env_, request);
  }

  SetResult CreateSet(
      const SetRequest& request,
      const std::function<void(const std::vector<PlannedVolume>&)>& on_plan) override {
    SetResult r = CreateSnapshotSet(env_, request, on_plan);
    if (r.status.ok() && request.auto_release) {
      std::lock_guard<std::mutex> lock(mu_);
      auto_release_.push_back(r.set_id);
    }
    return r;
  }

  Result<std::vector<SetEntry>> ListSets(bool include_failed) override {
    auto sets = catalog_->ListSets(include_failed);
    if (!sets.ok()) return sets.status();
    std::vector<SetEntry> out;
    for (const auto& s : *sets) out.push_back(ToEntry(s));
    return out;
  }

  Result<SetEntry> GetSet(const std::string& set_id) override {
    auto s = catalog_->GetSet(set_id);
    if (!s.ok()) return s.status();
    return ToEntry(*s);
  }

  void FlushLog() override { log_->Flush(); }

  Result<SnapshotEntry> GetSnapshot(const std::string& snapshot_id) override {
    auto s = catalog_->GetSnapshot(snapshot_id);
    if (!s.ok()) return s.status();
    return ToEntry(*s);
  }

  Result<LostRefresh> RefreshLost() override {
    auto sets = catalog_->ListSets(false);
    if (!sets.ok()) return sets.status();
    std::map<std::string, std::vector<std::string>> by_provider;  // id -> snapshot ids
    std::map<std::string, SnapshotEntry> entry_of;
    for (const auto& set : *sets) {
      if (set.state != SetState::kComplete) continue;
      for (const auto& s : set.snapshots) {
        if (s.lost_ns != 0) continue;
        by_provider[s.provider_id].push_back(s.snapshot_id);
        entry_of[s.snapshot_id] = ToEntry(s);
      }
    }
    // Each provider asked on a thread of its own, all bounded together: one
    // that hangs costs `list` kRefreshTimeout, never more (its thread is
    // abandoned, what it finds later is dropped, and the provider is kept
    // loaded as unhealthy: its code may still run).
    struct Probe {
      ProviderInstance* provider = nullptr;
      std::vector<std::string> ids;
      std::vector<std::pair<std::string, std::string>> lost;  // id, reason
      Status failure;
    };
    auto probes = std::make_shared<std::vector<Probe>>();
    for (const auto& [provider_id, ids] : by_provider) {
      ProviderInstance* p = registry_->FindById(provider_id);
      if (p) probes->push_back({p, ids, {}, Status::Ok()});  // else list --verify reports it
    }
    const auto deadline = std::chrono::steady_clock::now() + kRefreshTimeout;
    BoundedCalls calls;
    for (size_t i = 0; i < probes->size(); ++i)
      calls.Start([probes, i, deadline] { return LostOn(&(*probes)[i], deadline); });
    const std::vector<Status> done =
        calls.Wait(deadline, Status::Unavailable("it did not answer within " +
                                                 std::to_string(kRefreshTimeout.count()) + " s"));
    LostRefresh out;
    for (size_t i = 0; i < probes->size(); ++i) {
      const Probe& probe = (*probes)[i];
      const std::string& name = probe.provider->name();
      if (calls.abandoned()[i]) probe.provider->MarkUnhealthy("hung listing its snapshots");
      if (!done[i].ok()) {
        out.unanswered.emplace_back(name, done[i].ToString());
        continue;
      }
      if (!probe.failure.ok()) out.unanswered.emplace_back(name, probe.failure.ToString());
      for (const auto& [id, why] : probe.lost) {
        const std::string reason =
            why.rfind(name + ":", 0) == 0 ? why : "provider " + name + ": " + why;
        SNAPSET_RETURN_IF_ERROR(catalog_->MarkLost(id, reason));
        SnapshotEntry e = entry_of[id];
        e.lost_reason = reason;
        e.lost_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
        out.newly_lost.push_back(std::move(e));
      }
    }
    return out;
  }

  // Which of probe->ids the provider no longer holds or cannot read, and
  // why; a provider that cannot say leaves probe->failure.
  template <typename Probe>
  static Status LostOn(Probe* probe, std::chrono::steady_clock::time_point deadline) {
    ProviderInstance* p = probe->provider;
    CallOptions o;
    o.deadline = deadline;
    auto listed = p->ListSnapshots(o);
    if (!listed.ok()) return listed.status();
    std::map<std::string, const SnapshotInfo*> held;
    for (const auto& info : *listed) held[info.snapshot_id] = &info;
    for (const auto& id : probe->ids) {
      auto it = held.find(id);
      if (it != held.end()) {
        if (it->second->attributes & SNAPSET_ATTR_INVALID)
          probe->lost.emplace_back(id, it->second->invalid_reason);
        continue;
      }
      // Gone: the provider's own answer for it says why, if it knows.
      auto props = p->GetSnapshotProperties(id, o);
      if (props.ok()) continue;  // there after all (listed while it was being made)
      if (!props.status().IsNotFound()) {
        probe->failure = props.status();
        continue;
      }
      probe->lost.emplace_back(id, props.status().message());
    }
    return Status::Ok();
  }

  Result<SnapshotDelta> Diff(const std::string& snapshot_id,
                             const std::string& base_snapshot_id) override {
    auto snap = catalog_->GetSnapshot(snapshot_id);
    if (!snap.ok()) return snap.status();
    auto usable = [](const SnapshotRecord& s) -> Status {
      if (s.lost_ns == 0) return Status::Ok();
      return Status::BadState("snapshot " + s.snapshot_id + " is lost (" + s.lost_reason +
                              "); there is nothing to compare");
    };
    SNAPSET_RETURN_IF_ERROR(usable(*snap));
    if (!base_snapshot_id.empty()) {
      auto base = catalog_->GetSnapshot(base_snapshot_id);
      if (!base.ok()) return base.status();
      SNAPSET_RETURN_IF_ERROR(usable(*base));
      if (base->volume != snap->volume)
        return Status::InvalidArgument("base snapshot " + base_snapshot_id + " is of volume " +
                                       base->volume + ", not " + snap->volume +
                                       "; give an older snapshot of " + snap->volume);
      if (base->provider_id != snap->provider_id)
        return Status::InvalidArgument("base snapshot " + base_snapshot_id +
                                       " was taken by provider " + base->provider_name + " and " +
                                       snapshot_id + " by " + snap->provider_name +
                                       "; changed blocks compare two snapshots of one provider");
      if (base->created_ns >= snap->created_ns)
        return Status::InvalidArgument("base snapshot " + base_snapshot_id + " is not older than " +
                                       snapshot_id + "; give the older one as --base");
    }
    ProviderInstance* p = registry_->FindById(snap->provider_id);
    if (!p)
      return Status::NotFound("snapshot " + snapshot_id + " belongs to provider " +
                              snap->provider_name + ", which is no longer registered");
    SnapshotDelta out;
    out.snapshot_id = snapshot_id;
    out.base_snapshot_id = base_snapshot_id;
    out.volume = snap->volume;
    out.provider = p->name();
    // Pages of kRangesPerPage, each resuming where the last one ended.
    constexpr uint32_t kRangesPerPage = 4096;
    CallOptions o;
    o.deadline = std::chrono::steady_clock::now() + kManagementTimeout;
    uint64_t start = 0;
    for (;;) {
      auto page = p->ChangedBlocks(snapshot_id, base_snapshot_id, start, kRangesPerPage, o);
      if (!page.ok()) return page.status().WithContext("provider " + p->name());
      out.volume_size = page->volume_size;
      for (const ByteRange& r : page->ranges) {
        if (!out.ranges.empty() && out.ranges.back().offset + out.ranges.back().length == r.offset)
          out.ranges.back().length += r.length;
        else
          out.ranges.push_back(r);
      }
      if (page->ranges.size() < kRangesPerPage) break;
      start = page->ranges.back().offset + page->ranges.back().length;
    }
    return out;
  }

  Result<std::vector<VerifyFinding>> Verify() override {
    // Catalog, providers, catalog again: see core/holdings_audit.hpp.
    auto before = catalog_->ListSets(true);
    if (!before.ok()) return before.status();
    std::vector<ProviderHoldings> holdings;
    for (const auto& p : registry_->providers()) {
      ProviderHoldings h;
      h.provider_id = p->id();
      h.provider_name = p->name();
      CallOptions o;
      o.deadline = std::chrono::steady_clock::now() + kManagementTimeout;
      auto listed = p->ListSnapshots(o);
      h.snapshots_listed = listed.status();
      if (listed.ok()) {
        for (const auto& info : *listed) {
          h.snapshot_ids.push_back(info.snapshot_id);
          if (info.attributes & SNAPSET_ATTR_INVALID)
            h.invalid[info.snapshot_id] = info.invalid_reason;
        }
      }
      o.deadline = std::chrono::steady_clock::now() + kManagementTimeout;
      auto objects = p->ListObjects(o);
      h.objects_listed = objects.status();
      if (objects.ok()) h.objects = std::move(*objects);
      holdings.push_back(std::move(h));
    }
    auto after = catalog_->ListSets(true);
    if (!after.ok()) return after.status();
    return AuditHoldings(holdings, *before, *after);
  }

  Result<std::vector<OrphanRemoval>> RemoveOrphans(bool dry_run) override {
    auto findings = Verify();
    if (!findings.ok()) return findings.status();
    // Objects first: an exposure holds its snapshot (an array refuses to
    // delete an exposed replica), a group its members.
    std::vector<VerifyFinding> orphans;
    for (const auto& f : *findings)
      if (f.orphan && !f.name.empty()) orphans.push_back(f);
    for (const auto& f : *findings)
      if (f.orphan && f.name.empty()) orphans.push_back(f);
    std::vector<OrphanRemoval> out;
    for (const auto& f : orphans) {
      OrphanRemoval r{f, Status::Ok()};
      ProviderInstance* p = registry_->FindByName(f.provider);
      if (!p) {
        r.status = Status::NotFound("provider " + f.provider + " is no longer registered");
      } else if (!dry_run) {
        CallOptions o;
        o.deadline = std::chrono::steady_clock::now() + kManagementTimeout;
        if (f.name.empty()) {
          r.status = p->DeleteSnapshot(f.snapshot_id, o);
          if (r.status.IsNotFound()) r.status = Status::Ok();  // gone already
        } else {
          r.status = p->RemoveObject({f.kind, f.name, f.location, f.set_id, f.snapshot_id}, o);
        }
        if (!r.status.ok()) r.status = r.status.WithContext("provider " + p->name());
      }
      out.push_back(std::move(r));
    }
    return out;
  }

  Status DeleteSnapshot(const std::string& snapshot_id) override {
    auto snap = catalog_->GetSnapshot(snapshot_id);
    if (!snap.ok()) return snap.status();
    ProviderInstance* p = registry_->FindById(snap->provider_id);
    if (!p)
      return Status::NotFound("snapshot " + snapshot_id + " belongs to provider " +
                              snap->provider_name + " (" + snap->provider_id +
                              "), which is no longer registered; register it again to delete");
    Status s = p->DeleteSnapshot(snapshot_id);
    // Already gone on the provider: the catalog must stop saying it exists.
    if (!s.ok() && !s.IsNotFound()) return s.WithContext("provider " + p->name());
    return catalog_->DeleteSnapshot(snapshot_id);
  }

  Status DeleteSet(const std::string& set_id) override {
    auto set = catalog_->GetSet(set_id);
    if (!set.ok()) return set.status();
    if (set->state == SetState::kCreating)
      return Status::BadState("set in progress: set " + set_id + " is still being created");
    if (set->state == SetState::kAbortIncomplete)
      return Status::BadState("set " + set_id +
                              " is abort-incomplete: its abort left objects on a provider, "
                              "which every snapset command tries to remove again (see `snapset "
                              "show " +
                              set_id + "`); it leaves the catalog once they are gone");
    for (const auto& s : set->snapshots) SNAPSET_RETURN_IF_ERROR(DeleteSnapshot(s.snapshot_id));
    auto left = catalog_->GetSet(set_id);
    if (left.ok()) return catalog_->DeleteSet(set_id);  // aborted sets have no snapshots
    return Status::Ok();
  }

  RevertResult RevertSet(const std::string& set_id, const RevertOptions& options) override {
    auto set = catalog_->GetSet(set_id);
    if (!set.ok()) {
      RevertResult r;
      r.set_id = set_id;
      r.status = set.status();
      return r;
    }
    return RevertToSet(env_, *set, {}, options, kManagementTimeout);
  }

  RevertResult RevertSnapshot(const std::string& snapshot_id,
                              const RevertOptions& options) override {
    RevertResult r;
    auto snap = catalog_->GetSnapshot(snapshot_id);
    if (!snap.ok()) {
      r.status = snap.status();
      return r;
    }
    auto set = catalog_->GetSet(snap->set_id);
    if (!set.ok()) {
      r.status = set.status();
      return r;
    }
    return RevertToSet(env_, *set, {snapshot_id}, options, kManagementTimeout);
  }

  Status BackupComplete(const std::string& set_id) override {
    auto set = catalog_->GetSet(set_id);
    if (!set.ok()) return set.status();
    if (set->state != SetState::kComplete)
      return Status::BadState("set " + set_id + " is " + SetStateName(set->state) +
                              ", not complete: there is no backup of it to complete");
    WriterSetOptions o;
    o.config_dir = options_.config_dir;
    o.run_dir = options_.run_dir;
    o.event_timeout = kManagementTimeout;
    return SendBackupComplete(o, set_id, set->writers);
  }

  Result<std::string> DeleteOldest(const std::string& volume) override {
    auto snaps = catalog_->SnapshotsOfVolume(volume);
    if (!snaps.ok()) return snaps.status();
    if (snaps->empty()) return Status::NotFound("no snapshots of " + volume);
    std::string id = snaps->front().snapshot_id;
    SNAPSET_RETURN_IF_ERROR(DeleteSnapshot(id));
    return id;
  }

  Result<std::string> ExposeSnapshot(const std::string& snapshot_id) override {
    auto snap = catalog_->GetSnapshot(snapshot_id);
    if (!snap.ok()) return snap.status();
    ProviderInstance* p = registry_->FindById(snap->provider_id);
    if (!p) return Status::NotFound("provider " + snap->provider_name + " is no longer registered");
    auto where = p->ExposeSnapshot(snapshot_id);
    if (!where.ok()) return where.status().WithContext("provider " + p->name());
    SNAPSET_RETURN_IF_ERROR(catalog_->SetExposed(snapshot_id, *where));
    return where;
  }

  Status UnexposeSnapshot(const std::string& snapshot_id) override {
    auto snap = catalog_->GetSnapshot(snapshot_id);
    if (!snap.ok()) return snap.status();
    ProviderInstance* p = registry_->FindById(snap->provider_id);
    if (!p) return Status::NotFound("provider " + snap->provider_name + " is no longer registered");
    SNAPSET_RETURN_IF_ERROR(p->UnexposeSnapshot(snapshot_id).WithContext("provider " + p->name()));
    return catalog_->SetExposed(snapshot_id, "");
  }

 private:
  RequestorOptions options_;
  std::unique_ptr<HostLog> log_;
  std::unique_ptr<ProviderRegistry> registry_;
  std::unique_ptr<Catalog> catalog_;
  CreationEnv env_;
  std::mutex mu_;
  std::vector<std::string> auto_release_;
};

}  // namespace

Result<std::unique_ptr<Requestor>> Requestor::Open(const RequestorOptions& options) {
  auto log = std::make_unique<HostLog>(HostLog::StderrSink(options.log_level));
  auto registry = ProviderRegistry::Load(options.config_dir, log.get());
  if (!registry.ok()) return registry.status();
  auto catalog = Catalog::Open(options.state_dir);
  if (!catalog.ok()) return catalog.status();
  auto r = std::make_unique<RequestorImpl>(options, std::move(log), std::move(*registry),
                                           std::move(*catalog));
  SNAPSET_RETURN_IF_ERROR(r->Recover());
  return std::unique_ptr<Requestor>(std::move(r));
}

}  // namespace snapset
