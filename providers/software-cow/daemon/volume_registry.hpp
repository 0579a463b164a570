// VolumeRegistry: the daemon's volumes (one CowVolume each), their write
// gates and holds, and the operations of the control protocol on them.
// FUSE (fuse_fs.cc) and the control socket (control_server.cc) both work
// through it.
//
// Layout on disk: <state-dir>/volumes/NAME.diff is the diff area (file 0)
// of volume NAME; the superblock in it names the origin. An origin the
// daemon created is <state-dir>/volumes/NAME.origin. Nothing else is
// stored: state is recovered from the diff areas alone.
//
// Lock order: create_mu_ -> mu_ -> Volume::mu; Volume::life is taken
// without holding any of the others except create_mu_.
//
// Thread-safety: every method may be called from any thread.
#ifndef SNAPSET_COW_DAEMON_VOLUME_REGISTRY_HPP
#define SNAPSET_COW_DAEMON_VOLUME_REGISTRY_HPP

#include <snapset/status.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "providers/software-cow/client/cowd_client.hpp"
#include "providers/software-cow/engine/cow_volume.hpp"

namespace snapset::cow::daemon {

using Clock = std::chrono::steady_clock;

// One volume. `cow` is null when the volume is broken (its diff area could
// not be opened: `open_error` says why) or after it was closed.
struct Volume {
  uint64_t uid = 0;  // unique in this daemon's life; FUSE inode numbers derive from it
  std::string name;
  std::string diff_path;
  Status open_error;

  // Shared by every use of `cow`, exclusive to close it.
  std::shared_mutex life;
  std::unique_ptr<CowVolume> cow;

  // The gate and open counts.
  std::mutex mu;
  std::condition_variable cv;
  int origin_opens = 0;
  int snapshot_opens = 0;
  std::map<uint64_t, int> open_snapshot_epochs;  // epoch -> open handles
  uint64_t overflow_seen = 0;  // snapshots_deleted_by_overflow last looked at
  int inflight_writes = 0;
  uint64_t hold_owner = 0;  // control connection holding writes, 0: none
  Clock::time_point hold_start, hold_deadline;
  uint64_t expired_owner = 0;  // the last holder whose hold ran out at its deadline
  std::string busy;            // non-empty while a revert or delete runs: no opens
  bool closing = false;        // daemon shutdown: the gate is open for good
};

using VolumePtr = std::shared_ptr<Volume>;

class VolumeRegistry {
 public:
  VolumeRegistry(std::string state_dir, std::string mount_dir);
  ~VolumeRegistry();

  const std::string& state_dir() const { return state_dir_; }
  const std::string& mount_dir() const { return mount_dir_; }
  std::string volumes_dir() const { return state_dir_ + "/volumes"; }

  // Opens every <state-dir>/volumes/*.diff. A volume that fails is kept as
  // broken and logged; returns how many opened.
  size_t Recover();
  // Starts the thread that ends holds at their deadline.
  void StartWatchdog();
  // Daemon shutdown: ends every hold, opens every gate for good, stops the
  // watchdog.
  void ReleaseEverything();
  // Flushes and closes every volume (after FUSE has stopped).
  void CloseAll();

  // Lookups for FUSE. Only volumes that opened.
  VolumePtr FindByName(const std::string& name) const;
  VolumePtr FindByUid(uint64_t uid) const;
  std::vector<VolumePtr> Healthy() const;
  size_t Count() const;
  size_t BrokenCount() const;

  // The write gate, for the FUSE write path: BeginWrite waits while writes
  // are held, EndWrite ends the write.
  void BeginWrite(Volume& v);
  void EndWrite(Volume& v);
  // After an origin write: when snapshots of `v` are open and the diff
  // area's overflow deleted snapshots, reports the open ones that are gone.
  // REQUIRES: v.life held shared and v.cow set.
  void CheckOverflow(Volume& v);

  // Called when a snapshot is deleted, so that FUSE can drop the kernel's
  // cached pages of its file: reads must fail then. `in_fuse_request`: the
  // caller is a FUSE worker serving a request (an origin write whose
  // overflow deleted it), which must not wait for the kernel.
  void SetSnapshotGoneHook(
      std::function<void(const Volume&, uint64_t epoch, bool in_fuse_request)> hook) {
    snapshot_gone_ = std::move(hook);
  }

  // Control operations. `conn` identifies the control connection (holds).
  Result<VolumePtr> Create(const std::string& name, uint64_t size_bytes, const std::string& origin,
                           uint64_t chunk_size, uint64_t diff_max_bytes);
  Status Delete(const std::string& name);
  std::vector<VolumePtr> All() const;  // broken ones too, by name
  Result<VolumePtr> Get(const std::string& name) const;  // healthy only: errors say why
  Result<SnapshotInfo> CreateSnapshot(const std::string& volume, const std::string& id);
  Status DeleteSnapshot(const std::string& volume, const std::string& id);
  Result<std::vector<SnapshotInfo>> ListSnapshots(const std::string& volume);
  Status Hold(const std::string& volume, uint64_t conn, std::chrono::milliseconds max_hold);
  // *released: whether this connection's hold was in force. *expired: it
  // had ended at its deadline before.
  Status Release(const std::string& volume, uint64_t conn, bool* released, bool* expired);
  void ReleaseHoldsOf(uint64_t conn);  // the connection closed
  Status Revert(const std::string& volume, const std::string& id);
  Result<std::vector<ChunkRun>> Changed(const std::string& volume, const std::string& from,
                                        const std::string& to, uint32_t* chunk_size);

  // Status for replies. `v` must be healthy.
  CowVolumeStatus StatusOf(Volume& v);
  CowSnapshot SnapshotOf(const Volume& v, const SnapshotInfo& s) const;

 private:
  Result<VolumePtr> Lookup(const std::string& name) const;
  void WatchdogLoop();
  void EndHoldLocked(Volume& v, const std::string& why);

  const std::string state_dir_;
  const std::string mount_dir_;

  std::mutex create_mu_;  // serializes create and delete
  mutable std::mutex mu_;
  std::map<std::string, VolumePtr> by_name_;
  std::map<uint64_t, VolumePtr> by_uid_;
  uint64_t next_uid_ = 1;

  std::mutex wd_mu_;
  std::condition_variable wd_cv_;
  bool wd_stop_ = false;
  uint64_t wd_generation_ = 0;  // bumped by every new hold
  std::thread watchdog_;
  std::function<void(const Volume&, uint64_t, bool)> snapshot_gone_;
};

}  // namespace snapset::cow::daemon

#endif  // SNAPSET_COW_DAEMON_VOLUME_REGISTRY_HPP
