// iscsi: the hardware provider for arrays reached over iSCSI (DESIGN §6,
// §10). Each array is managed through an array driver (array.h), loaded
// with dlopen: the built-in Swordfish / Redfish one or a vendor's.
//
// Built exactly as an IHV builds a provider: against the public SDK only,
// loaded with dlopen. The snapshots are the array's own: one consistency-
// group snapshot per array, cut by the array inside the commit window. What
// each event does:
//
//   is_volume_supported  the volume's NAA (VPD 0x83) is a volume in a
//                        configured array's inventory (VolumeMatcher);
//                        the reason names the array and the NAA
//   begin_prepare        finds the volume's array; groups the set by array,
//                        each part with a REST session of its own
//   end_prepare          every array, in parallel: log in, create a
//                        temporary consistency group of the set's volumes
//                        there (a user's group of exactly them only where
//                        the array allows a volume in one group)
//   pre_commit           warms every session (no log-in or TLS handshake
//                        inside the window)
//   can_hold_writes      "array-fence" where the array's driver has fences
//   hold_writes          one fence per array over the set's LUNs there,
//                        lifting itself at the window's deadline
//   commit               exactly one group snapshot request per array, the
//                        arrays in parallel, never past the deadline
//   post_commit          records each replica's identity (NAA, serial);
//                        removes the temporary groups
//   release_writes       lifts the fence (idempotent)
//   abort                lifts a fence still up, waits for operations still
//                        running on the arrays, removes the temporary groups
//                        and deletes every replica named for the set's
//                        snapshots
//   list_objects         groups, fences and connections named for a set or
//                        snapshot, on every array: what `snapset orphans`
//                        compares with the catalog; remove_object removes
//                        one (only ever one named by snapset)
//   expose               maps the replica to this host's initiator (one
//                        connection per snapshot, named for it) and checks
//                        on the wire, with libiscsi, that the LUN answers
//                        with the replica's NAA and the source's capacity
//
// Every replica, temporary group and connection carries a name derived
// from the snapshot or set id (array_set_part.hpp), so another process --
// the next `snapset` command, or the host's recovery after a crash -- finds
// them on the array without local state.
//
// config: see array_config.hpp.
#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <snapset/array.hpp>
#include <snapset/provider.hpp>
#include <string>
#include <vector>

#include "providers/iscsi/array_config.hpp"
#include "providers/iscsi/array_set_part.hpp"
#include "providers/iscsi/lun_probe.hpp"
#include "providers/iscsi/volume_matcher.hpp"

namespace snapset::iscsi {
namespace {

using std::chrono::steady_clock;

// How long the wire check of an exposed LUN may take, at most.
constexpr std::chrono::seconds kVerifyTimeout{30};
// The commit gives up this long before the window ends, so that its own
// answer, naming the array that did not answer, reaches the host before the
// host's timeout does (which can only say that the call did not return).
constexpr std::chrono::milliseconds kCommitMargin{100};

int64_t RealtimeNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// The replica's identity as VSS's GetTargetLuns reports it: NAA and serial.
std::string DeviceIdentity(const ArrayVolume& replica) {
  std::string id = "naa." + replica.naa;
  if (!replica.serial.empty()) id += " serial=" + replica.serial;
  return id;
}

// The built-in drivers' folder: ../array-drivers beside this library, as
// the build tree and an install lay them out (lib/snapset/providers/ and
// lib/snapset/array-drivers/).
std::string BuiltinDriverDir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&BuiltinDriverDir), &info) == 0 || !info.dli_fname)
    return "/nonexistent/array-drivers";
  std::string self = info.dli_fname;
  const size_t slash = self.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : self.substr(0, slash);
  return dir + "/../array-drivers";
}

// 8-4-4-4-12 hex digits: the ids the host sends, and the only ones that may
// become names on an array (snapset-<id>).
bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-'
             : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
      return false;
  }
  return true;
}

// What every replica of this provider is.
constexpr uint32_t kReplicaAttributes =
    SNAPSET_ATTR_PERSISTENT | SNAPSET_ATTR_HARDWARE_ASSISTED | SNAPSET_ATTR_READ_ONLY;

