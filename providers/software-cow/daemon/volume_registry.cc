#include "providers/software-cow/daemon/volume_registry.hpp"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "providers/software-cow/daemon/log.hpp"

namespace snapset::cow::daemon {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMinDefaultDiff = 64ull << 20;

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

// A snapshot id for requests that leave it to the daemon: the UTC time to
// the nanosecond, e.g. 20250101T120000.123456789Z.
std::string GeneratedId(int attempt) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  ::gmtime_r(&ts.tv_sec, &utc);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02d.%09ldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ts.tv_nsec);
  std::string id = buf;
  if (attempt > 0) id += "-" + std::to_string(attempt);
  return id;
}

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa{}, sb{};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  if (S_ISBLK(sa.st_mode) && S_ISBLK(sb.st_mode)) return sa.st_rdev == sb.st_rdev;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool IsUnder(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

}  // namespace

VolumeRegistry::VolumeRegistry(std::string state_dir, std::string mount_dir)
    : state_dir_(std::move(state_dir)), mount_dir_(std::move(mount_dir)) {}

VolumeRegistry::~VolumeRegistry() {
  ReleaseEverything();
  CloseAll();
}

size_t VolumeRegistry::Recover() {
  std::vector<std::string> diffs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(volumes_dir(), ec)) {
    if (e.path().extension() == ".diff") diffs.push_back(e.path().string());
  }
  std::sort(diffs.begin(), diffs.end());
  size_t opened = 0;
  for (const auto& diff : diffs) {
    auto v = std::make_shared<Volume>();
    v->name = fs::path(diff).stem().string();
    v->diff_path = diff;
    auto cow = CowVolume::Open(PosixFileSystem(), diff);
    if (!cow.ok()) {
      v->open_error = cow.status();
      Log("volume " + Quote(v->name) + " is broken: cannot open its diff area " + diff + ": " +
          cow.status().ToString() + " (its files are kept; the other volumes are served)");
    } else {
      v->cow = std::move(cow).value();
      if (v->cow->name() != v->name) {
        Log("note: diff area " + diff + " names its volume " + Quote(v->cow->name()) +
            "; it is served under its file name " + Quote(v->name));
      }
      size_t invalid = 0;
      for (const auto& s : v->cow->ListSnapshots()) {
        if (!s.valid) {
          ++invalid;
          Log("volume " + Quote(v->name) + ": snapshot " + Quote(s.id) +
              " is invalid: " + s.invalid_reason);
        }
      }
      Log("volume " + Quote(v->name) + " opened: origin " + v->cow->origin_path() + ", " +
          std::to_string(v->cow->size()) + " bytes, " +
          std::to_string(v->cow->ListSnapshots().size()) + " snapshots (" +
          std::to_string(invalid) + " invalid)");
      ++opened;
    }
    std::lock_guard<std::mutex> lock(mu_);
    v->uid = next_uid_++;
    by_name_[v->name] = v;
    by_uid_[v->uid] = v;
  }
  return opened;
}

VolumePtr VolumeRegistry::FindByName(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_name_.find(name);
  if (it == by_name_.end() || !it->second->open_error.ok()) return nullptr;
  return it->second;
}

VolumePtr VolumeRegistry::FindByUid(uint64_t uid) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_uid_.find(uid);
  if (it == by_uid_.end() || !it->second->open_error.ok()) return nullptr;
  return it->second;
}

std::vector<VolumePtr> VolumeRegistry::Healthy() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<VolumePtr> out;
  for (const auto& [name, v] : by_name_) {
    if (v->open_error.ok()) out.push_back(v);
  }
  return out;
}

std::vector<VolumePtr> VolumeRegistry::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<VolumePtr> out;
  for (const auto& [name, v] : by_name_) out.push_back(v);
  return out;
}

size_t VolumeRegistry::Count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_name_.size();
}

size_t VolumeRegistry::BrokenCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return size_t(std::count_if(by_name_.begin(), by_name_.end(),
                              [](const auto& kv) { return !kv.second->open_error.ok(); }));
}

