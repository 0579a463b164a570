// Which diff-area slots are free: one bit per slot, plus a cursor so that a
// run of allocations hands out consecutive slots (their data and their
// table entries then go to disk in one write each).
//
// A slot becomes free only when the caller says so: at Open for slots
// whose entry is dead, and after the superblock that freed a slot (by
// deleting or invalidating the snapshots its range held) is durable.
// Thread-safe.
#ifndef SNAPSET_COW_SLOT_ALLOCATOR_HPP
#define SNAPSET_COW_SLOT_ALLOCATOR_HPP

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace snapset::cow {

class SlotAllocator {
 public:
  // All `total` slots start in use; Open frees the dead ones.
  void Reset(uint64_t total);
  // Takes exactly n slots (ascending from the cursor) or, when fewer are
  // free, none. Appends them to *out.
  bool Allocate(size_t n, std::vector<uint32_t>* out);
  // Takes up to n slots; returns how many.
  size_t TakeUpTo(size_t n, std::vector<uint32_t>* out);
  void Free(uint32_t slot);
  void Free(const std::vector<uint32_t>& slots);
  void FreeRange(uint64_t first, uint64_t count);
  // Marks a slot used that is currently free (Open: a live entry).
  void MarkUsed(uint32_t slot);

  uint64_t total() const { return total_; }
  uint64_t free_count() const;
  uint64_t MemoryBytes() const { return bits_.capacity() * sizeof(uint64_t); }

 private:
  size_t TakeLocked(size_t n, std::vector<uint32_t>* out);
  void FreeLocked(uint32_t slot);

  mutable std::mutex mu_;
  std::vector<uint64_t> bits_;  // 1 = free
  uint64_t total_ = 0;
  uint64_t free_ = 0;
  uint64_t cursor_word_ = 0;
};

}  // namespace snapset::cow

#endif  // SNAPSET_COW_SLOT_ALLOCATOR_HPP