// One configured array: its settings and the REST session the management
// calls (list, delete, expose) share, one at a time.
struct ManagedArray {
  ArrayConfig config;
  std::mutex mu;
  std::unique_ptr<ArrayDriver> dialect;  // guarded by mu
};

// A snapshot set in progress: its parts, one per array.
struct SetState {
  std::atomic<int64_t> commit_sent_ns{0};  // CLOCK_REALTIME when the commit went out
  std::mutex mu;
  std::map<std::string, std::shared_ptr<ArraySetPart>> parts;  // by array name; guarded by mu
  std::vector<std::shared_ptr<ArraySetPart>> Parts() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::shared_ptr<ArraySetPart>> out;
    for (auto& [name, part] : parts) out.push_back(part);
    return out;
  }
};

// A snapshot this process made: what the array does not keep for us (set,
// the host's volume name, time), and what it does, so that the properties
// the host reads right after the commit cost no request.
struct Known {
  std::string set_id;
  std::string volume_name;
  int64_t created_ns = 0;
  ArrayVolume replica;
  std::string exposed_as;   // set by a successful expose in this process
  bool revertible = false;  // its array's driver has revert
};

// A snapshot found on an array.
struct Located {
  ManagedArray* array = nullptr;
  ArrayVolume replica;
  std::optional<ArrayVolume> source;
};

class IscsiProvider : public Provider {
 public:
  using Provider::Provider;

  Status Load(std::string_view config_json) override {
    Result<ProviderConfig> config = ParseProviderConfig(config_json, BuiltinDriverDir());
    if (!config.ok()) return config.status();
    config_ = std::move(*config);
    for (const std::string& warning : config_.warnings) {
      host().Warning(warning);
      // The drivers opened below say the same: once is enough.
      std::lock_guard<std::mutex> lock(warned_mu_);
      warned_.insert(warning);
    }
    std::vector<NamedDialect> match;
    for (const ArrayConfig& a : config_.arrays) {
      auto managed = std::make_unique<ManagedArray>();
      managed->config = a;
      Result<std::unique_ptr<ArrayDriver>> driver = Open(a);
      if (!driver.ok()) return driver.status();
      managed->dialect = std::move(*driver);
      arrays_.push_back(std::move(managed));
      // The matcher calls its drivers from its own threads: they get
      // instances (sessions) of their own.
      driver = Open(a);
      if (!driver.ok()) return driver.status();
      match_dialects_.push_back(std::move(*driver));
      match.push_back({a.name, match_dialects_.back().get()});
    }
    matcher_ = std::make_unique<VolumeMatcher>(std::move(match));
    return Status::Ok();
  }

  Status IsVolumeSupported(const Call& call, const VolumeRef& volume, uint32_t) override {
    Result<VolumeMatch> match = Match(volume);
    if (!match.ok()) return match.status();
    call.ExplainSupport(match->reason);
    return Status::Ok();
  }

  Status BeginPrepareSnapshot(const Call&, std::string_view set_id, std::string_view snapshot_id,
                              const VolumeRef& volume, uint32_t) override {
    for (std::string_view id : {set_id, snapshot_id}) {
      if (!IsUuid(id))
        return Status::InvalidArgument("\"" + std::string(id.substr(0, 64)) +
                                       "\" is not a UUID; set and snapshot ids name "
                                       "objects on the array (snapset-<id>)");
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (known_.count(std::string(snapshot_id)))
        return Status::AlreadyExists("snapshot " + std::string(snapshot_id) + " exists already");
    }
    Result<VolumeMatch> match = Match(volume);
    if (!match.ok()) return match.status();
    std::shared_ptr<SetState> set = Set(set_id, /*create=*/true);
    std::shared_ptr<ArraySetPart> part;
    {
      std::lock_guard<std::mutex> lock(set->mu);
      auto& slot = set->parts[match->array];
      if (!slot) {
        Result<std::unique_ptr<ArrayDriver>> driver = Open(Array(match->array)->config);
        if (!driver.ok()) return driver.status();
        slot =
            std::make_shared<ArraySetPart>(match->array, std::string(set_id), std::move(*driver));
      }
      part = slot;
    }
    return part->Add({std::string(snapshot_id), std::string(volume.name()), match->volume});
  }

