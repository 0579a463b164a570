#include "providers/software-cow/engine/slot_allocator.hpp"

#include <cassert>

namespace snapset::cow {

void SlotAllocator::Reset(uint64_t total) {
  std::lock_guard lock(mu_);
  total_ = total;
  bits_.assign((total + 63) / 64, 0);
  free_ = 0;
  cursor_word_ = 0;
}

size_t SlotAllocator::TakeLocked(size_t n, std::vector<uint32_t>* out) {
  size_t taken = 0;
  const uint64_t words = bits_.size();
  // At most one full sweep starting from the cursor.
  for (uint64_t i = 0; i <= words && taken < n && free_ > 0; ++i) {
    const uint64_t w = (cursor_word_ + i) % words;
    while (bits_[w] != 0 && taken < n) {
      const int bit = __builtin_ctzll(bits_[w]);
      bits_[w] &= bits_[w] - 1;
      out->push_back(uint32_t(w * 64 + uint64_t(bit)));
      --free_;
      ++taken;
    }
    if (taken == n) {
      cursor_word_ = w;
      break;
    }
  }
  return taken;
}

bool SlotAllocator::Allocate(size_t n, std::vector<uint32_t>* out) {
  std::lock_guard lock(mu_);
  if (free_ < n) return false;
  TakeLocked(n, out);
  return true;
}

size_t SlotAllocator::TakeUpTo(size_t n, std::vector<uint32_t>* out) {
  std::lock_guard lock(mu_);
  return TakeLocked(n, out);
}

void SlotAllocator::FreeLocked(uint32_t slot) {
  assert(slot < total_);
  uint64_t& w = bits_[slot / 64];
  const uint64_t bit = uint64_t(1) << (slot % 64);
  if (w & bit) return;  // already free
  w |= bit;
  ++free_;
}

void SlotAllocator::Free(uint32_t slot) {
  std::lock_guard lock(mu_);
  FreeLocked(slot);
}

void SlotAllocator::Free(const std::vector<uint32_t>& slots) {
  std::lock_guard lock(mu_);
  for (uint32_t s : slots) FreeLocked(s);
}

void SlotAllocator::FreeRange(uint64_t first, uint64_t count) {
  std::lock_guard lock(mu_);
  for (uint64_t s = first; s < first + count; ++s) FreeLocked(uint32_t(s));
}

void SlotAllocator::MarkUsed(uint32_t slot) {
  std::lock_guard lock(mu_);
  uint64_t& w = bits_[slot / 64];
  const uint64_t bit = uint64_t(1) << (slot % 64);
  if (!(w & bit)) return;
  w &= ~bit;
  --free_;
}

uint64_t SlotAllocator::free_count() const {
  std::lock_guard lock(mu_);
  return free_;
}

}  // namespace snapset::cow
