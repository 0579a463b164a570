// software-cow: the provider of snapset's copy-on-write volumes (DESIGN §7).
//
// Built exactly as an IHV builds a provider: against the public SDK only,
// loaded with dlopen. The snapshots themselves are made by snapset-cowd;
// this plugin is its client (cowd_client.hpp) and speaks for it to the
// coordinator:
//
//   is_volume_supported  cow:NAME served by the daemon, or a filesystem or
//                        block device on a loop device over <mount>/NAME/origin
//   begin_prepare        checks the volume and the snapshot count; opens one
//                        control connection per volume, so that nothing
//                        connects inside the commit window
//   hold_writes          the daemon's write gate on that connection (the
//                        host froze the filesystem above it first)
//   commit               one O(1) snapshot.create per volume
//   abort                deletes what this set created; a set this process
//                        never saw has nothing here (the host deletes the
//                        snapshot ids it planned)
//   expose               <mount>/NAME/snapshots/<id>, a read-only file a loop
//                        device can carry
//
// config: {"socket": "/run/snapset/cowd.sock", "timeout_ms": 30000}
// (both optional).
#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <snapset/provider.hpp>
#include <string>
#include <vector>

#include "providers/software-cow/client/cowd_client.hpp"

namespace {

// "2026-12-04T03:35:05Z", for messages.
std::string UtcTime(int64_t unix_ns) {
  const time_t secs = time_t(unix_ns / 1000000000);
  struct tm utc {};
  ::gmtime_r(&secs, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

using snapset::ByteRange;
using snapset::Call;
using snapset::Result;
using snapset::SnapshotInfo;
using snapset::Status;
using snapset::VolumeRef;
using snapset::cow::CowdClient;
using std::chrono::milliseconds;

constexpr size_t kMaxSnapshotsPerVolume = 512;

// "/dev/loop3" -> "loop3"; "" for anything but a whole loop device.
std::string LoopName(std::string_view device) {
  constexpr std::string_view kPrefix = "/dev/loop";
  if (!device.starts_with(kPrefix) || device.size() == kPrefix.size()) return "";
  if (device.substr(kPrefix.size()).find_first_not_of("0123456789") != std::string_view::npos)
    return "";
  return std::string(device.substr(5));
}

// One snapshot of a set in flight.
struct Pending {
  std::string snapshot_id;
  std::string cow_name;
  std::string original_volume;
  uint32_t attributes = 0;
  int64_t created_ns = 0;
  bool created = false;  // the daemon has it: abort must delete it
};

struct PendingSet {
  std::vector<Pending> snapshots;
  // One connection per cow volume of the set, opened while preparing: the
  // commit window only sends requests. Holds live on these connections.
  std::map<std::string, std::unique_ptr<CowdClient>> connections;
  // The host's volume name -> its cow volume, resolved while preparing so
  // that the hold in the commit window reads no sysfs file.
  std::map<std::string, std::string> cow_of;
};

// 8-4-4-4-12 hex digits, the form of the ids the host sends.
bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

class CowProvider : public snapset::Provider {
 public:
  using Provider::Provider;

  Status Load(std::string_view config_json) override {
    rapidjson::Document doc;
    doc.Parse(config_json.data(), config_json.size());
    if (doc.HasParseError() || !doc.IsObject())
      return Status::InvalidArgument("software-cow: config must be a JSON object");
    for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
      const std::string key = it->name.GetString();
      if (key == "socket" && it->value.IsString() && it->value.GetString()[0] == '/') {
        socket_ = it->value.GetString();
      } else if (key == "timeout_ms" && it->value.IsUint() && it->value.GetUint() > 0) {
        timeout_ = milliseconds(it->value.GetUint());
      } else {
        return Status::InvalidArgument(
            "software-cow: config field \"" + key +
            "\" is unknown or invalid; use \"socket\" (absolute path of snapset-cowd's control "
            "socket) and \"timeout_ms\" (a positive number)");
      }
    }
    return Status::Ok();
  }

  Status IsVolumeSupported(const Call& call, const VolumeRef& volume, uint32_t) override {
    auto name = CowNameOf(volume);
    if (!name.ok()) return name.status();
    auto client = Connect();
    if (!client.ok()) return Status::VolumeNotSupported(client.status().message());
    auto status = (*client)->GetVolume(*name);
    if (status.status().IsNotFound())
      return Status::VolumeNotSupported("snapset-cowd at " + socket_ + " has no volume " + *name +
                                        "; create it with: snapset cow create " + *name +
                                        " --size SIZE");
    if (!status.ok()) return Status::VolumeNotSupported(status.status().message());
    const bool stacked = volume.name() != "cow:" + *name;
    call.ExplainSupport((stacked ? "on cow:" + *name + ", " : std::string()) +
                        "served by snapset-cowd at " + socket_);
    return Status::Ok();
  }

  Status BeginPrepareSnapshot(const Call&, std::string_view set_id, std::string_view snapshot_id,
                              const VolumeRef& volume, uint32_t context) override {
    for (std::string_view id : {set_id, snapshot_id}) {
      if (!IsUuid(id))
        return Status::InvalidArgument("software-cow: \"" + std::string(id.substr(0, 64)) +
                                       "\" is not a UUID; snapshot ids name the daemon's "
                                       "snapshots");
    }
    auto name = CowNameOf(volume);
    if (!name.ok()) return name.status();
    // A reused id would make two snapshots of one name.
    if (Find(snapshot_id).ok())
      return Status::AlreadyExists("software-cow: snapshot " + std::string(snapshot_id) +
                                   " exists already");
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, other] : sets_)
      for (const auto& p : other->snapshots)
        if (p.snapshot_id == snapshot_id)
          return Status::AlreadyExists("software-cow: snapshot id " + std::string(snapshot_id) +
                                       " is already used in set " + id);
    auto& set = sets_[std::string(set_id)];
    if (!set) set = std::make_shared<PendingSet>();
    auto& connection = set->connections[*name];
    if (!connection) {
      auto client = Connect();
      if (!client.ok()) return client.status();
      connection = std::move(*client);
    }
    auto status = connection->GetVolume(*name);
    if (!status.ok()) return status.status();
    size_t in_set = 0;
    for (const auto& p : set->snapshots) in_set += p.cow_name == *name;
    if (in_set > 0)
      return Status::InvalidArgument("software-cow: " + std::string(volume.name()) +
                                     " is cow:" + *name + ", which is already in this set");
    if (status->snapshots >= kMaxSnapshotsPerVolume)
      return Status::MaxSnapshots("cow:" + *name + " has " + std::to_string(status->snapshots) +
                                  " snapshots, the most one volume keeps; delete some first");
    set->cow_of[std::string(volume.name())] = *name;
    Pending p;
    p.snapshot_id = snapshot_id;
    p.cow_name = *name;
    p.original_volume = volume.name();
    p.attributes = context | SNAPSET_ATTR_READ_ONLY | SNAPSET_ATTR_PERSISTENT;
    set->snapshots.push_back(std::move(p));
    return Status::Ok();
  }

