// The superblock: everything about a diff area that is not per slot.
//
// It is written whole, alternately to copy A and copy B of file 0, each
// time with a higher sequence number, and read back by taking the valid
// copy with the higher sequence. A crash while writing one copy therefore
// leaves the other, older, copy intact: every update is atomic.
//
//   [0,8) magic "SNAPCOWS"  [8,12) version  [12,16) encoded length
//   [16,20) crc of [0,length) with this field zeroed  [20,24) zero
//   [24,32) sequence  [32,length) payload (see superblock.cc)
//
// Invalid-snapshot and overflow reasons are stored once each in a small
// string table, so that 512 snapshots with 64-byte ids, 64 overflow events
// and the paths fit in 64 KiB.
#ifndef SNAPSET_COW_SUPERBLOCK_HPP
#define SNAPSET_COW_SUPERBLOCK_HPP

#include <cstdint>
#include <string>
#include <vector>

#include <snapset/status.hpp>

#include "providers/software-cow/engine/format.hpp"

namespace snapset::cow {

struct SbFile {
  std::string path;
  uint64_t slot_count = 0;
  uint64_t data_offset = 0;  // byte offset of the file's first slot
};

struct SbSnapshot {
  std::string id;
  uint64_t epoch = 0;
  int64_t created_unix_ns = 0;
  bool valid = true;
  std::string reason;
};

struct SbEvent {
  std::string snapshot_id;
  int64_t when_unix_ns = 0;
  std::string reason;
};

struct SuperblockData {
  uint64_t sequence = 0;
  format::Uuid uuid{};
  uint32_t chunk_size = 0;
  uint64_t origin_size = 0;
  uint64_t next_epoch = 1;
  uint64_t overflow_deleted_total = 0;
  std::string name;
  std::string origin_path;
  uint64_t table_offset = 0;
  std::vector<SbFile> files;          // file 0 first
  std::vector<SbSnapshot> snapshots;  // oldest first
  std::vector<SbEvent> events;        // oldest first, at most kMaxEvents
  bool revert_active = false;
  uint64_t revert_epoch = 0;
  std::string revert_id;
};

constexpr size_t kMaxOverflowEvents = 64;
constexpr size_t kMaxStoredReason = 160;  // longer reasons are cut on disk

// The encoded bytes, at most format::kSuperblockSize. InvalidArgument when
// the fixed part (paths, ids) cannot fit even with reasons cut short.
Result<std::vector<uint8_t>> EncodeSuperblock(const SuperblockData& sb);

enum class SbCheck { kOk, kNoMagic, kCorrupt };
// Decodes one copy. On kCorrupt, *why says what is wrong.
SbCheck DecodeSuperblock(const uint8_t* p, size_t n, SuperblockData* out, std::string* why);

}  // namespace snapset::cow

#endif  // SNAPSET_COW_SUPERBLOCK_HPP
