// CowVolume: one origin plus its diff area, with many point-in-time
// snapshots (DESIGN §7). The engine behind snapset-cowd.
//
// The idea. Snapshots get increasing epochs 1, 2, 3, ... (never reused).
// The first write to a chunk after the newest snapshot E copies the chunk's
// old contents once into a diff-area slot and records the mapping
//     chunk c, epochs (from, to]  ->  slot s
// where `from` is the `to` of c's previous copy (0 if none) and to = E. That
// one copy serves every snapshot whose epoch lies in (from, to]; a snapshot
// with epoch e reads chunk c from the mapping whose range holds e, or from the
// origin when there is none. Write cost therefore does not depend on the
// number of snapshots. Deleting a snapshot frees each slot whose range no
// longer holds a live snapshot.
//
// On disk (diff area; all integers little-endian, every record checksummed
// with the CRC-32 of gzip and zlib, computed by ISA-L):
//   file 0: superblock copy A (64 KiB) | superblock copy B (64 KiB) |
//           slot table (one 64-byte entry per slot, padded to 4 KiB) |
//           data slots (chunk_size each)
//   file i>0 ("extension" files): 4 KiB header naming the area's uuid and
//           the file's index | data slots
// The superblock holds the geometry, the origin's path and size, the volume
// name, the live snapshots (id, epoch, time, valid/invalid + reason), the
// next epoch, the overflow history and an in-progress revert; each update
// gets a higher sequence number and is written and synced to the copy (A or
// B) not holding the last durable state, then copied unsynced to the other
// one, so an update is atomic (after a crash the valid copy with the higher
// sequence wins) and damage to one copy normally loses nothing.
// A slot entry is rewritten only while its slot is free (its range holds no
// live snapshot), and a 64-byte entry never straddles a sector, so a torn
// write can damage only an entry whose origin write never happened.
//
// Ordering (the crash-safety argument):
//   1. the old chunk data is written to its slot, with its CRC-32 in the
//      slot entry, and the entry is written; then one Sync of each file
//      touched makes both durable (one sync per group, not one for the data
//      and one for the mapping);
//   2. only then the origin write is issued and the caller's Write returns.
// Concurrent writers share step 1 (group commit: one leader syncs for
// everyone queued). A crash inside step 1 may keep an entry whose data did
// not reach the disk; its origin write was never issued, so the origin
// still holds the data the entry's snapshots need. Open finds such entries
// without reading the whole diff area: groups are numbered and each entry
// records a group up to which everything was durable when it was written
// (the previous group, since groups run one at a time; after a failed
// group, the one before the failure). Only entries above every such mark
// get their data checked; one whose data fails its CRC is dropped (and
// zeroed on disk), so its snapshots read the origin. CreateSnapshot syncs
// the origin before it records the snapshot, so a snapshot's view of
// uncopied chunks is durable too. Freed slots are reused only after the
// superblock that freed them is durable.
//
// Thread-safety: every method may be called from any thread concurrently.
// Writes to the same chunk are serialized; reads of the origin are not
// synchronized with writes (as for any block device).
#ifndef SNAPSET_COW_COW_VOLUME_HPP
#define SNAPSET_COW_COW_VOLUME_HPP

#include <snapset/status.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "providers/software-cow/engine/file_io.hpp"

namespace snapset::cow {

constexpr uint32_t kMinChunkSize = 4 * 1024;
constexpr uint32_t kMaxChunkSize = 1024 * 1024;
constexpr uint32_t kDefaultChunkSize = 64 * 1024;
constexpr size_t kMaxSnapshots = 512;  // live snapshots per volume
constexpr size_t kMaxSnapshotIdLength = 64;

struct DiffFileSpec {
  std::string path;
  uint64_t max_bytes = 0;  // this file's share of the diff area's maximum
};

struct CreateOptions {
  std::string name;         // volume name, stored in the superblock
  std::string origin_path;  // file or block device
  // > 0: create a new origin file of this size (fails if it exists).
  // 0: adopt an existing file or block device as it is.
  uint64_t origin_size = 0;
  uint32_t chunk_size = kDefaultChunkSize;  // power of two, 4 KiB..1 MiB
  // The diff area: file 0 first. Every file is created (must not exist) and
  // fully allocated, so a full disk fails here, never at a later write.
  std::vector<DiffFileSpec> diff_files;
};

struct SnapshotInfo {
  std::string id;
  uint64_t epoch = 0;
  int64_t created_unix_ns = 0;
  bool valid = true;
  std::string invalid_reason;  // why it cannot be read, when !valid
};

// A snapshot the diff area's overflow deleted to make room.
struct OverflowEvent {
  std::string snapshot_id;
  int64_t when_unix_ns = 0;
  std::string reason;
};

struct Stats {
  uint64_t origin_bytes = 0;
  uint32_t chunk_size = 0;
  uint64_t slots_total = 0;
  uint64_t slots_used = 0;
  uint64_t diff_bytes_max = 0;   // slots_total * chunk_size
  uint64_t diff_bytes_used = 0;  // slots_used * chunk_size
  uint64_t snapshots = 0;
  uint64_t chunks_copied = 0;               // since open
  uint64_t group_commits = 0;               // group commits (one sync each) since open
  uint64_t snapshots_deleted_by_overflow = 0;  // ever (from the superblock)
  uint64_t index_memory_bytes = 0;          // in-memory mapping index
};

// A run of chunks [first, first + count), for changed-chunk lists.
struct ChunkRun {
  uint64_t first = 0;
  uint64_t count = 0;
};

class CowVolume {
 public:
  // Creates origin (when origin_size > 0) and diff area. Errors:
  // InvalidArgument (chunk size not a power of two in range, empty or bad
  // name, diff area too small for one slot, origin size not a multiple of
  // 4 KiB), AlreadyExists (a file exists), InsufficientStorage (the disk
  // cannot hold the diff area or origin), BadState (origin in use by
  // another volume). On error nothing created is left behind.
  static Result<std::unique_ptr<CowVolume>> Create(FileSystem* fs, const CreateOptions& o);