  // Writes are held: one snapshot.create per volume, on connections that
  // are open already. The engine's snapshot is O(1) in the volume's size.
  Status CommitSnapshots(const Call& call, std::string_view set_id) override {
    std::shared_ptr<PendingSet> set = FindSet(set_id);
    if (!set) return Status::BadState("software-cow: set " + std::string(set_id) + " is unknown");
    for (auto& p : set->snapshots) {
      if (call.cancelled() || call.remaining().count() == 0)
        return Status::HoldWritesTimeout(
            "software-cow: the commit window closed before cow:" + p.cow_name + " was snapshotted");
      auto made = set->connections.at(p.cow_name)->CreateSnapshot(p.cow_name, p.snapshot_id);
      if (!made.ok())
        return made.status().WithContext("software-cow: snapshot of cow:" + p.cow_name);
      p.created = true;
      p.created_ns = made->created_unix_ns;
    }
    return Status::Ok();
  }

  Status PostFinalCommitSnapshots(const Call&, std::string_view set_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    // Remembered here, not in the window: commit takes no lock.
    if (auto it = sets_.find(std::string(set_id)); it != sets_.end())
      for (const auto& p : it->second->snapshots)
        if (p.created) set_of_[p.snapshot_id] = std::string(set_id);
    sets_.erase(std::string(set_id));  // closes the set's connections
    return Status::Ok();
  }

