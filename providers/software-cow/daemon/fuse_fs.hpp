// FuseFs: serves the registry's volumes as files through FUSE (libfuse3
// low-level API, multithreaded loop):
//
//   <mount>/NAME/origin                  read-write, the volume's size
//   <mount>/NAME/snapshots/<id>          read-only, the snapshot's contents
//
// Inode numbers are derived from (volume uid, kind, snapshot epoch), none of
// which is reused during the daemon's life, so there is no inode table and a
// stale inode simply finds nothing (ENOENT; EIO on a read of a snapshot that
// was deleted while open). No writeback cache: every write reaches the
// engine before write(2) returns, and fsync reaches CowVolume::Flush, which
// is what lets FIFREEZE on a file system stacked on a loop device over an
// origin flush through to the diff area.
//
// Thread-safety: Mount/Start/Stop from one thread; the FUSE handlers run on
// libfuse's worker threads.
#ifndef SNAPSET_COW_DAEMON_FUSE_FS_HPP
#define SNAPSET_COW_DAEMON_FUSE_FS_HPP

#include <snapset/status.hpp>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "providers/software-cow/daemon/volume_registry.hpp"

struct fuse_session;

namespace snapset::cow::daemon {

class FuseFs {
 public:
  explicit FuseFs(VolumeRegistry* registry) : registry_(registry) {}
  ~FuseFs();

  // Mounts on `mount_dir` (an existing empty directory).
  Status Mount(const std::string& mount_dir, bool debug);
  // Runs the multithreaded loop on a thread of its own. `on_unexpected_end`
  // runs on that thread when the loop ends without Stop() (unmounted from
  // outside, connection aborted).
  void Start(std::function<void()> on_unexpected_end);
  // Ends the loop (waits for requests being served) and unmounts. Call
  // after the registry's gates are open for good, so no worker waits on a
  // hold. Returns an error when the loop would not stop.
  Status Stop();

  VolumeRegistry* registry() const { return registry_; }

  // Asks the kernel to drop its cached pages of a deleted snapshot's file,
  // so reads reach the daemon and fail. `wait`: done before returning;
  // otherwise by a thread of its own (a FUSE worker must not wait for it).
  void InvalidateSnapshot(uint64_t volume_uid, uint64_t epoch, bool wait);

 private:
  void InvalidatorLoop();
  VolumeRegistry* registry_;
  std::string mount_dir_;
  fuse_session* se_ = nullptr;
  bool mounted_ = false;
  std::thread loop_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool loop_done_ = false;
  bool stopping_ = false;
  std::thread invalidator_;
  std::vector<uint64_t> to_invalidate_;  // inode numbers, under mu_
  bool invalidator_stop_ = false;
};

}  // namespace snapset::cow::daemon

#endif  // SNAPSET_COW_DAEMON_FUSE_FS_HPP