Result<VolumePtr> VolumeRegistry::Lookup(const std::string& name) const {
  if (name.empty()) return Status::InvalidArgument("no volume name given");
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_name_.find(name);
  if (it == by_name_.end()) {
    return Status::NotFound("no volume named " + Quote(name) +
                            " (volume.list shows the volumes this daemon serves)");
  }
  if (!it->second->open_error.ok()) {
    return Status::BadState("volume " + Quote(name) + " is broken: its diff area " +
                            it->second->diff_path + " could not be opened when snapset-cowd "
                            "started (" + it->second->open_error.ToString() +
                            "); its files were kept: repair or restore them and restart the "
                            "daemon, or remove the volume with volume.delete");
  }
  return it->second;
}

Result<VolumePtr> VolumeRegistry::Get(const std::string& name) const { return Lookup(name); }

// ---- the write gate and holds ----

void VolumeRegistry::BeginWrite(Volume& v) {
  std::unique_lock<std::mutex> lock(v.mu);
  v.cv.wait(lock, [&] { return v.hold_owner == 0 || v.closing; });
  ++v.inflight_writes;
}

void VolumeRegistry::EndWrite(Volume& v) {
  std::lock_guard<std::mutex> lock(v.mu);
  if (--v.inflight_writes == 0) v.cv.notify_all();
}

void VolumeRegistry::CheckOverflow(Volume& v) {
  std::vector<uint64_t> open;
  {
    std::lock_guard<std::mutex> lock(v.mu);
    if (v.open_snapshot_epochs.empty()) return;
    uint64_t deleted = v.cow->stats().snapshots_deleted_by_overflow;
    if (deleted == v.overflow_seen) return;
    v.overflow_seen = deleted;
    for (const auto& [epoch, n] : v.open_snapshot_epochs) open.push_back(epoch);
  }
  std::vector<SnapshotInfo> live = v.cow->ListSnapshots();
  for (uint64_t epoch : open) {
    bool alive = std::any_of(live.begin(), live.end(),
                             [&](const SnapshotInfo& s) { return s.epoch == epoch; });
    if (!alive && snapshot_gone_) snapshot_gone_(v, epoch, true);
  }
}

void VolumeRegistry::EndHoldLocked(Volume& v, const std::string& why) {
  auto held_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - v.hold_start);
  Log("volume " + Quote(v.name) + ": writes resumed after " + std::to_string(held_ms.count()) +
      " ms: " + why);
  v.hold_owner = 0;
  v.cv.notify_all();
}

Status VolumeRegistry::Hold(const std::string& volume, uint64_t conn,
                            std::chrono::milliseconds max_hold) {
  auto found = Lookup(volume);
  if (!found.ok()) return found.status();
  Volume& v = **found;
  std::unique_lock<std::mutex> lock(v.mu);
  if (v.closing) return Status::Unavailable("snapset-cowd is shutting down");
  if (v.hold_owner != 0) {
    return Status::BadState(
        "writes to volume " + Quote(volume) + " are already held" +
        (v.hold_owner == conn ? std::string(" by this connection")
                              : " by another control connection") +
        "; one hold at a time: release it first (writes.release) or wait for it to end");
  }
  if (!v.busy.empty()) {
    return Status::BadState("volume " + Quote(volume) + " is busy: " + v.busy);
  }
  v.hold_owner = conn;
  v.hold_start = Clock::now();
  v.hold_deadline = v.hold_start + max_hold;
  if (v.expired_owner == conn) v.expired_owner = 0;
  Log("volume " + Quote(volume) + ": writes held (at most " + std::to_string(max_hold.count()) +
      " ms, " + std::to_string(v.inflight_writes) + " in flight)");
  {
    std::lock_guard<std::mutex> wd(wd_mu_);
    ++wd_generation_;
    wd_cv_.notify_all();
  }
  const auto deadline = v.hold_deadline;
  v.cv.wait_until(lock, deadline, [&] {
    return v.inflight_writes == 0 || v.hold_owner != conn || v.closing;
  });
  if (v.hold_owner != conn || v.closing) {
    return Status::HoldWritesTimeout("the hold on volume " + Quote(volume) +
                                     " ended before the writes in flight finished");
  }
  if (v.inflight_writes != 0) {
    EndHoldLocked(v, "writes in flight did not finish within the hold's " +
                         std::to_string(max_hold.count()) + " ms");
    return Status::HoldWritesTimeout("writes in flight to volume " + Quote(volume) +
                                     " did not finish within " + std::to_string(max_hold.count()) +
                                     " ms; writes were not held");
  }
  return Status::Ok();
}