  Status EndPrepareSnapshots(const Call& call, std::string_view set_id) override {
    std::shared_ptr<SetState> set = Set(set_id, false);
    if (!set) return Status::BadState("set " + std::string(set_id) + " has no volumes here");
    const ArrayCall policy{call.deadline(), true};
    return RunOnEveryPart(set->Parts(), [&](ArraySetPart& p) { return p.Prepare(policy); });
  }

  Status PreCommitSnapshots(const Call& call, std::string_view set_id) override {
    std::shared_ptr<SetState> set = Set(set_id, false);
    if (!set) return Status::BadState("set " + std::string(set_id) + " has no volumes here");
    const ArrayCall policy{call.deadline(), true};
    return RunOnEveryPart(set->Parts(), [&](ArraySetPart& p) { return p.Warm(policy); });
  }

  // Inside the window: one request per array, nothing else. No logging.
  Status CommitSnapshots(const Call& call, std::string_view set_id) override {
    std::shared_ptr<SetState> set = Set(set_id, false);
    if (!set) return Status::BadState("set " + std::string(set_id) + " has no volumes here");
    const steady_clock::time_point window_end = call.deadline();
    const steady_clock::time_point deadline =
        window_end == steady_clock::time_point::max() ? window_end : window_end - kCommitMargin;
    const ArrayCall policy{deadline, /*retry=*/false, /*in_window=*/true};
    set->commit_sent_ns = RealtimeNs();  // the arrays cut between this and their answers
    Status s = RunOnEveryPart(set->Parts(), [&](ArraySetPart& p) { return p.Commit(policy); });
    if (!s.ok() && steady_clock::now() >= deadline) {
      return Status::HoldWritesTimeout("the commit window ended before every array answered: " +
                                       s.message());
    }
    return s;
  }

  Status PostCommitSnapshots(const Call& call, std::string_view set_id) override {
    std::shared_ptr<SetState> set = Set(set_id, false);
    if (!set) return Status::BadState("set " + std::string(set_id) + " has no volumes here");
    const std::vector<std::shared_ptr<ArraySetPart>> parts = set->Parts();
    // Every snapshot must have its replica before the set can complete.
    const int64_t when = set->commit_sent_ns;
    std::map<std::string, Known> made;
    for (const auto& part : parts) {
      for (const PartMember& m : part->members()) {
        std::optional<ArrayVolume> replica = part->ReplicaOf(m.snapshot_id);
        if (!replica) {
          return Status::Internal("array " + part->array() + " returned no replica named " +
                                  ReplicaName(m.snapshot_id) + " for " + m.volume_name);
        }
        Known& k = made[m.snapshot_id];
        k.set_id = std::string(set_id);
        k.volume_name = m.volume_name;
        k.created_ns = when;
        k.replica = *replica;
        const ManagedArray* a = Array(part->array());
        k.revertible = a != nullptr && a->dialect->offers_revert();
      }
    }
    const ArrayCall policy{call.deadline(), true};
    SNAPSET_RETURN_IF_ERROR(
        RunOnEveryPart(parts, [&](ArraySetPart& p) { return p.Finish(policy); }));
    std::lock_guard<std::mutex> lock(mu_);
    known_.merge(made);
    return Status::Ok();
  }

  // A LUN's writes are held by its array's fence where the array's driver
  // has fences (array.h start_fence): the plan then says "array-fence"
  // instead of crash-consistent for a raw LUN.
  Status CanHoldWrites(const Call& call, const VolumeRef& volume) override {
    Result<VolumeMatch> match = Match(volume);
    if (!match.ok()) return match.status();
    ManagedArray* a = Array(match->array);
    if (a == nullptr || !a->dialect->offers_fences()) {
      return Status::VolumeNotSupported("array \"" + match->array + "\"'s driver (" +
                                        (a ? a->config.driver : "?") + ") has no write fences");
    }
    call.ExplainSupport("array-fence");
    return Status::Ok();
  }

