// The file I/O seam of the copy-on-write engine (CONVENTIONS: LevelDB Env).
//
// The engine touches its origin and diff-area files only through these two
// interfaces, so a test can substitute a file system that forgets every
// write not yet made durable by Sync() (fault_injection_fs.hpp) and prove
// that the engine orders its writes correctly.
//
// Thread-safety: a File may be used from many threads at once (positional
// I/O only, no file offset). A FileSystem is thread-safe.
#ifndef SNAPSET_COW_FILE_IO_HPP
#define SNAPSET_COW_FILE_IO_HPP

#include <snapset/status.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace snapset::cow {

class File {
 public:
  virtual ~File() = default;
  // Reads exactly `n` bytes at `offset`. Reading past the end is an error
  // (the engine never does it on a well-formed volume).
  virtual Status ReadAt(uint64_t offset, void* buf, size_t n) = 0;
  // Writes exactly `n` bytes at `offset`. Not durable until Sync().
  virtual Status WriteAt(uint64_t offset, const void* buf, size_t n) = 0;
  // Makes every completed WriteAt durable (fdatasync).
  virtual Status Sync() = 0;
  // Size in bytes (block devices: BLKGETSIZE64).
  virtual Result<uint64_t> Size() = 0;
  // Reserves [0, size) so later writes there cannot fail with ENOSPC
  // (posix_fallocate). InsufficientStorage when the disk lacks the space.
  virtual Status Allocate(uint64_t size) = 0;
  // The path it was opened with, for messages.
  virtual const std::string& path() const = 0;
};

struct OpenOptions {
  bool create = false;      // create; fails with AlreadyExists if it exists
  bool read_only = false;
  bool lock = true;         // exclusive advisory lock (flock / O_EXCL on a
                            // block device): a second opener gets BadState
                            // "in use by another volume"
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual Result<std::unique_ptr<File>> Open(const std::string& path, const OpenOptions& o) = 0;
  virtual Status Remove(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
};

// The real one: POSIX files and block devices.
FileSystem* PosixFileSystem();

}  // namespace snapset::cow

#endif  // SNAPSET_COW_FILE_IO_HPP
