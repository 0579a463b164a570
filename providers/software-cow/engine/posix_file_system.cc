// The real FileSystem: POSIX files and block devices.
//
// Locking: an exclusive, non-blocking flock on regular files; O_EXCL on a
// block device (the kernel then refuses a second exclusive opener and any
// mount). Both are released when the descriptor is closed, also when the
// process dies, so a crashed daemon never leaves a stale lock.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "providers/software-cow/engine/file_io.hpp"

namespace snapset::cow {
namespace {

std::string Errno(int e) { return std::strerror(e); }

Status IoError(const std::string& what, const std::string& path, int e) {
  const std::string msg = what + " " + path + ": " + Errno(e);
  switch (e) {
    case ENOENT: return Status::NotFound(msg);
    case EEXIST: return Status::AlreadyExists(msg);
    case ENOSPC:
    case EDQUOT:
    case EFBIG: return Status::InsufficientStorage(msg);
    default: return Status::Internal(msg);
  }
}

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path, bool block) : fd_(fd), path_(std::move(path)), block_(block) {}
  ~PosixFile() override { ::close(fd_); }

  Status ReadAt(uint64_t offset, void* buf, size_t n) override {
    auto* p = static_cast<char*>(buf);
    while (n > 0) {
      const ssize_t r = ::pread(fd_, p, n, off_t(offset));
      if (r < 0) {
        if (errno == EINTR) continue;
        return IoError("reading", path_, errno);
      }
      if (r == 0) {
        return Status::Internal("reading " + path_ + ": unexpected end of file at offset " +
                                std::to_string(offset));
      }
      p += r;
      n -= size_t(r);
      offset += uint64_t(r);
    }
    return Status::Ok();
  }

  Status WriteAt(uint64_t offset, const void* buf, size_t n) override {
    const auto* p = static_cast<const char*>(buf);
    while (n > 0) {
      const ssize_t r = ::pwrite(fd_, p, n, off_t(offset));
      if (r < 0) {
        if (errno == EINTR) continue;
        return IoError("writing", path_, errno);
      }
      p += r;
      n -= size_t(r);
      offset += uint64_t(r);
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return IoError("syncing", path_, errno);
    return Status::Ok();
  }

  Result<uint64_t> Size() override {
    if (block_) {
      uint64_t size = 0;
      if (::ioctl(fd_, BLKGETSIZE64, &size) != 0) return IoError("sizing", path_, errno);
      return size;
    }
    struct stat st;
    if (::fstat(fd_, &st) != 0) return IoError("stat of", path_, errno);
    return uint64_t(st.st_size);
  }

  Status Allocate(uint64_t size) override {
    if (block_) {
      auto have = Size();
      if (!have.ok()) return have.status();
      if (*have < size) {
        return Status::InsufficientStorage("block device " + path_ + " holds " +
                                           std::to_string(*have) + " bytes, " +
                                           std::to_string(size) + " are needed");
      }
      return Status::Ok();
    }
    // Refuse early when the file system plainly lacks the space: glibc's
    // posix_fallocate falls back to writing zeros on file systems without
    // fallocate, which for a huge size would run for hours first.
    struct statvfs vfs;
    if (::fstatvfs(fd_, &vfs) == 0) {
      uint64_t avail = 0;
      if (__builtin_mul_overflow(uint64_t(vfs.f_bavail), uint64_t(vfs.f_frsize), &avail)) {
        avail = UINT64_MAX;
      }
      if (size > avail) {
        return Status::InsufficientStorage(
            "cannot reserve " + std::to_string(size) + " bytes for " + path_ + ": its file system has " +
            std::to_string(avail) + " bytes free; free some space or choose a smaller size");
      }
    }
    const int e = ::posix_fallocate(fd_, 0, off_t(size));
    if (e != 0) {
      Status st = IoError("reserving " + std::to_string(size) + " bytes for", path_, e);
      if (st.Is(Code::kInsufficientStorage)) {
        return Status::InsufficientStorage(st.message() + "; free some space or choose a smaller size");
      }
      return st;
    }
    return Status::Ok();
  }

  const std::string& path() const override { return path_; }

 private:
  int fd_;
  std::string path_;
  bool block_;
};

class PosixFs final : public FileSystem {
 public:
  Result<std::unique_ptr<File>> Open(const std::string& path, const OpenOptions& o) override {
    if (path.empty()) return Status::InvalidArgument("empty path");
    struct stat st;
    const bool exists = ::stat(path.c_str(), &st) == 0;
    const bool block = exists && S_ISBLK(st.st_mode);
    if (exists && !block && !S_ISREG(st.st_mode)) {
      return Status::InvalidArgument(path + " is neither a regular file nor a block device");
    }
    int flags = (o.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    if (o.create) flags |= O_CREAT | O_EXCL;
    if (block && o.lock) flags |= O_EXCL;
    const int fd = ::open(path.c_str(), flags, 0600);
    if (fd < 0) {
      const int e = errno;
      if (block && e == EBUSY) {
        return Status::BadState(path + " is in use by another volume (the block device is "
                                       "open exclusively or mounted; release it first)");
      }
      if (e == EEXIST) {
        return Status::AlreadyExists(path + " already exists; choose another path or remove it");
      }
      if (e == ENOENT) return Status::NotFound(path + " does not exist");
      return IoError("opening", path, e);
    }
    if (!block && o.lock && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int e = errno;
      ::close(fd);
      if (e == EWOULDBLOCK) {
        return Status::BadState(path + " is in use by another volume (another process or volume "
                                       "holds its lock; close that one first)");
      }
      return IoError("locking", path, e);
    }
    return std::unique_ptr<File>(new PosixFile(fd, path, block));
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return IoError("removing", path, errno);
    return Status::Ok();
  }

  bool Exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }
};

}  // namespace

FileSystem* PosixFileSystem() {
  static auto* fs = new PosixFs();
  return fs;
}

}  // namespace snapset::cow