  // The window's start: one fence per array and set, over every LUN of the
  // set there, lifting itself at the window's deadline (also when this
  // process dies). The fences of several arrays together give one instant
  // across them.
  Status HoldWrites(const Call& call, const VolumeRef& volume) override {
    std::shared_ptr<ArraySetPart> part = PartHolding(volume.name());
    if (!part) {
      return Status::VolumeNotSupported(std::string(volume.name()) +
                                        " is in no snapshot set being committed here");
    }
    // Given up on before the window ends, as the commit is, so that the
    // answer naming the array reaches the host before its own timeout.
    const steady_clock::time_point end = call.deadline();
    return part->Fence(ArrayCall{end == steady_clock::time_point::max() ? end : end - kCommitMargin,
                                 /*retry=*/false, /*in_window=*/true});
  }

  Status ReleaseWrites(const Call& call, const VolumeRef& volume) override {
    std::shared_ptr<ArraySetPart> part = PartHolding(volume.name());
    if (!part) return Status::Ok();
    return part->LiftFence(ArrayCall{call.deadline(), /*retry=*/false, /*in_window=*/false});
  }

  Status PostFinalCommitSnapshots(const Call&, std::string_view set_id) override {
    Forget(set_id);  // logs the set's sessions out
    return Status::Ok();
  }

  Status AbortSnapshots(const Call& call, std::string_view set_id) override {
    const ArrayCall policy{call.deadline(), true};
    std::shared_ptr<SetState> set = Set(set_id, false);
    if (!set) {
      // A set an earlier process prepared: its temporary groups may be left
      // (the host deletes its snapshots by id).
      for (const auto& a : arrays_) {
        std::lock_guard<std::mutex> lock(a->mu);
        SNAPSET_RETURN_IF_ERROR(
            AbortUnknownSet(*a->dialect, set_id, policy).WithContext("array " + a->config.name));
      }
      return Status::Ok();
    }
    SNAPSET_RETURN_IF_ERROR(
        RunOnEveryPart(set->Parts(), [&](ArraySetPart& p) { return p.Abort(policy); }));
    Forget(set_id);
    // Aborted after post-commit: its replicas are gone, and so is what this
    // process knew of them.
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(known_, [&](const auto& k) { return k.second.set_id == set_id; });
    return Status::Ok();
  }

  Status DeleteSnapshot(const Call& call, std::string_view snapshot_id) override {
    const ArrayCall policy{call.deadline(), true};
    Result<Located> found = Locate(snapshot_id, policy);
    if (!found.ok()) return found.status();
    {
      std::lock_guard<std::mutex> lock(found->array->mu);
      SNAPSET_RETURN_IF_ERROR(found->array->dialect->DeleteSnapshot(found->replica.id, policy)
                                  .WithContext("array " + found->array->config.name));
    }
    std::lock_guard<std::mutex> lock(mu_);
    known_.erase(std::string(snapshot_id));
    return Status::Ok();
  }

  // Through the array's driver (array.h revert), in place: the LUN keeps
  // its NAA and its exposures. Mounted filesystems on it are the host's to
  // refuse (the coordinator does, before this is called).
  Status RevertToSnapshot(const Call& call, std::string_view snapshot_id) override {
    const ArrayCall policy{call.deadline(), true};
    Result<Located> found = Locate(snapshot_id, policy);
    if (!found.ok()) return found.status();
    ManagedArray& a = *found->array;
    if (!a.dialect->offers_revert()) {
      return Status::NotImplemented("array " + a.config.name + "'s driver (" + a.config.driver +
                                    ") has no revert: restore from snapshot " +
                                    std::string(snapshot_id) + " another way (expose it and copy)");
    }
    std::lock_guard<std::mutex> lock(a.mu);
    return a.dialect->Revert(found->replica.source_id, found->replica.id, policy)
        .WithContext("array " + a.config.name);
  }

