// loop-clone: a small but real snapset provider, and the running example of
// docs/ihv-guide.md.
//
// It snapshots a loop device (or a filesystem mounted on one) by cloning the
// device's backing file with FICLONE into <snapshot_dir>/<id>.img. A clone
// shares the file's extents, so it costs metadata only however large the
// file is: short enough for the commit window. It needs a filesystem that
// clones (xfs with reflink, the default since xfsprogs 5.1, or btrfs), and
// the clone must land on the same filesystem as the backing file.
//
// Per snapshot, two files in snapshot_dir:
//   <id>.img   the clone; mode 0444 once committed
//   <id>.json  the snapshot's properties. The snapshot exists exactly when
//              this sidecar does: ListSnapshots scans for sidecars.
//
// config: {"snapshot_dir": "/absolute/path"}
#include <snapset/provider.hpp>

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using snapset::Call;
using snapset::SnapshotInfo;
using snapset::Status;
using snapset::VolumeRef;

// Owns one file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string ErrnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string FilesystemName(long magic) {
  if (magic == EXT4_SUPER_MAGIC) return "ext4";  // ext2 and ext3 share the magic
  if (magic == TMPFS_MAGIC) return "tmpfs";
  if (magic == XFS_SUPER_MAGIC) return "xfs";
  if (magic == BTRFS_SUPER_MAGIC) return "btrfs";
  std::ostringstream text;
  text << "a filesystem of type 0x" << std::hex << magic;
  return text.str();
}

// Snapshot ids become file names: allow only UUID characters, so that no id
// can name a path outside snapshot_dir.
bool IsSafeId(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) || c == '-';
         });
}

// "/dev/loop3" -> "loop3"; "" for anything but a whole loop device.
std::string LoopName(std::string_view device) {
  constexpr std::string_view kPrefix = "/dev/loop";
  if (!device.starts_with(kPrefix) || device.size() == kPrefix.size()) return "";
  std::string_view number = device.substr(kPrefix.size());
  if (number.find_first_not_of("0123456789") != std::string_view::npos) return "";
  return std::string(device.substr(5));
}

// After a crash, dir/name is either absent or complete: write a temp file,
// fsync it, rename it into place, fsync the directory.
Status WriteFileDurably(const fs::path& dir, const std::string& name, const std::string& text) {
  const fs::path tmp = dir / (name + ".tmp");
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0 || ::write(fd.get(), text.data(), text.size()) != ssize_t(text.size()) ||
        ::fsync(fd.get()) != 0)
      return Status::Unavailable(ErrnoText("loop-clone: cannot write " + tmp.string()));
  }
  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (::rename(tmp.c_str(), (dir / name).c_str()) != 0 || dir_fd.get() < 0 ||
      ::fsync(dir_fd.get()) != 0)
    return Status::Unavailable(ErrnoText("loop-clone: cannot publish " + (dir / name).string()));
  return Status::Ok();
}

// One snapshot of a set in flight. Its files are opened while preparing so
// that the commit window has nothing left to do but clone.
struct Pending {
  SnapshotInfo info;
  std::string backing_file;
  Fd source;  // the loop device's backing file
  Fd image;   // <snapshot_dir>/<id>.img, empty until commit
};
using PendingSet = std::vector<std::unique_ptr<Pending>>;

class LoopCloneProvider : public snapset::Provider {
 public:
  using Provider::Provider;

  Status Load(std::string_view config_json) override {
    rapidjson::Document doc;
    doc.Parse(config_json.data(), config_json.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("snapshot_dir") ||
        !doc["snapshot_dir"].IsString())
      return Status::InvalidArgument(
          "loop-clone: config needs \"snapshot_dir\": the absolute path of a directory on the "
          "xfs or btrfs filesystem that holds the loop devices' backing files");
    dir_ = doc["snapshot_dir"].GetString();
    if (!dir_.is_absolute())
      return Status::InvalidArgument("loop-clone: snapshot_dir \"" + dir_.string() +
                                     "\" is not an absolute path");
    return Status::Ok();
  }

  Status IsVolumeSupported(const Call&, const VolumeRef& volume, uint32_t) override {
    std::string backing_file;
    return FindBackingFile(volume, &backing_file);
  }