Status VolumeRegistry::Release(const std::string& volume, uint64_t conn, bool* released,
                               bool* expired) {
  *released = false;
  *expired = false;
  auto found = Lookup(volume);
  if (!found.ok()) return found.status();
  Volume& v = **found;
  std::lock_guard<std::mutex> lock(v.mu);
  if (v.hold_owner == conn) {
    EndHoldLocked(v, "released by its holder");
    *released = true;
    return Status::Ok();
  }
  if (v.hold_owner != 0) {
    return Status::BadState("writes to volume " + Quote(volume) +
                            " are held by another control connection; only the holder can "
                            "release them (or its connection closing, or the hold's deadline)");
  }
  *expired = v.expired_owner == conn;
  if (*expired) v.expired_owner = 0;
  return Status::Ok();
}

void VolumeRegistry::ReleaseHoldsOf(uint64_t conn) {
  for (const auto& v : All()) {
    std::lock_guard<std::mutex> lock(v->mu);
    if (v->hold_owner == conn) EndHoldLocked(*v, "the holding control connection closed");
    if (v->expired_owner == conn) v->expired_owner = 0;
  }
}

void VolumeRegistry::StartWatchdog() {
  watchdog_ = std::thread([this] { WatchdogLoop(); });
}

void VolumeRegistry::WatchdogLoop() {
  std::unique_lock<std::mutex> wd(wd_mu_);
  while (!wd_stop_) {
    const uint64_t generation = wd_generation_;
    auto now = Clock::now();
    auto next = now + std::chrono::seconds(1);
    wd.unlock();
    for (const auto& v : All()) {
      std::lock_guard<std::mutex> lock(v->mu);
      if (v->hold_owner == 0) continue;
      if (v->hold_deadline <= now) {
        v->expired_owner = v->hold_owner;
        EndHoldLocked(*v, "the hold reached its max_hold_ms deadline");
      } else {
        next = std::min(next, v->hold_deadline);
      }
    }
    wd.lock();
    if (wd_stop_) break;
    // A hold taken since the scan bumped the generation: scan again.
    wd_cv_.wait_until(wd, next, [&] { return wd_stop_ || wd_generation_ != generation; });
  }
}

void VolumeRegistry::ReleaseEverything() {
  {
    std::lock_guard<std::mutex> wd(wd_mu_);
    wd_stop_ = true;
    wd_cv_.notify_all();
  }
  if (watchdog_.joinable()) watchdog_.join();
  for (const auto& v : All()) {
    std::lock_guard<std::mutex> lock(v->mu);
    if (v->hold_owner != 0) EndHoldLocked(*v, "snapset-cowd is shutting down");
    v->closing = true;
    v->cv.notify_all();
  }
}

void VolumeRegistry::CloseAll() {
  for (const auto& v : All()) {
    std::unique_lock<std::shared_mutex> life(v->life);
    if (!v->cow) continue;
    Status s = v->cow->Flush();
    if (!s.ok()) Log("volume " + Quote(v->name) + ": flush at shutdown failed: " + s.ToString());
    v->cow.reset();
    Log("volume " + Quote(v->name) + " closed");
  }
}

// ---- control operations ----