  Status ListSnapshots(const Call& call, std::vector<SnapshotInfo>* out) override {
    const ArrayCall policy{call.deadline(), true};
    for (const auto& a : arrays_) {
      std::lock_guard<std::mutex> lock(a->mu);
      const std::string where = "array " + a->config.name;
      Result<std::vector<ArrayVolume>> inventory = a->dialect->Inventory(policy);
      if (!inventory.ok()) return inventory.status().WithContext(where);
      Result<std::vector<ArrayExposure>> exposures = a->dialect->Exposures(policy);
      if (!exposures.ok()) return exposures.status().WithContext(where);
      for (const ArrayVolume& v : *inventory) {
        std::optional<std::string> id = SnapshotIdOfReplica(v.name);
        if (!v.is_snapshot() || !id) continue;
        out->push_back(Info(*a, *id, v, *inventory, *exposures));
      }
    }
    return Status::Ok();
  }

  Status GetSnapshotProperties(const Call& call, std::string_view snapshot_id,
                               SnapshotInfo* out) override {
    if (std::optional<SnapshotInfo> mine = FromMemory(snapshot_id)) {
      *out = std::move(*mine);
      return Status::Ok();
    }
    const ArrayCall policy{call.deadline(), true};
    Result<Located> found = Locate(snapshot_id, policy);
    if (!found.ok()) return found.status();
    std::lock_guard<std::mutex> lock(found->array->mu);
    Result<std::vector<ArrayExposure>> exposures = found->array->dialect->Exposures(policy);
    if (!exposures.ok())
      return exposures.status().WithContext("array " + found->array->config.name);
    std::vector<ArrayVolume> sources;
    if (found->source) sources.push_back(*found->source);
    *out = Info(*found->array, std::string(snapshot_id), found->replica, sources, *exposures);
    return Status::Ok();
  }

  Status ExposeSnapshot(const Call& call, std::string_view snapshot_id,
                        std::string* exposed_as) override {
    const ArrayCall policy{call.deadline(), true};
    Result<Located> found = Locate(snapshot_id, policy);
    if (!found.ok()) return found.status();
    ManagedArray& a = *found->array;
    const std::string where = "array " + a.config.name;
    std::lock_guard<std::mutex> lock(a.mu);
    Result<std::vector<ArrayExposure>> exposures = a.dialect->Exposures(policy);
    if (!exposures.ok()) return exposures.status().WithContext(where);
    std::optional<ArrayExposure> exposure;
    bool made = false;
    for (const ArrayExposure& e : *exposures) {
      if (e.name == ExposureName(snapshot_id)) exposure = e;
    }
    if (!exposure) {
      ExposeRequest request;
      request.volume_ids = {found->replica.id};
      request.initiator_iqn = config_.initiator_iqn;
      if (a.config.chap) {
        request.chap_user = a.config.chap->user;
        request.chap_password = a.config.chap->password;
      }
      request.read_only = true;
      request.name = ExposureName(snapshot_id);
      Result<ArrayExposure> e = a.dialect->Expose(request, policy);
      if (!e.ok()) return e.status().WithContext(where);
      exposure = *e;
      made = true;
    }
    const std::string url = UrlOf(a, *exposure);
    // The array said it mapped it; the wire must agree before anyone reads
    // from it: the LUN answers with the replica's identity and the source's
    // size.
    LunLogin login;
    login.initiator_iqn = config_.initiator_iqn;
    if (a.config.chap) {
      login.chap_user = a.config.chap->user;
      login.chap_password = a.config.chap->password;
    }
    const uint64_t capacity =
        found->source ? found->source->capacity_bytes : found->replica.capacity_bytes;
    const steady_clock::time_point verify_by =
        std::min(call.deadline(), steady_clock::now() + kVerifyTimeout);
    Status verified = VerifyLun(url, login, found->replica.naa, capacity, verify_by);
    if (!verified.ok()) {
      // Nothing half-made is left: a connection we made and cannot vouch
      // for goes again.
      if (made) static_cast<void>(a.dialect->Unexpose(exposure->id, policy));
      return verified.WithContext(where + ": the exposed LUN failed its check");
    }
    *exposed_as = url;
    std::lock_guard<std::mutex> known_lock(mu_);
    if (auto k = known_.find(std::string(snapshot_id)); k != known_.end())
      k->second.exposed_as = url;
    return Status::Ok();
  }