  Status BeginPrepareSnapshot(const Call&, std::string_view set_id, std::string_view snapshot_id,
                              const VolumeRef& volume, uint32_t context) override {
    if (!IsSafeId(snapshot_id))
      return Status::InvalidArgument("loop-clone: snapshot id \"" + std::string(snapshot_id) +
                                     "\" is not a UUID");
    auto p = std::make_unique<Pending>();
    SNAPSET_RETURN_IF_ERROR(FindBackingFile(volume, &p->backing_file));
    p->info.snapshot_id = snapshot_id;
    p->info.set_id = set_id;
    p->info.original_volume = volume.name();
    p->info.attributes = context | SNAPSET_ATTR_READ_ONLY | SNAPSET_ATTR_PERSISTENT;
    p->source.reset(::open(p->backing_file.c_str(), O_RDONLY | O_CLOEXEC));
    if (p->source.get() < 0)
      return Status::Unavailable(ErrnoText("loop-clone: cannot open " + p->backing_file));
    const fs::path image = ImagePath(snapshot_id);
    // A durable "<id>.pending" naming the set comes before the image: after a
    // crash, the host's recovery aborts the set in a new process that never
    // saw it, and this marker is how that abort finds the set's files.
    if (std::error_code ec; fs::exists(image, ec))
      return Status::AlreadyExists("loop-clone: " + image.string() + " exists already");
    SNAPSET_RETURN_IF_ERROR(
        WriteFileDurably(dir_, std::string(snapshot_id) + ".pending", std::string(set_id)));
    // O_EXCL: a reused snapshot id must fail, not overwrite a snapshot.
    p->image.reset(::open(image.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (p->image.get() < 0 && errno == EEXIST)
      return Status::AlreadyExists("loop-clone: " + image.string() + " exists already");
    if (p->image.get() < 0)
      return Status::Unavailable(ErrnoText("loop-clone: cannot create " + image.string()));
    std::lock_guard<std::mutex> lock(mu_);
    auto& set = sets_[std::string(set_id)];
    if (!set) set = std::make_shared<PendingSet>();
    set->push_back(std::move(p));
    return Status::Ok();
  }

  // Writes are held: one FICLONE per volume and nothing else. The lock is
  // not held while cloning, so an abort from the host's watchdog never waits.
  Status CommitSnapshots(const Call& call, std::string_view set_id) override {
    std::shared_ptr<PendingSet> set = FindSet(set_id);
    timespec now;
    ::clock_gettime(CLOCK_REALTIME, &now);
    for (auto& p : *set) {
      if (call.cancelled() || call.remaining().count() == 0)
        return Status::HoldWritesTimeout("loop-clone: the commit window closed before " +
                                         p->backing_file + " was cloned");
      if (::ioctl(p->image.get(), FICLONE, p->source.get()) != 0)
        return Status::ProviderVeto(ErrnoText("loop-clone: FICLONE of " + p->backing_file));
      p->info.creation_time_ns = int64_t(now.tv_sec) * 1000000000 + now.tv_nsec;
    }
    return Status::Ok();
  }

  // Writes flow again: make each clone read-only and durable, then publish
  // its sidecar. A crash in between leaves an unlisted .img, never a listed
  // snapshot that is incomplete.
  Status PostCommitSnapshots(const Call&, std::string_view set_id) override {
    for (auto& p : *FindSet(set_id)) {
      if (::fchmod(p->image.get(), 0444) != 0 || ::fsync(p->image.get()) != 0)
        return Status::Unavailable(ErrnoText("loop-clone: cannot finish " +
                                             ImagePath(p->info.snapshot_id).string()));
      SNAPSET_RETURN_IF_ERROR(WriteFileDurably(dir_, p->info.snapshot_id + ".json", Sidecar(*p)));
      // Listed from now on; the marker is no longer needed.
      ::unlink((dir_ / (p->info.snapshot_id + ".pending")).c_str());
      p->source.reset();
      p->image.reset();
    }
    return Status::Ok();
  }

  Status PostFinalCommitSnapshots(const Call&, std::string_view set_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    sets_.erase(std::string(set_id));
    return Status::Ok();
  }

  // May run while a late commit still clones; that commit keeps the set
  // alive through its shared_ptr, and a clone into an unlinked file vanishes.
  Status AbortSnapshots(const Call&, std::string_view set_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sets_.find(std::string(set_id));
    if (it == sets_.end()) return AbortFromMarkers(set_id);
    for (const auto& p : *it->second) SNAPSET_RETURN_IF_ERROR(RemoveFiles(p->info.snapshot_id));
    sets_.erase(it);
    return Status::Ok();
  }

  // Existence is the sidecar's; a damaged sidecar can still be deleted.
  Status DeleteSnapshot(const Call&, std::string_view snapshot_id) override {
    std::error_code ec;
    if (!IsSafeId(snapshot_id) || !fs::exists(dir_ / (std::string(snapshot_id) + ".json"), ec))
      return Status::NotFound("loop-clone has no snapshot " + std::string(snapshot_id));
    return RemoveFiles(std::string(snapshot_id));
  }

  Status ListSnapshots(const Call&, std::vector<SnapshotInfo>* out) override {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
      if (entry.path().extension() != ".json") continue;
      SnapshotInfo info;
      Status s = ReadSidecar(entry.path(), &info);
      if (!s.ok()) {
        host().Warning(s.message());  // one damaged sidecar must not hide the others
        continue;
      }
      out->push_back(std::move(info));
    }
    if (ec && ec != std::errc::no_such_file_or_directory)
      return Status::Unavailable("loop-clone: cannot read " + dir_.string() + ": " + ec.message());
    return Status::Ok();
  }

  Status GetSnapshotProperties(const Call&, std::string_view snapshot_id,
                               SnapshotInfo* out) override {
    if (!IsSafeId(snapshot_id))
      return Status::NotFound("loop-clone has no snapshot " + std::string(snapshot_id));
    return ReadSidecar(dir_ / (std::string(snapshot_id) + ".json"), out);
  }

  // The image is a read-only file already; exposing it is naming it.
  // `losetup --read-only --find --show PATH` attaches it for mounting.
  Status ExposeSnapshot(const Call& call, std::string_view snapshot_id,
                        std::string* exposed_as) override {
    SnapshotInfo info;
    SNAPSET_RETURN_IF_ERROR(GetSnapshotProperties(call, snapshot_id, &info));
    *exposed_as = ImagePath(snapshot_id).string();
    return Status::Ok();
  }
  Status UnexposeSnapshot(const Call&, std::string_view) override { return Status::Ok(); }

 private:
  fs::path ImagePath(std::string_view id) const { return dir_ / (std::string(id) + ".img"); }

  // provider.hpp calls commit and post-commit only for a prepared set.
  std::shared_ptr<PendingSet> FindSet(std::string_view set_id) {
    std::lock_guard<std::mutex> lock(mu_);
    return sets_.at(std::string(set_id));
  }

  // OK and the backing file for a volume this provider can snapshot; else
  // VolumeNotSupported with the precise reason, for `snapset providers explain`.
  Status FindBackingFile(const VolumeRef& volume, std::string* backing) const {
    const std::string device(volume.device_path());
    const std::string loop = LoopName(device);
    if (volume.kind() != SNAPSET_VOLUME_FILESYSTEM && volume.kind() != SNAPSET_VOLUME_BLOCK)
      return Status::VolumeNotSupported(std::string(volume.name()) + " is not a loop device");
    if (loop.empty())
      return Status::VolumeNotSupported((device.empty() ? std::string(volume.name()) : device) +
                                        " is not a loop device");
    std::ifstream sysfs("/sys/block/" + loop + "/loop/backing_file");
    if (!std::getline(sysfs, *backing) || backing->empty())
      return Status::VolumeNotSupported(device + " is not attached to a backing file");
    struct stat file_st, dir_st;
    struct statfs file_fs;
    if (::stat(backing->c_str(), &file_st) != 0 || ::statfs(backing->c_str(), &file_fs) != 0)
      return Status::VolumeNotSupported(ErrnoText(device + "'s backing file " + *backing));
    const std::string where = device + "'s backing file " + *backing + " is on ";
    if (file_fs.f_type != XFS_SUPER_MAGIC && file_fs.f_type != BTRFS_SUPER_MAGIC)
      return Status::VolumeNotSupported(where + FilesystemName(file_fs.f_type) +
                                        ", which cannot clone files (FICLONE needs xfs with "
                                        "reflink or btrfs)");
    if (::stat(dir_.c_str(), &dir_st) != 0 || !S_ISDIR(dir_st.st_mode))
      return Status::VolumeNotSupported("snapshot_dir " + dir_.string() + " is not a directory");
    if (dir_st.st_dev != file_st.st_dev)
      return Status::VolumeNotSupported("snapshot_dir " + dir_.string() +
                                        " is on another filesystem than the backing file " +
                                        *backing + "; FICLONE works only within one");
    // An xfs made with reflink=0 refuses FICLONE: find out now rather than in
    // the commit window, by cloning one unnamed empty file into another.
    Fd a(::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    Fd b(::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (a.get() < 0 || b.get() < 0 || ::ioctl(b.get(), FICLONE, a.get()) != 0)
      return Status::VolumeNotSupported(
          ErrnoText(where + FilesystemName(file_fs.f_type) + ", but a test FICLONE in " +
                    dir_.string() + " failed (an xfs made with reflink=0?)"));
    return Status::Ok();
  }

  std::string Sidecar(const Pending& p) const {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    auto text = [&w](const char* key, const std::string& value) {
      w.Key(key);
      w.String(value.c_str(), rapidjson::SizeType(value.size()));
    };
    w.StartObject();
    text("snapshot_id", p.info.snapshot_id);
    text("set_id", p.info.set_id);
    text("original_volume", p.info.original_volume);
    text("backing_file", p.backing_file);
    w.Key("creation_time_ns");
    w.Int64(p.info.creation_time_ns);
    w.Key("attributes");  // SNAPSET_ATTR_*, READ_ONLY included
    w.Uint(p.info.attributes);
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize()) + "\n";
  }

  static Status ReadSidecar(const fs::path& path, SnapshotInfo* out) {
    std::ifstream in(path);
    if (!in) return Status::NotFound("loop-clone has no snapshot " + path.stem().string());
    std::stringstream text;
    text << in.rdbuf();
    rapidjson::Document d;
    d.Parse(text.str().c_str());
    bool ok = !d.HasParseError() && d.IsObject();
    for (const char* key : {"snapshot_id", "set_id", "original_volume"})
      ok = ok && d.HasMember(key) && d[key].IsString();
    ok = ok && d.HasMember("creation_time_ns") && d["creation_time_ns"].IsInt64() &&
         d.HasMember("attributes") && d["attributes"].IsUint();
    if (!ok) return Status::Internal("loop-clone: sidecar " + path.string() + " is damaged");
    out->snapshot_id = d["snapshot_id"].GetString();
    out->set_id = d["set_id"].GetString();
    out->original_volume = d["original_volume"].GetString();
    out->creation_time_ns = d["creation_time_ns"].GetInt64();
    out->attributes = d["attributes"].GetUint();
    out->state = SNAPSET_STATE_COMPLETE;
    return Status::Ok();
  }

  // A set prepared by an earlier process (it crashed): its snapshots are the
  // ".pending" markers that name it.
  Status AbortFromMarkers(std::string_view set_id) const {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
      if (entry.path().extension() != ".pending") continue;
      std::ifstream in(entry.path());
      std::string owner;
      if (std::getline(in, owner) && owner == set_id)
        SNAPSET_RETURN_IF_ERROR(RemoveFiles(entry.path().stem().string()));
    }
    return Status::Ok();
  }

  // Sidecar first: once it is gone the snapshot no longer exists, even if a
  // crash keeps the image. Files already gone are fine: abort is idempotent.
  Status RemoveFiles(const std::string& id) const {
    for (const char* suffix : {".json", ".json.tmp", ".img", ".pending", ".pending.tmp"}) {
      const fs::path path = dir_ / (id + suffix);
      if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        return Status::Unavailable(ErrnoText("loop-clone: cannot remove " + path.string()));
    }
    return Status::Ok();
  }

  fs::path dir_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<PendingSet>> sets_;  // sets in flight
};

}  // namespace

SNAPSET_PROVIDER(LoopCloneProvider)