Result<VolumePtr> VolumeRegistry::Create(const std::string& name, uint64_t size_bytes,
                                         const std::string& origin_in, uint64_t chunk_size,
                                         uint64_t diff_max_bytes) {
  SNAPSET_RETURN_IF_ERROR(ValidateName("volume name", name));
  if (chunk_size == 0) chunk_size = kDefaultChunkSize;
  SNAPSET_RETURN_IF_ERROR(ValidateChunkSize(chunk_size));
  if ((size_bytes == 0) == origin_in.empty()) {
    return Status::InvalidArgument(
        "give exactly one of size_bytes (the daemon creates a new origin file of that size) "
        "or origin (an existing file or block device to adopt)");
  }
  if (size_bytes % 4096 != 0) {
    return Status::InvalidArgument("size_bytes " + std::to_string(size_bytes) +
                                   " is not a multiple of 4096");
  }

  std::lock_guard<std::mutex> create(create_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_name_.find(name);
    if (it != by_name_.end()) {
      return Status::AlreadyExists(
          "volume " + Quote(name) + " already exists" +
          (it->second->open_error.ok() ? std::string()
                                       : " (broken: its diff area could not be opened)") +
          "; pick another name or delete it first (volume.delete)");
    }
  }
  const std::string diff = volumes_dir() + "/" + name + ".diff";
  const std::string own_origin = volumes_dir() + "/" + name + ".origin";
  if (::access(diff.c_str(), F_OK) == 0) {
    return Status::AlreadyExists("a diff area " + diff + " exists but is not a volume this "
                                 "daemon serves; move it away or restart snapset-cowd to open it");
  }

  std::string origin;
  uint64_t size = size_bytes;
  if (size_bytes != 0) {
    origin = own_origin;
    if (::access(origin.c_str(), F_OK) == 0) {
      return Status::AlreadyExists("the origin file " + origin + " exists already (left from an "
                                   "earlier volume?); remove it or pick another name");
    }
  } else {
    std::error_code ec;
    fs::path canon = fs::canonical(origin_in, ec);
    if (ec) {
      return Status::NotFound("origin " + Quote(origin_in) + " cannot be used: " + ec.message());
    }
    origin = canon.string();
    if (IsUnder(origin, volumes_dir())) {
      return Status::InvalidArgument("origin " + origin + " is inside snapset-cowd's state "
                                     "directory " + volumes_dir() + "; adopt a file or block "
                                     "device of your own");
    }
    if (IsUnder(origin, mount_dir_)) {
      return Status::InvalidArgument("origin " + origin + " is inside snapset-cowd's own FUSE "
                                     "mount " + mount_dir_ + "; adopt the backing file instead");
    }
    struct stat st{};
    if (::stat(origin.c_str(), &st) != 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
      return Status::InvalidArgument("origin " + origin +
                                     " is neither a regular file nor a block device");
    }
    for (const auto& v : All()) {
      std::shared_lock<std::shared_mutex> life(v->life);
      if (v->cow && SameFile(v->cow->origin_path(), origin)) {
        return Status::BadState("origin " + origin + " is already the origin of volume " +
                                Quote(v->name) + "; one origin serves one volume");
      }
    }
    auto file = PosixFileSystem()->Open(origin, OpenOptions{false, true, false});
    if (!file.ok()) return file.status().WithContext("cannot open origin " + origin);
    auto sz = (*file)->Size();
    if (!sz.ok()) return sz.status().WithContext("cannot read the size of origin " + origin);
    size = *sz;
    if (size == 0) return Status::InvalidArgument("origin " + origin + " is empty");
  }
  if (diff_max_bytes == 0) diff_max_bytes = std::max(size / 4, kMinDefaultDiff);

  CreateOptions o;
  o.name = name;
  o.origin_path = origin;
  o.origin_size = size_bytes;
  o.chunk_size = uint32_t(chunk_size);
  o.diff_files.push_back(DiffFileSpec{diff, diff_max_bytes});
  auto cow = CowVolume::Create(PosixFileSystem(), o);
  if (!cow.ok()) {
    // The engine leaves nothing behind; make sure of it for the files this
    // call alone could have made (neither existed above, under create_mu_).
    std::error_code ec;
    fs::remove(diff, ec);
    if (size_bytes != 0) fs::remove(own_origin, ec);
    Status s = cow.status();
    if (s.Is(Code::kInsufficientStorage)) {
      return Status::InsufficientStorage(
          "volume " + Quote(name) + " does not fit: " + s.message() + " (the diff area is " +
          std::to_string(diff_max_bytes) + " bytes, diff_max_bytes" +
          (size_bytes ? ", and the new origin " + std::to_string(size_bytes) + " bytes, size_bytes"
                      : std::string()) +
          "; both live in " + volumes_dir() + "): ask for less or free space there");
    }
    return s.WithContext("cannot create volume " + Quote(name));
  }
  auto v = std::make_shared<Volume>();
  v->name = name;
  v->diff_path = diff;
  v->cow = std::move(cow).value();
  {
    std::lock_guard<std::mutex> lock(mu_);
    v->uid = next_uid_++;
    by_name_[name] = v;
    by_uid_[v->uid] = v;
  }
  Log("volume " + Quote(name) + " created: origin " + origin + ", " + std::to_string(size) +
      " bytes, chunk " + std::to_string(chunk_size) + ", diff area at most " +
      std::to_string(diff_max_bytes) + " bytes");
  return v;
}

