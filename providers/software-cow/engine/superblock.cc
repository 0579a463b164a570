#include "providers/software-cow/engine/superblock.hpp"

#include <cstring>
#include <map>

namespace snapset::cow {
namespace {

constexpr size_t kHeaderBytes = 32;
constexpr uint16_t kNoReason = 0xffff;

// Payload, in order: uuid[16] chunk_size:u32 origin_size:u64 next_epoch:u64
// overflow_total:u64 table_offset:u64 name:str origin_path:str
// files:u16 {path:str slot_count:u64 data_offset:u64}
// revert_active:u8 revert_epoch:u64 revert_id:str
// reasons:u16 {str}
// snapshots:u16 {id:str epoch:u64 created:u64 reason:u16 (0xffff = valid)}
// events:u16 {id:str when:u64 reason:u16}
std::vector<uint8_t> EncodeWith(const SuperblockData& sb, size_t reason_limit) {
  std::vector<uint8_t> out(kHeaderBytes, 0);
  format::Encoder e(&out);
  e.Bytes(sb.uuid.data(), sb.uuid.size());
  e.U32(sb.chunk_size);
  e.U64(sb.origin_size);
  e.U64(sb.next_epoch);
  e.U64(sb.overflow_deleted_total);
  e.U64(sb.table_offset);
  e.String(sb.name);
  e.String(sb.origin_path);
  e.U16(uint16_t(sb.files.size()));
  for (const auto& f : sb.files) {
    e.String(f.path);
    e.U64(f.slot_count);
    e.U64(f.data_offset);
  }
  e.U8(sb.revert_active ? 1 : 0);
  e.U64(sb.revert_epoch);
  e.String(sb.revert_id);

  std::vector<std::string> reasons;
  std::map<std::string, uint16_t> index;
  auto reason_id = [&](const std::string& r) -> uint16_t {
    std::string cut = r.substr(0, reason_limit);
    auto it = index.find(cut);
    if (it != index.end()) return it->second;
    const auto id = uint16_t(reasons.size());
    reasons.push_back(cut);
    index.emplace(cut, id);
    return id;
  };
  std::vector<uint16_t> snap_reason, event_reason;
  for (const auto& s : sb.snapshots) snap_reason.push_back(s.valid ? kNoReason : reason_id(s.reason));
  for (const auto& ev : sb.events) event_reason.push_back(reason_id(ev.reason));
  e.U16(uint16_t(reasons.size()));
  for (const auto& r : reasons) e.String(r);
  e.U16(uint16_t(sb.snapshots.size()));
  for (size_t i = 0; i < sb.snapshots.size(); ++i) {
    const auto& s = sb.snapshots[i];
    e.String(s.id);
    e.U64(s.epoch);
    e.U64(uint64_t(s.created_unix_ns));
    e.U16(snap_reason[i]);
  }
  e.U16(uint16_t(sb.events.size()));
  for (size_t i = 0; i < sb.events.size(); ++i) {
    e.String(sb.events[i].snapshot_id);
    e.U64(uint64_t(sb.events[i].when_unix_ns));
    e.U16(event_reason[i]);
  }

  std::memcpy(out.data(), format::kSuperblockMagic.data(), 8);
  format::PutU32(&out[8], format::kVersion);
  format::PutU32(&out[12], uint32_t(out.size()));
  format::PutU64(&out[24], sb.sequence);
  format::PutU32(&out[16], format::Crc32(out.data(), out.size()));
  return out;
}

}  // namespace

Result<std::vector<uint8_t>> EncodeSuperblock(const SuperblockData& sb) {
  // Reasons are the only part that can grow without bound in practice (one
  // per invalid snapshot); cut them shorter rather than fail an update.
  for (size_t limit : {kMaxStoredReason, size_t(48), size_t(0)}) {
    auto out = EncodeWith(sb, limit);
    if (out.size() <= format::kSuperblockSize) return out;
  }
  return Status::InvalidArgument(
      "the diff area's superblock cannot hold this volume's metadata in " +
      std::to_string(format::kSuperblockSize) + " bytes; use shorter paths");
}

SbCheck DecodeSuperblock(const uint8_t* p, size_t n, SuperblockData* sb, std::string* why) {
  if (n < kHeaderBytes || std::memcmp(p, format::kSuperblockMagic.data(), 8) != 0) {
    *why = "no superblock magic";
    return SbCheck::kNoMagic;
  }
  const uint32_t length = format::GetU32(p + 12);
  if (length < kHeaderBytes || length > n || length > format::kSuperblockSize) {
    *why = "bad superblock length " + std::to_string(length);
    return SbCheck::kCorrupt;
  }
  std::vector<uint8_t> copy(p, p + length);
  format::PutU32(&copy[16], 0);
  if (format::GetU32(p + 16) != format::Crc32(copy.data(), copy.size())) {
    *why = "superblock checksum mismatch";
    return SbCheck::kCorrupt;
  }
  if (format::GetU32(p + 8) != format::kVersion) {
    *why = "unknown format version " + std::to_string(format::GetU32(p + 8));
    return SbCheck::kCorrupt;
  }
  sb->sequence = format::GetU64(p + 24);
  format::Decoder d(p + kHeaderBytes, length - kHeaderBytes);
  d.Bytes(sb->uuid.data(), sb->uuid.size());
  sb->chunk_size = d.U32();
  sb->origin_size = d.U64();
  sb->next_epoch = d.U64();
  sb->overflow_deleted_total = d.U64();
  sb->table_offset = d.U64();
  sb->name = d.String();
  sb->origin_path = d.String();
  sb->files.resize(d.U16());
  for (auto& f : sb->files) {
    f.path = d.String();
    f.slot_count = d.U64();
    f.data_offset = d.U64();
  }
  sb->revert_active = d.U8() != 0;
  sb->revert_epoch = d.U64();
  sb->revert_id = d.String();
  std::vector<std::string> reasons(d.U16());
  for (auto& r : reasons) r = d.String();
  auto reason = [&](uint16_t id) {
    return id < reasons.size() ? reasons[id] : std::string("reason not recorded");
  };
  sb->snapshots.resize(d.U16());
  for (auto& s : sb->snapshots) {
    s.id = d.String();
    s.epoch = d.U64();
    s.created_unix_ns = int64_t(d.U64());
    const uint16_t r = d.U16();
    s.valid = r == kNoReason;
    if (!s.valid) s.reason = reason(r);
  }
  sb->events.resize(d.U16());
  for (auto& ev : sb->events) {
    ev.snapshot_id = d.String();
    ev.when_unix_ns = int64_t(d.U64());
    ev.reason = reason(d.U16());
  }
  if (!d.ok()) {
    *why = "superblock is truncated";
    return SbCheck::kCorrupt;
  }
  return SbCheck::kOk;
}

}  // namespace snapset::cow