  // Opens an existing volume from its diff area's file 0 and recovers:
  // picks the newest valid superblock, rebuilds the index from the slot
  // table (entries with a bad checksum or a range holding no live snapshot
  // are free, and so are entries of the newest groups whose data did not
  // reach the disk), syncs the diff area, finishes an interrupted revert,
  // and marks snapshots invalid with the reason when their data cannot be
  // trusted (an extension file missing or of the wrong area, the origin's
  // size changed). Errors: NotFound (no such file), InvalidArgument ("not a
  // snapset diff area" or a corrupt header: both superblock copies fail
  // their checksum), BadState (in use by another volume).
  static Result<std::unique_ptr<CowVolume>> Open(FileSystem* fs, const std::string& diff_path);

  ~CowVolume();
  CowVolume(const CowVolume&) = delete;
  CowVolume& operator=(const CowVolume&) = delete;

  const std::string& name() const;
  const std::string& origin_path() const;
  const std::string& diff_path() const;  // file 0
  uint64_t size() const;                 // origin size in bytes
  uint32_t chunk_size() const;

  // The origin. Write returns once the data is on the origin (page cache)
  // and every snapshot's old data it replaced is durable in the diff area.
  // Never fails for lack of diff-area space (overflow deletes the oldest
  // snapshots, see overflow_events()). Out-of-range I/O: InvalidArgument.
  Status Read(uint64_t offset, void* buf, size_t n);
  Status Write(uint64_t offset, const void* buf, size_t n);
  Status Flush();  // makes every completed origin write durable

  // O(1) in the volume's size: syncs the origin and records the snapshot in
  // the superblock. `id`: 1..64 of [A-Za-z0-9._-]. Errors: InvalidArgument,
  // AlreadyExists (id in use), MaxSnapshots (512 live).
  Result<SnapshotInfo> CreateSnapshot(const std::string& id);
  // Deletes the snapshot and frees the slots only it needed. NotFound.
  Status DeleteSnapshot(const std::string& id);
  std::vector<SnapshotInfo> ListSnapshots() const;  // oldest first
  Result<SnapshotInfo> GetSnapshot(const std::string& id) const;
  // Reads the snapshot's contents as of its creation. NotFound (no such
  // snapshot, or deleted meanwhile by overflow), BadState (invalid: the
  // message says why), InvalidArgument (out of range).
  Status ReadSnapshot(const std::string& id, uint64_t offset, void* buf, size_t n);

  // Makes the origin's contents equal to the snapshot's. Later snapshots
  // stay intact (the origin writes go through the copy-on-write path). The
  // revert is recorded first and resumed by Open after a crash. The caller
  // makes sure nobody uses the origin meanwhile.
  Status Revert(const std::string& id);

  // Chunks whose contents may differ between snapshot `from_id` and
  // snapshot `to_id` (which must be newer), or the origin when `to_id` is
  // empty: exactly the chunks written after `from` was taken (and before
  // `to` was). Sorted, merged runs.
  Result<std::vector<ChunkRun>> ChangedChunks(const std::string& from_id,
                                              const std::string& to_id) const;

  Stats stats() const;
  std::vector<OverflowEvent> overflow_events() const;  // oldest first, last 64

 private:
  struct Impl;
  explicit CowVolume(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Checks a chunk size: power of two within [kMinChunkSize, kMaxChunkSize].
Status ValidateChunkSize(uint64_t chunk_size);
// Checks a snapshot id or volume name: 1..64 of [A-Za-z0-9._-], not "." or "..".
Status ValidateName(const std::string& what, const std::string& name);

}  // namespace snapset::cow

#endif  // SNAPSET_COW_COW_VOLUME_HPP