Status VolumeRegistry::Delete(const std::string& name) {
  if (name.empty()) return Status::InvalidArgument("no volume name given");
  std::lock_guard<std::mutex> create(create_mu_);
  VolumePtr v;
  // The kernel releases files after close() and umount have returned: give
  // a just-detached origin or snapshot a moment to be let go, outside the
  // registry lock.
  if (auto found = Lookup(name); found.ok()) {
    Volume& w = **found;
    std::unique_lock<std::mutex> wait(w.mu);
    w.cv.wait_for(wait, std::chrono::seconds(2),
                  [&] { return w.origin_opens == 0 && w.snapshot_opens == 0; });
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_name_.find(name);
    if (it == by_name_.end()) {
      return Status::NotFound("no volume named " + Quote(name) +
                              " (volume.list shows the volumes this daemon serves)");
    }
    v = it->second;
    std::lock_guard<std::mutex> vlock(v->mu);
    if (v->hold_owner != 0) {
      return Status::BadState("writes to volume " + Quote(name) +
                              " are held; release them (writes.release) before deleting it");
    }
    if (v->origin_opens > 0) {
      return Status::BadState("the origin of volume " + Quote(name) + " is open (" +
                              std::to_string(v->origin_opens) + " open handles, e.g. a loop "
                              "device attached to " + mount_dir_ + "/" + name + "/origin); "
                              "unmount it and detach the loop device (losetup -d) first");
    }
    if (v->snapshot_opens > 0) {
      return Status::BadState("snapshots of volume " + Quote(name) + " are open (" +
                              std::to_string(v->snapshot_opens) + " open handles, e.g. a loop "
                              "device on " + mount_dir_ + "/" + name + "/snapshots/...); "
                              "unmount and detach them first");
    }
    if (!v->busy.empty()) return Status::BadState("volume " + Quote(name) + " is busy: " + v->busy);
    v->busy = "being deleted";
    by_name_.erase(it);
    by_uid_.erase(v->uid);
  }
  std::string origin_to_remove;
  {
    std::unique_lock<std::shared_mutex> life(v->life);
    if (v->cow) {
      const std::string own_origin = volumes_dir() + "/" + name + ".origin";
      if (v->cow->origin_path() == own_origin) origin_to_remove = own_origin;
      v->cow.reset();
    } else {
      // Broken: only its own files can be named without its superblock.
      const std::string own_origin = volumes_dir() + "/" + name + ".origin";
      if (::access(own_origin.c_str(), F_OK) == 0) origin_to_remove = own_origin;
    }
  }
  Status result;
  std::error_code ec;
  fs::remove(v->diff_path, ec);
  if (ec) {
    result = Status::Internal("volume " + Quote(name) + " closed but its diff area " + v->diff_path +
                              " could not be removed: " + ec.message());
  }
  if (!origin_to_remove.empty()) {
    fs::remove(origin_to_remove, ec);
    if (ec && result.ok()) {
      result = Status::Internal("volume " + Quote(name) + " closed but its origin " +
                                origin_to_remove + " could not be removed: " + ec.message());
    }
  }
  Log("volume " + Quote(name) + " deleted" +
      (origin_to_remove.empty() ? std::string(" (its adopted origin is kept)")
                                : " with its origin file"));
  return result;
}

