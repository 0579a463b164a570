// The requestor API (include/snapset/requestor.hpp) over the core: the
// registry of providers, the catalog, and set creation.
#include <snapset/requestor.hpp>

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <mutex>
#include <set>

#include "core/catalog.hpp"
#include "core/host_log.hpp"
#include "core/provider_registry.hpp"
#include "core/set_creation.hpp"
#include "core/thaw_guard.hpp"

namespace snapset {

namespace {

SnapshotEntry ToEntry(const SnapshotRecord& r) {
  return {r.snapshot_id, r.set_id,     r.volume,     r.provider_name, r.provider_id,
          r.created_ns,  r.attributes, r.exposed_as, r.snapshot_device};
}

SetEntry ToEntry(const SetRecord& r) {
  SetEntry e;
  e.set_id = r.set_id;
  e.state = SetStateName(r.state);
  e.created_ns = r.created_ns;
  e.context = r.context;
  e.error = r.error;
  for (const auto& s : r.snapshots) e.snapshots.push_back(ToEntry(s));
  if (auto t = TimelineData::FromJson(r.timeline_json); t.ok()) e.timeline = std::move(*t);
  return e;
}

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
    if (*recovered > 0)
      log_->Push(SNAPSET_LOG_WARNING, "snapset",
                 "aborted " + std::to_string(*recovered) +
                     " set(s) left unfinished by a coordinator that stopped");
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

  Result<std::vector<VerifyFinding>> Verify() override {
    auto sets = catalog_->ListSets(false);
    if (!sets.ok()) return sets.status();
    std::map<std::string, std::set<std::string>> in_catalog;  // provider id -> snapshots
    std::map<std::string, std::string> provider_of;           // snapshot -> provider name
    for (const auto& set : *sets)
      for (const auto& s : set.snapshots) {
        in_catalog[s.provider_id].insert(s.snapshot_id);
        provider_of[s.snapshot_id] = s.provider_name;
      }
    std::vector<VerifyFinding> findings;
    for (const auto& p : registry_->providers()) {
      auto listed = p->ListSnapshots();
      const auto& mine = in_catalog[p->id()];
      if (!listed.ok()) {
        for (const auto& id : mine)
          findings.push_back({id, p->name(), "cannot verify: " + listed.status().ToString()});
        continue;
      }
      std::set<std::string> on_provider;
      for (const auto& info : *listed) on_provider.insert(info.snapshot_id);
      for (const auto& id : mine)
        if (!on_provider.count(id))
          findings.push_back({id, p->name(), "in the catalog but not on the provider"});
      for (const auto& id : on_provider)
        if (!mine.count(id))
          findings.push_back({id, p->name(), "on the provider but not in the catalog"});
    }
    for (const auto& [provider_id, ids] : in_catalog) {
      if (registry_->FindById(provider_id)) continue;
      for (const auto& id : ids)
        findings.push_back({id, provider_of[id], "its provider " + provider_id +
                                                     " is no longer registered"});
    }
    return findings;
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
    for (const auto& s : set->snapshots) SNAPSET_RETURN_IF_ERROR(DeleteSnapshot(s.snapshot_id));
    auto left = catalog_->GetSet(set_id);
    if (left.ok()) return catalog_->DeleteSet(set_id);  // aborted sets have no snapshots
    return Status::Ok();
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