  Status AbortSnapshots(const Call&, std::string_view set_id) override {
    std::shared_ptr<PendingSet> set = FindSet(set_id);
    if (!set) return Status::Ok();  // nothing of it here; see the file comment
    for (auto& p : set->snapshots) {
      if (!p.created) continue;
      auto client = Connect();
      if (!client.ok()) return client.status();
      Status s = (*client)->DeleteSnapshot(p.cow_name, p.snapshot_id);
      if (!s.ok() && !s.IsNotFound()) return s;
      p.created = false;
      std::lock_guard<std::mutex> lock(mu_);
      set_of_.erase(p.snapshot_id);
    }
    std::lock_guard<std::mutex> lock(mu_);
    sets_.erase(std::string(set_id));
    return Status::Ok();
  }

  Status HoldWrites(const Call& call, const VolumeRef& volume) override {
    std::string name;
    CowdClient* connection = HoldConnection(volume.name(), &name);
    if (!connection)
      return Status::BadState("software-cow: " + std::string(volume.name()) +
                              " is in no prepared set");
    const auto left = std::chrono::duration_cast<milliseconds>(call.remaining());
    return connection->HoldWrites(name, std::max(left, milliseconds(1)));
  }

  Status ReleaseWrites(const Call&, const VolumeRef& volume) override {
    std::string name;
    CowdClient* connection = HoldConnection(volume.name(), &name);
    if (!connection) return Status::Ok();  // nothing held through us
    return connection->ReleaseWrites(name);
  }

  Status DeleteSnapshot(const Call&, std::string_view snapshot_id) override {
    auto where = Find(snapshot_id);
    if (!where.ok()) return where.status();
    auto client = Connect();
    if (!client.ok()) return client.status();
    SNAPSET_RETURN_IF_ERROR((*client)->DeleteSnapshot(where->first, std::string(snapshot_id)));
    std::lock_guard<std::mutex> lock(mu_);
    set_of_.erase(std::string(snapshot_id));
    return Status::Ok();
  }

  Status ListSnapshots(const Call&, std::vector<SnapshotInfo>* out) override {
    auto client = Connect();
    if (!client.ok()) return client.status();
    auto volumes = (*client)->ListVolumes();
    if (!volumes.ok()) return volumes.status();
    for (const auto& v : *volumes) {
      auto snapshots = (*client)->ListSnapshots(v.name);
      if (!snapshots.ok()) return snapshots.status();
      for (const auto& s : *snapshots) out->push_back(Info(v.name, s, SetOf(s.id)));
    }
    return Status::Ok();
  }

  Status GetSnapshotProperties(const Call&, std::string_view snapshot_id,
                               SnapshotInfo* out) override {
    auto where = Find(snapshot_id);
    if (!where.ok()) return where.status();
    *out = Info(where->first, where->second, SetOf(std::string(snapshot_id)));
    return Status::Ok();
  }

  // The snapshot is a read-only file of the daemon's FUSE mount already.
  Status ExposeSnapshot(const Call&, std::string_view snapshot_id,
                        std::string* exposed_as) override {
    auto where = Find(snapshot_id);
    if (!where.ok()) return where.status();
    if (!where->second.valid)
      return Status::BadState("software-cow: snapshot " + std::string(snapshot_id) + " of cow:" +
                              where->first + " cannot be read: " + where->second.invalid_reason);
    *exposed_as = where->second.path;
    return Status::Ok();
  }
  Status UnexposeSnapshot(const Call&, std::string_view snapshot_id) override {
    return Find(snapshot_id).status();
  }

