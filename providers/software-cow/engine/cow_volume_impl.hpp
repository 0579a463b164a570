// CowVolume's private state, shared by its implementation files:
//   cow_volume.cc    the I/O paths (write with copy-out, reads) and
//                    the group-commit step
//   snapshot_ops.cc  snapshots: create, delete, overflow, revert, changed
//                    chunks, and the superblock commit
//   volume_open.cc   Create and Open (recovery)
//
// Lock order: gate -> stripes -> sb_mu -> meta_mu -> (allocator, group
// commit queue). The snapshot set (snaps, live, newest_live) changes only
// with the gate held exclusively *and* meta_mu held exclusively, so a thread
// holding either side of the gate may read it without meta_mu.
#ifndef SNAPSET_COW_COW_VOLUME_IMPL_HPP
#define SNAPSET_COW_COW_VOLUME_IMPL_HPP

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "providers/software-cow/engine/chunk_index.hpp"
#include "providers/software-cow/engine/cow_volume.hpp"
#include "providers/software-cow/engine/format.hpp"
#include "providers/software-cow/engine/geometry.hpp"
#include "providers/software-cow/engine/group_commit.hpp"
#include "providers/software-cow/engine/slot_allocator.hpp"
#include "providers/software-cow/engine/superblock.hpp"
#include "providers/software-cow/engine/write_gate.hpp"

namespace snapset::cow {

int64_t NowUnixNs();

struct CowVolume::Impl {
  explicit Impl(FileSystem* f);

  // ---- identity and files (fixed after Create/Open) ----
  FileSystem* fs;
  std::string name;
  std::string origin_path;
  std::string diff_path;
  format::Uuid uuid{};
  uint64_t area_tag = 0;
  Geometry geo;
  std::unique_ptr<File> origin;
  std::vector<std::unique_ptr<File>> diff;  // nullptr: missing or foreign file

  // ---- concurrency ----
  WriteGate gate;
  ChunkIndex index;
  SlotAllocator slots;
  GroupCommit commits;

  // ---- snapshot metadata, mirrored in the superblock ----
  mutable std::shared_mutex meta_mu;
  std::vector<SbSnapshot> snaps;  // oldest first (ascending epoch)
  std::unordered_map<std::string, uint64_t> by_id;  // id -> epoch
  std::deque<OverflowEvent> events;
  uint64_t next_epoch = 1;
  uint64_t overflow_total = 0;
  bool revert_active = false;
  uint64_t revert_epoch = 0;
  std::string revert_id;
  std::vector<uint64_t> live;  // epochs of valid snapshots, ascending
  uint64_t newest_live = 0;    // 0: no valid snapshot, writes copy nothing
  std::atomic<uint64_t> pinned{0};  // revert source, spared by overflow
  std::string broken_why;

  // ---- superblock writer ----
  std::mutex sb_mu;
  uint64_t sb_seq = 0;
  int sb_good = 1;  // copy holding the newest durable superblock
  std::atomic<bool> broken{false};

  std::atomic<uint64_t> chunks_copied{0};

  // ---- group numbering (format.hpp, SlotEntry); touched only by the
  // group-commit leader, or by Open before any write ----
  uint64_t last_group = 0;     // the highest group on disk or committed
  bool group_failed = false;   // a group's write or sync failed since Open
  uint64_t durable_floor = 0;  // the `durable` of every group since then

  // Origin durability, so an idle origin is not synced again: every
  // completed origin write bumps origin_writes; a sync that began after
  // the n-th write raises origin_synced to n once it is done.
  std::atomic<uint64_t> origin_writes{0};
  std::atomic<uint64_t> origin_synced{0};
  // Makes every origin write completed before the call durable; no device
  // flush when a sync that covers them has finished already.
  Status SyncOrigin();

  // ---- cow_volume.cc ----
  Status CheckRange(const char* what, uint64_t offset, size_t n) const;
  Status Write(uint64_t offset, const uint8_t* buf, size_t n);
  Status WriteBatch(uint64_t offset, const uint8_t* buf, size_t n);
  bool TakeSlots(std::vector<format::SlotEntry>* copies, std::vector<uint32_t>* reserved);
  // Reads the old data of `copies` from the origin and writes it to their
  // slots. *origin_failed tells a failed origin read from a diff-area error.
  // Fills in each copy's data_crc.
  Status CopyOut(std::vector<format::SlotEntry>* copies, uint64_t* file_mask, bool* origin_failed);
  Status CommitGroup(const std::vector<CommitRequest*>& group);
  uint64_t CountCopiesNeeded(uint64_t first, uint64_t last) const;
  void MakeRoom(uint64_t first, uint64_t last, std::vector<uint32_t>* reserved);
  Status RecoverFromCopyFailure(const std::vector<format::SlotEntry>& copies, const Status& cause);
  // REQUIRES: gate held (either side); the epoch is a valid snapshot's.
  Status ReadSnapshotLocked(uint64_t epoch, uint64_t offset, uint8_t* buf, size_t n);
  Status BrokenStatus() const;

  // ---- snapshot_ops.cc ----
  // REQUIRES: meta_mu held exclusively (and the gate, outside Open).
  void RecomputeLive();
  // REQUIRES: the snapshot set is stable (gate held, or single-threaded).
  bool RangeHoldsLive(uint64_t from, uint64_t to) const;
  bool IsLive(uint64_t epoch) const;
  const SbSnapshot* FindSnapshot(const std::string& id) const;  // REQUIRES: meta_mu
  SbSnapshot* FindSnapshot(const std::string& id);
  Status NoSuchSnapshot(const std::string& id) const;
  Status InvalidSnapshot(const SbSnapshot& s) const;
  // Writes the in-memory metadata as the next superblock copy and syncs.
  // After two failed attempts the volume is marked broken.
  Status CommitSuperblock();
  SuperblockData BuildSuperblock() const;  // REQUIRES: meta_mu
  // Frees every slot whose range no longer holds a live snapshot.
  // REQUIRES: gate exclusive; the superblock that killed them is durable.
  void Reclaim();
  // REQUIRES: gate exclusive.
  Status DeleteLocked(const std::string& id, const std::string* overflow_reason);
  Status DeleteOldestForOverflow();
  Status FinishRevert();
  Status RunRevert(uint64_t epoch);
  // Marks valid snapshots matching pred invalid. REQUIRES: meta_mu exclusive.
  template <typename Pred>
  size_t InvalidateIf(Pred pred, const std::string& reason) {
    size_t n = 0;
    for (auto& s : snaps) {
      if (s.valid && pred(s.epoch)) {
        s.valid = false;
        s.reason = reason;
        ++n;
      }
    }
    return n;
  }

  // ---- volume_open.cc ----
  Status CreateFiles(const CreateOptions& o, std::vector<std::string>* created);
  Status Prewrite();
  Status Load(const std::string& path);
  // REQUIRES: Open, the snapshot set loaded. Removes the entries whose data
  // did not reach the disk; syncs the diff area.
  Status DropEntriesWithoutData(std::vector<format::SlotEntry>* entries,
                                const std::vector<std::string>& unusable);
  void LoadMeta(const SuperblockData& sb);
};

}  // namespace snapset::cow

#endif  // SNAPSET_COW_COW_VOLUME_IMPL_HPP