  Status UnexposeSnapshot(const Call& call, std::string_view snapshot_id) override {
    const ArrayCall policy{call.deadline(), true};
    for (const auto& a : arrays_) {
      std::lock_guard<std::mutex> lock(a->mu);
      Result<std::vector<ArrayExposure>> exposures = a->dialect->Exposures(policy);
      if (!exposures.ok()) return exposures.status().WithContext("array " + a->config.name);
      for (const ArrayExposure& e : *exposures) {
        if (e.name != ExposureName(snapshot_id)) continue;
        SNAPSET_RETURN_IF_ERROR(
            a->dialect->Unexpose(e.id, policy).WithContext("array " + a->config.name));
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (auto k = known_.find(std::string(snapshot_id)); k != known_.end())
      k->second.exposed_as.clear();
    return Status::Ok();
  }

  // What sets left on the arrays besides replicas: temporary groups,
  // fences, connections, each recognised by its name.
  Status ListObjects(const Call& call, std::vector<ProviderObject>* out) override {
    const ArrayCall policy{call.deadline(), true};
    for (const auto& a : arrays_) {
      std::lock_guard<std::mutex> lock(a->mu);
      const std::string where = "array " + a->config.name;
      Result<std::vector<ArrayGroup>> groups = a->dialect->Groups(policy);
      if (!groups.ok()) return groups.status().WithContext(where);
      for (const ArrayGroup& g : *groups) {
        if (auto set_id = IdOfName(g.name, kNamePrefix))
          out->push_back({"group", g.name, where, *set_id, ""});
      }
      if (a->dialect->offers_fences()) {
        Result<std::vector<ArrayFence>> fences = a->dialect->Fences(policy);
        if (!fences.ok()) return fences.status().WithContext(where);
        for (const ArrayFence& f : *fences) {
          if (auto set_id = IdOfName(f.name, kFenceNamePrefix))
            out->push_back({"fence", f.name, where, *set_id, ""});
        }
      }
      Result<std::vector<ArrayExposure>> exposures = a->dialect->Exposures(policy);
      if (!exposures.ok()) return exposures.status().WithContext(where);
      for (const ArrayExposure& e : *exposures) {
        if (auto snapshot_id = IdOfName(e.name, kNamePrefix))
          out->push_back({"exposure", e.name, where, "", *snapshot_id});
      }
    }
    return Status::Ok();
  }

  Status RemoveObject(const Call& call, const ProviderObject& object) override {
    const ArrayCall policy{call.deadline(), true};
    ManagedArray* a = nullptr;
    for (const auto& candidate : arrays_) {
      if ("array " + candidate->config.name == object.location) a = candidate.get();
    }
    if (!a)
      return Status::NotFound("no configured array is \"" + object.location +
                              "\"; list the objects again");
    // Only what snapset names: never a user's object, whatever is asked.
    const bool ours = object.kind == "fence" ? IdOfName(object.name, kFenceNamePrefix).has_value()
                                             : IdOfName(object.name, kNamePrefix).has_value();
    if (!ours)
      return Status::InvalidArgument(object.location + ": " + object.kind + " " + object.name +
                                     " is not named by snapset; it is not removed");
    const std::string what = object.location + ": removing " + object.kind + " " + object.name;
    std::lock_guard<std::mutex> lock(a->mu);
    if (object.kind == "group") {
      Result<std::vector<ArrayGroup>> groups = a->dialect->Groups(policy);
      if (!groups.ok()) return groups.status().WithContext(what);
      for (const ArrayGroup& g : *groups) {
        if (g.name == object.name)
          SNAPSET_RETURN_IF_ERROR(a->dialect->DeleteGroup(g.id, policy).WithContext(what));
      }
      return Status::Ok();
    }
    if (object.kind == "fence") {
      if (!a->dialect->offers_fences()) return Status::Ok();  // none can be up
      Result<std::vector<ArrayFence>> fences = a->dialect->Fences(policy);
      if (!fences.ok()) return fences.status().WithContext(what);
      for (const ArrayFence& f : *fences) {
        if (f.name == object.name)
          SNAPSET_RETURN_IF_ERROR(a->dialect->LiftFence(f.id, policy).WithContext(what));
      }
      return Status::Ok();
    }
    if (object.kind == "exposure") {
      Result<std::vector<ArrayExposure>> exposures = a->dialect->Exposures(policy);
      if (!exposures.ok()) return exposures.status().WithContext(what);
      for (const ArrayExposure& e : *exposures) {
        if (e.name == object.name)
          SNAPSET_RETURN_IF_ERROR(a->dialect->Unexpose(e.id, policy).WithContext(what));
      }
      return Status::Ok();
    }
    return Status::InvalidArgument(object.location + ": this provider makes no " + object.kind +
                                   "; kinds are group, fence and exposure");
  }

 private:
  // A new instance of the array's driver. Its log lines go to the host's
  // log, each distinct warning once (every set opens instances of its own).
  Result<std::unique_ptr<ArrayDriver>> Open(const ArrayConfig& a) {
    const std::string array = a.name;
    return OpenDriver(a, ArrayCall{}, [this, array](int32_t level, std::string_view line) {
      const std::string text = "array \"" + array + "\": " + std::string(line);
      if (level <= SNAPSET_LOG_WARNING) {
        std::lock_guard<std::mutex> lock(warned_mu_);
        if (!warned_.insert(text).second) return;
      }
      host().Log(level, text);
    });
  }

  Result<VolumeMatch> Match(const VolumeRef& volume) {
    if (volume.naa().empty()) {
      return Status::VolumeNotSupported(
          std::string(volume.name()) +
          " has no NAA designator (VPD page 0x83), so it is no array LUN this provider "
          "can find (loop devices, cow volumes and local disks have none)");
    }
    return matcher_->Find(volume.naa());
  }

  // The properties of a snapshot this process made, without asking the
  // array.
  std::optional<SnapshotInfo> FromMemory(std::string_view snapshot_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto k = known_.find(std::string(snapshot_id));
    if (k == known_.end()) return std::nullopt;
    SnapshotInfo info;
    info.snapshot_id = k->first;
    info.set_id = k->second.set_id;
    info.original_volume = k->second.volume_name;
    info.creation_time_ns = k->second.created_ns;
    info.attributes = kReplicaAttributes;
    if (!k->second.exposed_as.empty()) info.attributes |= SNAPSET_ATTR_EXPOSED;
    if (!k->second.revertible) info.attributes |= SNAPSET_ATTR_NO_REVERT;
    info.exposed_as = k->second.exposed_as;
    info.snapshot_device = DeviceIdentity(k->second.replica);
    return info;
  }

  // The part of a set in progress that holds this volume, if any.
  std::shared_ptr<ArraySetPart> PartHolding(std::string_view volume_name) {
    std::vector<std::shared_ptr<SetState>> sets;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [id, set] : sets_) sets.push_back(set);
    }
    for (const auto& set : sets)
      for (const auto& part : set->Parts())
        if (part->HasVolume(volume_name)) return part;
    return nullptr;
  }