  Status RevertToSnapshot(const Call&, std::string_view snapshot_id) override {
    auto where = Find(snapshot_id);
    if (!where.ok()) return where.status();
    auto client = Connect();
    if (!client.ok()) return client.status();
    return (*client)->Revert(where->first, std::string(snapshot_id));
  }

  // From the engine's changed chunks: every chunk written after the base
  // was taken and before the snapshot was, one range per run of chunks.
  // Without a base, the whole volume: a cow volume does not track which of
  // its origin's blocks hold data.
  Status ChangedBlocks(const Call&, std::string_view snapshot_id, std::string_view base_id,
                       uint64_t start_offset, uint32_t max_ranges, uint64_t* volume_size,
                       std::vector<ByteRange>* out) override {
    auto where = Find(snapshot_id);
    if (!where.ok()) return where.status();
    if (!where->second.valid)
      return Status::BadState("software-cow: snapshot " + std::string(snapshot_id) + " of cow:" +
                              where->first + " cannot be read: " + where->second.invalid_reason);
    auto client = Connect();
    if (!client.ok()) return client.status();
    auto volume = (*client)->GetVolume(where->first);
    if (!volume.ok()) return volume.status();
    *volume_size = volume->size_bytes;
    if (base_id.empty()) {
      if (start_offset < volume->size_bytes)
        out->push_back({start_offset, volume->size_bytes - start_offset});
      return Status::Ok();
    }
    auto base = Find(base_id);
    if (!base.ok()) return base.status();
    if (base->first != where->first)
      return Status::InvalidArgument("software-cow: base snapshot " + std::string(base_id) +
                                     " is of cow:" + base->first + ", not cow:" + where->first);
    auto runs =
        (*client)->ChangedChunks(where->first, std::string(base_id), std::string(snapshot_id));
    if (!runs.ok()) return runs.status();
    const uint64_t cs = volume->chunk_size;
    for (const auto& run : *runs) {
      const uint64_t begin = run.first_chunk * cs;
      const uint64_t end = std::min(volume->size_bytes, (run.first_chunk + run.chunk_count) * cs);
      if (end <= start_offset) continue;
      out->push_back({std::max(begin, start_offset), end - std::max(begin, start_offset)});
      if (out->size() == max_ranges) break;
    }
    return Status::Ok();
  }

 private:
  Result<std::unique_ptr<CowdClient>> Connect() const {
    return CowdClient::Connect(socket_, timeout_);
  }

  // The cow volume NAME behind `volume`, or VolumeNotSupported saying why not.
  Result<std::string> CowNameOf(const VolumeRef& volume) {
    if (volume.kind() == SNAPSET_VOLUME_COW) {
      std::string_view name = volume.name();
      if (name.starts_with("cow:")) return std::string(name.substr(4));
      return Status::VolumeNotSupported(std::string(name) + " is not named cow:NAME");
    }
    const std::string device(volume.device_path());
    const std::string loop = LoopName(device);
    if ((volume.kind() != SNAPSET_VOLUME_FILESYSTEM && volume.kind() != SNAPSET_VOLUME_BLOCK) ||
        loop.empty())
      return Status::VolumeNotSupported(std::string(volume.name()) +
                                        " is neither cow:NAME nor on a loop device over a "
                                        "snapset-cowd origin");
    std::ifstream sysfs("/sys/block/" + loop + "/loop/backing_file");
    std::string backing;
    if (!std::getline(sysfs, backing) || backing.empty())
      return Status::VolumeNotSupported(device + " is not attached to a file");
    const std::string mount = DaemonMount();
    if (mount.empty())
      return Status::VolumeNotSupported("snapset-cowd is not running at " + socket_);
    const std::string prefix = mount + "/";
    const std::string suffix = "/origin";
    if (!backing.starts_with(prefix) || !backing.ends_with(suffix) ||
        backing.size() <= prefix.size() + suffix.size())
      return Status::VolumeNotSupported(device + " is over " + backing +
                                        ", which is not a snapset-cowd origin (" + prefix +
                                        "NAME/origin)");
    std::string name =
        backing.substr(prefix.size(), backing.size() - prefix.size() - suffix.size());
    if (name.find('/') != std::string::npos)
      return Status::VolumeNotSupported(device + " is over " + backing +
                                        ", which is not a snapset-cowd origin");
    return name;
  }

