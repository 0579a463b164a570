// The byte-level encoding of the diff area (cow_volume.hpp, "On disk"):
// constants of the layout, a little-endian encoder/decoder, and the two
// small fixed-size records, the slot entry and the extension-file header.
// The superblock, which is larger and variable, is in superblock.hpp.
//
// Every record carries the CRC-32 of gzip and zlib (computed with ISA-L),
// so a torn or stray write is detected on Open instead of being trusted.
// Copied chunk data is checksummed too (SlotEntry::data_crc).
#ifndef SNAPSET_COW_FORMAT_HPP
#define SNAPSET_COW_FORMAT_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace snapset::cow::format {

constexpr uint32_t kVersion = 1;
constexpr uint64_t kSuperblockSize = 64 * 1024;  // each of copies A and B
constexpr uint64_t kSlotTableOffset = 2 * kSuperblockSize;
constexpr uint64_t kSlotEntrySize = 64;  // divides 512: never straddles a sector
constexpr uint64_t kExtHeaderSize = 4096;
constexpr uint64_t kAlign = 4096;
constexpr std::string_view kSuperblockMagic = "SNAPCOWS";  // 8 bytes
constexpr std::string_view kExtMagic = "SNAPCOWX";         // 8 bytes
constexpr uint32_t kSlotMagic = 0x544f4c53;                // "SLOT"

inline uint64_t SuperblockOffset(int copy) { return copy == 0 ? 0 : kSuperblockSize; }
inline uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

uint32_t Crc32(const void* data, size_t n);

using Uuid = std::array<uint8_t, 16>;
Uuid RandomUuid();
std::string UuidString(const Uuid& u);
// The first 8 bytes of the uuid, stamped into every slot entry so that an
// entry cannot be mistaken for one of another diff area.
uint64_t AreaTag(const Uuid& u);

// Appends little-endian integers and length-prefixed strings.
class Encoder {
 public:
  explicit Encoder(std::vector<uint8_t>* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(v); }
  void U16(uint16_t v) { Fixed(v, 2); }
  void U32(uint32_t v) { Fixed(v, 4); }
  void U64(uint64_t v) { Fixed(v, 8); }
  void Bytes(const void* p, size_t n);
  void String(std::string_view s);  // u16 length + bytes; REQUIRES: size < 65536

 private:
  void Fixed(uint64_t v, int n);
  std::vector<uint8_t>* out_;
};

// Reads what Encoder wrote; any overrun sets !ok() and returns zeros.
class Decoder {
 public:
  Decoder(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  uint8_t U8() { return uint8_t(Fixed(1)); }
  uint16_t U16() { return uint16_t(Fixed(2)); }
  uint32_t U32() { return uint32_t(Fixed(4)); }
  uint64_t U64() { return Fixed(8); }
  void Bytes(void* out, size_t n);
  std::string String();
  bool ok() const { return ok_; }
  size_t pos() const { return pos_; }

 private:
  uint64_t Fixed(int n);
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  bool ok_ = true;
};

void PutU32(uint8_t* p, uint32_t v);
void PutU64(uint8_t* p, uint64_t v);
uint32_t GetU32(const uint8_t* p);
uint64_t GetU64(const uint8_t* p);

// One slot-table entry: "chunk `chunk`, epochs (from, to] -> slot `slot`".
//   [0,4) magic  [4,8) crc of [8,64)  [8,16) slot  [16,24) chunk
//   [24,32) from [32,40) to           [40,48) area tag
//   [48,52) crc of the slot's data    [52,60) group
//   [60,64) group - durable (0xffffffff: durable is 0)
// `group` numbers the group commit that wrote the entry (1, 2, ...), and
// `durable` is a group up to which every group's data and entries were
// durable when this one was written: an entry of a group above every
// entry's `durable` may have reached the disk without its data, so Open
// checks its data against `data_crc` (cow_volume.hpp, "Ordering"). Group 0
// is an entry written before groups existed, when the data was synced
// before its entry: durable.
struct SlotEntry {
  uint64_t slot = 0;
  uint64_t chunk = 0;
  uint64_t from = 0;
  uint64_t to = 0;
  uint32_t data_crc = 0;
  uint64_t group = 0;
  uint64_t durable = 0;
};
void EncodeSlotEntry(const SlotEntry& e, uint64_t area_tag, uint8_t out[kSlotEntrySize]);
// False for a free (all-zero), torn or foreign entry, or one written for
// another slot number.
bool DecodeSlotEntry(const uint8_t in[kSlotEntrySize], uint64_t slot, uint64_t area_tag,
                     SlotEntry* e);

// Header of diff-area file i > 0, so Open can tell a missing or swapped
// extension file from a good one.
//   [0,8) magic [8,12) version [12,16) crc of [0,64) with crc zeroed
//   [16,32) uuid [32,36) index [36,40) chunk size [40,48) slot count
struct ExtHeader {
  Uuid uuid{};
  uint32_t index = 0;
  uint32_t chunk_size = 0;
  uint64_t slot_count = 0;
};
std::vector<uint8_t> EncodeExtHeader(const ExtHeader& h);  // kExtHeaderSize bytes
// Empty string when good, else what is wrong with it.
std::string DecodeExtHeader(const uint8_t* in, size_t n, ExtHeader* h);

}  // namespace snapset::cow::format

#endif  // SNAPSET_COW_FORMAT_HPP