Result<SnapshotInfo> VolumeRegistry::CreateSnapshot(const std::string& volume,
                                                    const std::string& id) {
  auto found = Lookup(volume);
  if (!found.ok()) return found.status();
  Volume& v = **found;
  std::shared_lock<std::shared_mutex> life(v.life);
  if (!v.cow) return Status::NotFound("volume " + Quote(volume) + " was deleted meanwhile");
  if (!id.empty()) {
    SNAPSET_RETURN_IF_ERROR(ValidateName("snapshot id", id));
    auto r = v.cow->CreateSnapshot(id);
    if (!r.ok()) return r.status().WithContext("volume " + Quote(volume));
    return r;
  }
  for (int attempt = 0;; ++attempt) {
    auto r = v.cow->CreateSnapshot(GeneratedId(attempt));
    if (r.ok() || !r.status().Is(Code::kAlreadyExists) || attempt >= 8) {
      if (!r.ok()) return r.status().WithContext("volume " + Quote(volume));
      return r;
    }
  }
}

Status VolumeRegistry::DeleteSnapshot(const std::string& volume, const std::string& id) {
  if (id.empty()) return Status::InvalidArgument("no snapshot id given");
  auto found = Lookup(volume);
  if (!found.ok()) return found.status();
  Volume& v = **found;
  std::shared_lock<std::shared_mutex> life(v.life);
  if (!v.cow) return Status::NotFound("volume " + Quote(volume) + " was deleted meanwhile");
  auto info = v.cow->GetSnapshot(id);
  if (info.ok()) {
    // A mounted snapshot would start failing with EIO under its filesystem:
    // refuse, as for a volume in use. (Overflow still deletes open ones; it
    // must never fail an origin write.) The kernel releases a file after
    // close() and umount have returned, so a just-closed snapshot gets a
    // moment to be let go.
    std::unique_lock<std::mutex> lock(v.mu);
    auto opens = [&] {
      auto it = v.open_snapshot_epochs.find(info->epoch);
      return it == v.open_snapshot_epochs.end() ? 0 : it->second;
    };
    v.cv.wait_for(lock, std::chrono::seconds(2), [&] { return opens() == 0; });
    if (const int n = opens(); n > 0)
      return Status::BadState("snapshot " + Quote(id) + " of volume " + Quote(volume) +
                              " is open (" + std::to_string(n) +
                              " handles, e.g. a loop device or a mount); unmount it and detach "
                              "its loop device first");
  }
  Status s = v.cow->DeleteSnapshot(id);
  if (s.ok() && info.ok() && snapshot_gone_) snapshot_gone_(v, info->epoch, false);
  if (s.IsNotFound()) {
    return Status::NotFound("volume " + Quote(volume) + " has no snapshot " + Quote(id) +
                            " (snapshot.list shows its snapshots; the diff area's overflow may "
                            "have deleted it)");
  }
  return s.WithContext("volume " + Quote(volume));
}

Result<std::vector<SnapshotInfo>> VolumeRegistry::ListSnapshots(const std::string& volume) {
  auto found = Lookup(volume);
  if (!found.ok()) return found.status();
  Volume& v = **found;
  std::shared_lock<std::shared_mutex> life(v.life);
  if (!v.cow) return Status::NotFound("volume " + Quote(volume) + " was deleted meanwhile");
  return v.cow->ListSnapshots();
}