  std::shared_ptr<SetState> Set(std::string_view set_id, bool create) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sets_.find(std::string(set_id));
    if (it != sets_.end()) return it->second;
    if (!create) return nullptr;
    auto set = std::make_shared<SetState>();
    sets_.emplace(std::string(set_id), set);
    return set;
  }

  void Forget(std::string_view set_id) {
    std::shared_ptr<SetState> set;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = sets_.find(std::string(set_id));
      if (it == sets_.end()) return;
      set = std::move(it->second);
      sets_.erase(it);
    }
    // The parts (and their sessions) go here, outside mu_: logging out
    // talks to the arrays.
  }

  ManagedArray* Array(const std::string& name) {
    for (const auto& a : arrays_) {
      if (a->config.name == name) return a.get();
    }
    return nullptr;  // the matcher only names configured arrays
  }

  // The array that holds the replica of `snapshot_id`, asked array by array.
  Result<Located> Locate(std::string_view snapshot_id, const ArrayCall& policy) {
    const std::string name = ReplicaName(snapshot_id);
    std::string unreachable;
    for (const auto& a : arrays_) {
      std::lock_guard<std::mutex> lock(a->mu);
      Result<std::vector<ArrayVolume>> inventory = a->dialect->Inventory(policy);
      if (!inventory.ok()) {
        unreachable += (unreachable.empty() ? "" : "; ") + std::string("array ") + a->config.name +
                       ": " + inventory.status().message();
        continue;
      }
      for (const ArrayVolume& v : *inventory) {
        if (!v.is_snapshot() || v.name != name) continue;
        Located found;
        found.array = a.get();
        found.replica = v;
        for (const ArrayVolume& s : *inventory) {
          if (s.id == v.source_id) found.source = s;
        }
        return found;
      }
    }
    if (!unreachable.empty()) {
      return Status::Unavailable("snapshot " + std::string(snapshot_id) +
                                 " is on no array that answered, and some did not: " + unreachable);
    }
    return Status::NotFound("no array holds snapshot " + std::string(snapshot_id) +
                            " (a replica named " + name + ")");
  }

  // iscsi://portal/target/lun, by the portal this host was configured to
  // reach the array through, else the one the array reports.
  static std::string UrlOf(const ManagedArray& a, const ArrayExposure& e) {
    ArrayExposure via = e;
    if (!a.config.portals.empty()) via.portal = a.config.portals.front();
    return via.Url(0);
  }

  SnapshotInfo Info(const ManagedArray& a, const std::string& snapshot_id,
                    const ArrayVolume& replica, const std::vector<ArrayVolume>& inventory,
                    const std::vector<ArrayExposure>& exposures) {
    SnapshotInfo info;
    info.snapshot_id = snapshot_id;
    info.creation_time_ns = replica.created_ns;  // as the array says; 0 if it does not
    info.attributes = kReplicaAttributes;
    if (!a.dialect->offers_revert()) info.attributes |= SNAPSET_ATTR_NO_REVERT;
    info.snapshot_device = DeviceIdentity(replica);
    info.original_volume = "array " + a.config.name + " volume " + replica.source_id;
    for (const ArrayVolume& s : inventory) {
      if (s.id == replica.source_id) {
        info.original_volume =
            "array " + a.config.name + " volume " + s.name + " (naa." + s.naa + ")";
      }
    }
    for (const ArrayExposure& e : exposures) {
      if (e.name == ExposureName(snapshot_id)) {
        info.attributes |= SNAPSET_ATTR_EXPOSED;
        info.exposed_as = UrlOf(a, e);
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto known = known_.find(snapshot_id);
    if (known != known_.end()) {
      info.set_id = known->second.set_id;
      info.original_volume = known->second.volume_name;
      info.creation_time_ns = known->second.created_ns;
    }
    return info;
  }

  ProviderConfig config_;
  std::vector<std::unique_ptr<ManagedArray>> arrays_;
  std::mutex warned_mu_;
  std::set<std::string> warned_;  // driver warnings already logged; guarded by warned_mu_
  std::vector<std::unique_ptr<ArrayDriver>> match_dialects_;  // owned for matcher_
  std::unique_ptr<VolumeMatcher> matcher_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<SetState>, std::less<>> sets_;  // guarded by mu_
  std::map<std::string, Known> known_;                                  // guarded by mu_
};

}  // namespace
}  // namespace snapset::iscsi

SNAPSET_PROVIDER(snapset::iscsi::IscsiProvider)
