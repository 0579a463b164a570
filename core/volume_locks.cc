#include "core/volume_locks.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>

namespace snapset {

namespace {

// A volume name may hold '/' and be long; the lock file name is its hash.
// Two volumes sharing a hash would only serialize their sets, never mix them.
std::string LockName(const std::string& volume) {
  // FNV-1a, 64 bit: stable across runs and builds (std::hash is not).
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : volume) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx.lock", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

Result<std::unique_ptr<VolumeLocks>> VolumeLocks::Acquire(const std::string& state_dir,
                                                          const std::vector<std::string>& volumes,
                                                          const std::string& set_id) {
  const std::string dir = state_dir + "/locks";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Unavailable("cannot create lock folder " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);

  std::unique_ptr<VolumeLocks> locks(new VolumeLocks());
  for (const auto& volume : volumes) {
    const std::string path = dir + "/" + LockName(volume);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
      return Status::Unavailable("cannot open lock file " + path + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      std::string holder;
      char buf[128];
      ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
      if (n > 0) holder.assign(buf, size_t(n));
      ::close(fd);
      return Status::BadState("set in progress: " + volume + " belongs to set " +
                              (holder.empty() ? std::string("(unknown)") : holder) +
                              ", which is still being created; wait for it to finish or use "
                              "other volumes");
    }
    // Record who holds it, for the message another set gets.
    if (::ftruncate(fd, 0) == 0) {
      ssize_t ignored = ::pwrite(fd, set_id.data(), set_id.size(), 0);
      (void)ignored;
    }
    locks->fds_.push_back(fd);
  }
  return locks;
}

VolumeLocks::~VolumeLocks() {
  for (int fd : fds_) {
    // Clear the holder before unlocking so no one reads a stale set id.
    if (::ftruncate(fd, 0) != 0) {
    }
    ::close(fd);  // closing drops the flock
  }
}

}  // namespace snapset