Status VolumeRegistry::Revert(const std::string& volume, const std::string& id) {
  if (id.empty()) return Status::InvalidArgument("no snapshot id given: revert to which snapshot?");
  auto found = Lookup(volume);
  if (!found.ok()) return found.status();
  Volume& v = **found;
  {
    std::lock_guard<std::mutex> lock(v.mu);
    if (v.hold_owner != 0) {
      return Status::BadState("writes to volume " + Quote(volume) + " are held; release them first");
    }
    if (v.origin_opens > 0) {
      return Status::BadState("the origin of volume " + Quote(volume) + " is open (" +
                              std::to_string(v.origin_opens) + " open handles, e.g. a loop device "
                              "attached to " + mount_dir_ + "/" + volume + "/origin); unmount "
                              "the file system and detach the loop device (losetup -d) before "
                              "reverting");
    }
    if (!v.busy.empty()) return Status::BadState("volume " + Quote(volume) + " is busy: " + v.busy);
    v.busy = "reverting to snapshot " + Quote(id);
  }
  Status s;
  {
    std::shared_lock<std::shared_mutex> life(v.life);
    if (!v.cow) {
      s = Status::NotFound("volume " + Quote(volume) + " was deleted meanwhile");
    } else {
      Log("volume " + Quote(volume) + ": reverting to snapshot " + Quote(id));
      s = v.cow->Revert(id);
      if (s.IsNotFound()) {
        s = Status::NotFound("volume " + Quote(volume) + " has no snapshot " + Quote(id) +
                             " (snapshot.list shows its snapshots)");
      }
      Log("volume " + Quote(volume) + ": revert to " + Quote(id) + ": " + s.ToString());
    }
  }
  std::lock_guard<std::mutex> lock(v.mu);
  v.busy.clear();
  return s.WithContext("revert of volume " + Quote(volume));
}

Result<std::vector<ChunkRun>> VolumeRegistry::Changed(const std::string& volume,
                                                      const std::string& from,
                                                      const std::string& to,
                                                      uint32_t* chunk_size) {
  if (from.empty()) return Status::InvalidArgument("missing \"from\": the older snapshot's id");
  auto found = Lookup(volume);
  if (!found.ok()) return found.status();
  Volume& v = **found;
  std::shared_lock<std::shared_mutex> life(v.life);
  if (!v.cow) return Status::NotFound("volume " + Quote(volume) + " was deleted meanwhile");
  *chunk_size = v.cow->chunk_size();
  auto r = v.cow->ChangedChunks(from, to);
  if (!r.ok()) return r.status().WithContext("volume " + Quote(volume));
  return r;
}

CowVolumeStatus VolumeRegistry::StatusOf(Volume& v) {
  CowVolumeStatus s;
  s.name = v.name;
  s.diff_path = v.diff_path;
  s.served_origin = mount_dir_ + "/" + v.name + "/origin";
  {
    std::shared_lock<std::shared_mutex> life(v.life);
    if (v.cow) {
      Stats st = v.cow->stats();
      s.origin_path = v.cow->origin_path();
      s.size_bytes = v.cow->size();
      s.chunk_size = v.cow->chunk_size();
      s.diff_bytes_max = st.diff_bytes_max;
      s.diff_bytes_used = st.diff_bytes_used;
      s.chunks_copied = st.chunks_copied;
      s.snapshots = st.snapshots;
      s.snapshots_deleted_by_overflow = st.snapshots_deleted_by_overflow;
      for (const auto& e : v.cow->overflow_events()) {
        s.overflow_events.push_back(CowOverflowEvent{e.snapshot_id, e.when_unix_ns, e.reason});
      }
    }
  }
  std::lock_guard<std::mutex> lock(v.mu);
  s.writes_held = v.hold_owner != 0;
  return s;
}

CowSnapshot VolumeRegistry::SnapshotOf(const Volume& v, const SnapshotInfo& i) const {
  CowSnapshot s;
  s.id = i.id;
  s.epoch = i.epoch;
  s.created_unix_ns = i.created_unix_ns;
  s.valid = i.valid;
  s.invalid_reason = i.invalid_reason;
  s.path = mount_dir_ + "/" + v.name + "/snapshots/" + i.id;
  return s;
}

}  // namespace snapset::cow::daemon
