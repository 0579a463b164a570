// The in-memory mapping index: for each chunk that has copies, its list of
// "epochs (from, to] -> slot", sorted by `to` (new copies always get the
// newest `to`, so appending keeps the order, and ranges never overlap).
//
// Sharded into lock stripes by chunk number. Each stripe's lock is also the
// per-chunk lock of the I/O paths: a writer holds its chunks' stripes
// exclusively from the copy decision through the origin write; a snapshot
// reader holds them shared over lookup + pread. The map of a stripe is only
// touched with its stripe lock held.
//
// Memory is proportional to the number of copies, not to the volume size:
// chunks never written since a snapshot have no entry at all.
#ifndef SNAPSET_COW_CHUNK_INDEX_HPP
#define SNAPSET_COW_CHUNK_INDEX_HPP

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

namespace snapset::cow {

struct Mapping {
  uint64_t from = 0;  // exclusive
  uint64_t to = 0;    // inclusive
  uint32_t slot = 0;
};

class ChunkIndex {
 public:
  static constexpr uint64_t kStripes = 1024;  // power of two

  ChunkIndex();
  ~ChunkIndex();
  ChunkIndex(const ChunkIndex&) = delete;
  ChunkIndex& operator=(const ChunkIndex&) = delete;

  // Locks the stripes of chunks [first, last] in ascending stripe order
  // (so two ranges never deadlock), without allocating.
  void LockRange(uint64_t first, uint64_t last, bool exclusive);
  void UnlockRange(uint64_t first, uint64_t last, bool exclusive);

  // REQUIRES: the chunk's stripe is locked (shared or exclusive).
  // The largest `to` of the chunk's copies; 0 when it has none.
  uint64_t MaxTo(uint64_t chunk) const;
  // The copy whose range holds `epoch`, or nullptr (read the origin).
  const Mapping* Find(uint64_t chunk, uint64_t epoch) const;

  // REQUIRES: the chunk's stripe is locked exclusively; m.from >= MaxTo.
  void Add(uint64_t chunk, const Mapping& m);

  // For every copy (stripe by stripe, each locked exclusively): removes it
  // when drop(from, to) is true and hands its slot to freed(slot).
  void RemoveIf(const std::function<bool(uint64_t, uint64_t)>& drop,
                const std::function<void(uint32_t)>& freed);
  // Visits every chunk with copies (each stripe locked shared).
  void ForEach(const std::function<void(uint64_t, const std::vector<Mapping>&)>& fn) const;

  uint64_t mappings() const;
  // Heap bytes held, estimated from the containers' sizes and capacities.
  uint64_t MemoryBytes() const;

 private:
  struct alignas(64) Stripe {
    mutable std::shared_mutex mu;
    std::unordered_map<uint64_t, std::vector<Mapping>> map;
  };
  Stripe& StripeOf(uint64_t chunk) const { return stripes_[chunk & (kStripes - 1)]; }
  void LockOne(uint64_t s, bool exclusive);
  void UnlockOne(uint64_t s, bool exclusive);

  std::unique_ptr<Stripe[]> stripes_;
};

// Holds a range of stripes for one scope.
class StripeGuard {
 public:
  StripeGuard(ChunkIndex* index, uint64_t first, uint64_t last, bool exclusive)
      : index_(index), first_(first), last_(last), exclusive_(exclusive) {
    index_->LockRange(first_, last_, exclusive_);
  }
  ~StripeGuard() { Unlock(); }
  void Unlock() {
    if (index_) index_->UnlockRange(first_, last_, exclusive_);
    index_ = nullptr;
  }
  StripeGuard(const StripeGuard&) = delete;
  StripeGuard& operator=(const StripeGuard&) = delete;

 private:
  ChunkIndex* index_;
  uint64_t first_, last_;
  bool exclusive_;
};

}  // namespace snapset::cow

#endif  // SNAPSET_COW_CHUNK_INDEX_HPP