  // The daemon's FUSE mount, asked once (it does not change while it runs).
  std::string DaemonMount() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!mount_.empty()) return mount_;
    auto client = Connect();
    if (!client.ok()) return "";
    auto info = (*client)->Info();
    if (info.ok()) mount_ = info->mount;
    return mount_;
  }

  std::shared_ptr<PendingSet> FindSet(std::string_view set_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sets_.find(std::string(set_id));
    return it == sets_.end() ? nullptr : it->second;
  }

  // The connection a set in flight keeps for the host's volume `volume`,
  // and in *name the cow volume it is; null if no prepared set has it.
  CowdClient* HoldConnection(std::string_view volume, std::string* name) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, set] : sets_) {
      auto cow = set->cow_of.find(std::string(volume));
      if (cow == set->cow_of.end()) continue;
      *name = cow->second;
      return set->connections.at(cow->second).get();
    }
    return nullptr;
  }

  // The volume and daemon record of a snapshot, or NotFound.
  Result<std::pair<std::string, snapset::cow::CowSnapshot>> Find(std::string_view snapshot_id) {
    auto client = Connect();
    if (!client.ok()) return client.status();
    auto volumes = (*client)->ListVolumes();
    if (!volumes.ok()) return volumes.status();
    for (const auto& v : *volumes) {
      auto snapshots = (*client)->ListSnapshots(v.name);
      if (!snapshots.ok()) continue;  // a broken volume must not hide the others
      for (auto& s : *snapshots)
        if (s.id == snapshot_id) return std::make_pair(v.name, std::move(s));
    }
    // The daemon remembers the last snapshots its overflow deleted, and why:
    // the host records that as the reason the snapshot is lost.
    for (const auto& v : *volumes) {
      for (const auto& e : v.overflow_events) {
        if (e.snapshot_id != snapshot_id) continue;
        return Status::NotFound("software-cow: snapshot " + std::string(snapshot_id) +
                                " of cow:" + v.name + " was deleted by snapset-cowd at " +
                                UtcTime(e.when_unix_ns) + ": " + e.reason);
      }
    }
    return Status::NotFound("software-cow: no cow volume has snapshot " + std::string(snapshot_id));
  }

  // The set a snapshot this process made was made in. The daemon does not
  // record sets: after a restart, only the host's catalog knows them.
  std::string SetOf(const std::string& snapshot_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = set_of_.find(snapshot_id);
    return it == set_of_.end() ? std::string() : it->second;
  }

  static SnapshotInfo Info(const std::string& volume, const snapset::cow::CowSnapshot& s,
                           std::string set_id) {
    SnapshotInfo info;
    info.snapshot_id = s.id;
    info.set_id = std::move(set_id);
    info.original_volume = "cow:" + volume;
    info.creation_time_ns = s.created_unix_ns;
    info.attributes = SNAPSET_ATTR_READ_ONLY | SNAPSET_ATTR_PERSISTENT;
    info.state = SNAPSET_STATE_COMPLETE;
    info.snapshot_device = s.path;
    if (!s.valid) {
      info.attributes |= SNAPSET_ATTR_INVALID;
      info.invalid_reason = s.invalid_reason;
    }
    return info;
  }

  std::string socket_ = snapset::cow::kDefaultSocket;
  milliseconds timeout_{30000};
  std::mutex mu_;
  std::string mount_;
  std::map<std::string, std::shared_ptr<PendingSet>> sets_;  // sets in flight
  std::map<std::string, std::string> set_of_;                // snapshot id -> set id
};

}  // namespace

SNAPSET_PROVIDER(CowProvider)
