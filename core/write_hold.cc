#include "core/write_hold.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

namespace snapset {
namespace {

// Which filesystem a file is on, told two ways. st_dev is what stat reports;
// on btrfs it differs per subvolume although every subvolume shares one
// superblock, and FIFREEZE freezes the superblock. /proc/self/mountinfo
// lists the superblock's device of each mount, so the mount id of the file
// leads to the device that FIFREEZE really freezes.
struct FsIdentity {
  dev_t st_dev = 0;
  dev_t sb_dev = 0;    // 0 when mountinfo could not tell
  std::string fstype;  // "" when mountinfo could not tell

  bool SameFilesystemAs(const FsIdentity& o) const {
    return st_dev == o.st_dev || (sb_dev != 0 && sb_dev == o.sb_dev);
  }
};

// Fills sb_dev and fstype from the mountinfo line of `mount_id`. Fields:
// "ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE ...".
void FillFromMountinfo(uint64_t mount_id, FsIdentity* id) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    uint64_t this_id = 0, parent = 0;
    std::string dev;
    if (!(fields >> this_id >> parent >> dev) || this_id != mount_id) continue;
    unsigned major_num = 0, minor_num = 0;
    if (std::sscanf(dev.c_str(), "%u:%u", &major_num, &minor_num) == 2) {
      id->sb_dev = makedev(major_num, minor_num);
    }
    size_t sep = line.find(" - ");
    if (sep != std::string::npos) {
      std::istringstream rest(line.substr(sep + 3));
      rest >> id->fstype;
    }
    return;
  }
}

// Identity of the file at `dirfd`/`path` (AT_EMPTY_PATH with path "" for
// an open fd). Returns errno, 0 on success.
int Identify(int dirfd, const char* path, int flags, FsIdentity* id) {
  struct statx stx;
  if (::statx(dirfd, path, flags, STATX_BASIC_STATS | STATX_MNT_ID, &stx) != 0) return errno;
  id->st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
  if (stx.stx_mask & STATX_MNT_ID) FillFromMountinfo(stx.stx_mnt_id, id);
  return 0;
}

// Identity of the filesystem that holds, or will hold, `path`: a state
// directory that does not exist yet will be created on the filesystem of
// its nearest existing ancestor.
Result<FsIdentity> IdentifyFutureHome(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec).lexically_normal();
  if (ec) p = path;
  for (;;) {
    FsIdentity id;
    int err = Identify(AT_FDCWD, p.c_str(), 0, &id);
    if (err == 0) return id;
    if ((err != ENOENT && err != ENOTDIR) || p == p.parent_path()) {
      return Status::Unavailable("cannot check which filesystem holds " + path + " (at " +
                                 p.string() + "): " + std::strerror(err));
    }
    p = p.parent_path();
  }
}

// Closes a descriptor unless it was handed on.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

class FreezeHold final : public WriteHold {
 public:
  FreezeHold(std::string mount_point, int fd, std::string fstype)
      : target_(std::move(mount_point)), fd_(fd), fstype_(std::move(fstype)) {}
  ~FreezeHold() override {
    // A hold must not outlive its owner: whoever froze must thaw.
    if (held_) (void)Release();
    ::close(fd_);
  }
  FreezeHold(const FreezeHold&) = delete;
  FreezeHold& operator=(const FreezeHold&) = delete;

  HoldMethod method() const override { return HoldMethod::kFreeze; }
  const std::string& target() const override { return target_; }

  Status Hold() override {
    if (held_) return Status::BadState(target_ + " is already held by this hold");
    if (::ioctl(fd_, FIFREEZE, 0) == 0) {
      held_ = true;
      return Status::Ok();
    }
    switch (int err = errno) {
      case EOPNOTSUPP:
        return Status::Unavailable("filesystem type " + (fstype_.empty() ? "?" : fstype_) +
                                   " on " + target_ + " cannot be frozen");
      case EBUSY:
        // Not ours to thaw: held_ stays false, so Release leaves it alone.
        return Status::Unavailable(target_ + " is already frozen by someone else");
      case EPERM:
        return Status::Unavailable("freezing " + target_ + " needs CAP_SYS_ADMIN (run as root)");
      default:
        return Status::Unavailable("FIFREEZE on " + target_ + " failed: " + std::strerror(err));
    }
  }

  Status Release() override {
    if (!held_) return Status::Ok();
    // EINVAL: not frozen any more; the thaw guard got there first (deadline).
    if (::ioctl(fd_, FITHAW, 0) == 0 || errno == EINVAL) {
      held_ = false;
      return Status::Ok();
    }
    return Status::Unavailable("FITHAW on " + target_ + " failed: " + std::strerror(errno));
  }

 private:
  const std::string target_;
  const int fd_;
  const std::string fstype_;
  // Hold and Release may run on different threads, one after the other.
  std::atomic<bool> held_{false};
};

}  // namespace

const char* HoldMethodName(HoldMethod m) {
  switch (m) {
    case HoldMethod::kNone: return "none";
    case HoldMethod::kFreeze: return "fsfreeze";
    case HoldMethod::kGate: return "write-gate";
  }
  return "none";
}

HoldMethod HoldMethodFor(const Volume& v) {
  if (v.kind == VolumeKind::kFilesystem && !v.mount_point.empty()) return HoldMethod::kFreeze;
  return HoldMethod::kNone;
}

Result<std::unique_ptr<WriteHold>> MakeFreezeHold(const std::string& mount_point,
                                                  const std::vector<std::string>& protected_paths) {
  UniqueFd fd(::open(mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    return Status::Unavailable("cannot open mount point " + mount_point + ": " +
                               std::strerror(errno));
  }
  // Judge the directory that was opened, not the path, which could change.
  FsIdentity target;
  if (int err = Identify(fd.get(), "", AT_EMPTY_PATH, &target); err != 0) {
    return Status::Unavailable("cannot stat mount point " + mount_point + ": " +
                               std::strerror(err));
  }
  FsIdentity root;
  if (Identify(AT_FDCWD, "/", 0, &root) == 0 && target.SameFilesystemAs(root)) {
    return Status::InvalidArgument("refusing to freeze " + mount_point +
                                   ": it is on the root filesystem, which the coordinator and "
                                   "the rest of the system write to; freezing it would hang both");
  }
  for (const std::string& path : protected_paths) {
    if (path.empty()) continue;
    Result<FsIdentity> home = IdentifyFutureHome(path);
    if (!home.ok()) {
      return Status::InvalidArgument(home.status().message() + "; refusing to freeze " +
                                     mount_point + " unchecked");
    }
    if (target.SameFilesystemAs(*home)) {
      return Status::InvalidArgument(
          "freezing " + mount_point + " would freeze the filesystem holding the snapset state "
          "directory " + path + "; the coordinator would deadlock: move the state directory "
          "(--state-dir) to another filesystem");
    }
  }
  return std::unique_ptr<WriteHold>(new FreezeHold(mount_point, fd.release(), target.fstype));
}

}  // namespace snapset
