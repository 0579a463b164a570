#include "providers/software-cow/engine/format.hpp"

#include <isa-l/crc.h>

#include <cstring>
#include <random>

namespace snapset::cow::format {

uint32_t Crc32(const void* data, size_t n) {
  uint32_t crc = 0;
  const auto* p = static_cast<const unsigned char*>(data);
  while (n > 0) {  // ISA-L takes 64-bit lengths; bounded anyway, as zlib's were
    const size_t part = n > (size_t(1) << 30) ? (size_t(1) << 30) : n;
    crc = crc32_gzip_refl(crc, p, part);
    p += part;
    n -= part;
  }
  return crc;
}

Uuid RandomUuid() {
  std::random_device rd;
  Uuid u;
  for (size_t i = 0; i < u.size(); i += 4) {
    const uint32_t r = rd();
    std::memcpy(&u[i], &r, 4);
  }
  u[6] = uint8_t((u[6] & 0x0f) | 0x40);  // version 4
  u[8] = uint8_t((u[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return u;
}

std::string UuidString(const Uuid& u) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < u.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += kHex[u[i] >> 4];
    s += kHex[u[i] & 15];
  }
  return s;
}

uint64_t AreaTag(const Uuid& u) { return GetU64(u.data()); }

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void Encoder::Fixed(uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out_->push_back(uint8_t(v >> (8 * i)));
}
void Encoder::Bytes(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  out_->insert(out_->end(), b, b + n);
}
void Encoder::String(std::string_view s) {
  U16(uint16_t(s.size()));
  Bytes(s.data(), s.size());
}

uint64_t Decoder::Fixed(int n) {
  if (!ok_ || n_ - pos_ < size_t(n)) {
    ok_ = false;
    return 0;
  }
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p_[pos_ + size_t(i)];
  pos_ += size_t(n);
  return v;
}
void Decoder::Bytes(void* out, size_t n) {
  if (!ok_ || n_ - pos_ < n) {
    ok_ = false;
    std::memset(out, 0, n);
    return;
  }
  std::memcpy(out, p_ + pos_, n);
  pos_ += n;
}
std::string Decoder::String() {
  const size_t len = U16();
  if (!ok_ || n_ - pos_ < len) {
    ok_ = false;
    return {};
  }
  std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
  pos_ += len;
  return s;
}

void EncodeSlotEntry(const SlotEntry& e, uint64_t area_tag, uint8_t out[kSlotEntrySize]) {
  std::memset(out, 0, kSlotEntrySize);
  PutU32(out, kSlotMagic);
  PutU64(out + 8, e.slot);
  PutU64(out + 16, e.chunk);
  PutU64(out + 24, e.from);
  PutU64(out + 32, e.to);
  PutU64(out + 40, area_tag);
  PutU32(out + 48, e.data_crc);
  PutU64(out + 52, e.group);
  uint32_t lag = 0xffffffff;  // durable 0: nothing known
  if (e.durable > 0 && e.durable <= e.group && e.group - e.durable < 0xffffffff) {
    lag = uint32_t(e.group - e.durable);
  }
  PutU32(out + 60, lag);
  PutU32(out + 4, Crc32(out + 8, kSlotEntrySize - 8));
}

bool DecodeSlotEntry(const uint8_t in[kSlotEntrySize], uint64_t slot, uint64_t area_tag,
                     SlotEntry* e) {
  if (GetU32(in) != kSlotMagic) return false;
  if (GetU32(in + 4) != Crc32(in + 8, kSlotEntrySize - 8)) return false;
  if (GetU64(in + 8) != slot || GetU64(in + 40) != area_tag) return false;
  e->slot = slot;
  e->chunk = GetU64(in + 16);
  e->from = GetU64(in + 24);
  e->to = GetU64(in + 32);
  e->data_crc = GetU32(in + 48);
  e->group = GetU64(in + 52);
  const uint32_t lag = GetU32(in + 60);
  e->durable = lag == 0xffffffff || lag > e->group ? 0 : e->group - lag;
  return e->from < e->to;
}

std::vector<uint8_t> EncodeExtHeader(const ExtHeader& h) {
  std::vector<uint8_t> out(kExtHeaderSize, 0);
  std::memcpy(out.data(), kExtMagic.data(), 8);
  PutU32(&out[8], kVersion);
  std::memcpy(&out[16], h.uuid.data(), 16);
  PutU32(&out[32], h.index);
  PutU32(&out[36], h.chunk_size);
  PutU64(&out[40], h.slot_count);
  PutU32(&out[12], Crc32(out.data(), 64));
  return out;
}

std::string DecodeExtHeader(const uint8_t* in, size_t n, ExtHeader* h) {
  if (n < 64) return "it is too short for a header";
  if (std::memcmp(in, kExtMagic.data(), 8) != 0) return "it has no snapset diff-area header";
  uint8_t copy[64];
  std::memcpy(copy, in, 64);
  PutU32(copy + 12, 0);
  if (GetU32(in + 12) != Crc32(copy, 64)) return "its header fails its checksum";
  if (GetU32(in + 8) != kVersion) return "its header has an unknown format version";
  std::memcpy(h->uuid.data(), in + 16, 16);
  h->index = GetU32(in + 32);
  h->chunk_size = GetU32(in + 36);
  h->slot_count = GetU64(in + 40);
  return {};
}

}  // namespace snapset::cow::format
