// A FileSystem for tests that can lose what a real disk loses (LevelDB's
// FaultInjectionTestEnv, in memory).
//
// Every file has a durable image plus the list of writes made since its
// last Sync(). Reads see all of them, as the page cache would. Sync() makes
// that file's pending writes durable. Crash() is a power loss: each file
// drops its pending writes, or keeps a random subset or a random prefix of
// them cut into 512-byte sector pieces (to model a disk that reorders and
// tears writes, but writes a sector atomically), and then shows only its
// durable image.
//
// To stop a workload at an arbitrary point, KillAfter(n) lets n more
// mutating calls through and then fails every mutating call, changing
// nothing, until Crash(): as if the power went out there. FailNthWrite /
// FailNthSync inject one error without a crash. Allocate() is durable at
// once (file size metadata is not what the tests examine), and so are
// Remove and file creation.
//
// Locks (OpenOptions::lock) behave like flock between handles; a Crash
// drops them, as the processes holding them are gone.
//
// Thread-safe: one mutex for everything; it is a test tool, not fast.
#ifndef SNAPSET_COW_FAULT_INJECTION_FS_HPP
#define SNAPSET_COW_FAULT_INJECTION_FS_HPP

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "providers/software-cow/engine/file_io.hpp"

namespace snapset::cow {

class FaultInjectionFileSystem : public FileSystem {
 public:
  enum class CrashMode {
    kDropAll,            // every unsynced write is lost
    kKeepRandomSectors,  // each 512-byte piece of each unsynced write kept with p = 1/2
    kKeepRandomPrefix,   // the first k pieces (in write order) kept, k random
  };

  FaultInjectionFileSystem();
  ~FaultInjectionFileSystem() override;

  Result<std::unique_ptr<File>> Open(const std::string& path, const OpenOptions& o) override;
  Status Remove(const std::string& path) override;
  bool Exists(const std::string& path) override;

  // Power loss, then power back: see the file comment. Clears KillAfter
  // and any FailNthWrite / FailNthSync not yet reached.
  void Crash(uint64_t seed, CrashMode mode = CrashMode::kKeepRandomSectors);

  // After `ops` more mutating calls (WriteAt, Sync, Allocate) succeed, all
  // further ones fail with Internal "simulated power loss". -1: never.
  void KillAfter(int64_t ops);
  bool killed() const;

  // The n-th WriteAt / Sync (1 = the next one) on a file whose path
  // contains `path_part` fails once with Internal "injected ... fault".
  // A failed Sync loses that file's unsynced writes to the durable image
  // (they stay readable until Crash), as Linux does when writeback fails.
  void FailNthWrite(uint64_t n, const std::string& path_part = "");
  void FailNthSync(uint64_t n, const std::string& path_part = "");

  uint64_t syncs() const;
  uint64_t writes() const;
  uint64_t mutating_ops() const;  // WriteAt + Sync + Allocate calls that succeeded
  void ResetCounters();

  // What a reader sees now (durable image + pending writes).
  std::vector<uint8_t> Contents(const std::string& path) const;
  // Overwrites bytes directly in both images, for corrupting a file.
  void Poke(const std::string& path, uint64_t offset, const std::vector<uint8_t>& bytes);
  // Bytes written to the file and not yet synced.
  uint64_t UnsyncedBytes(const std::string& path) const;

 private:
  struct FileState;
  class FaultFile;
  Status CheckMutation(const std::string& path, bool is_write, bool is_sync);

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<FileState>> files_;
  uint64_t next_owner_ = 1;
  int64_t kill_budget_ = -1;
  bool killed_ = false;
  uint64_t fail_write_at_ = 0, fail_sync_at_ = 0;  // 0: none
  std::string fail_write_part_, fail_sync_part_;
  uint64_t matching_writes_ = 0, matching_syncs_ = 0;
  uint64_t syncs_ = 0, writes_ = 0, mutating_ = 0;
};

}  // namespace snapset::cow

#endif  // SNAPSET_COW_FAULT_INJECTION_FS_HPP
