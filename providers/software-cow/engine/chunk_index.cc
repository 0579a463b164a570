#include "providers/software-cow/engine/chunk_index.hpp"

#include <algorithm>
#include <mutex>

namespace snapset::cow {

ChunkIndex::ChunkIndex() : stripes_(new Stripe[kStripes]) {}
ChunkIndex::~ChunkIndex() = default;

void ChunkIndex::LockOne(uint64_t s, bool exclusive) {
  if (exclusive) {
    stripes_[s].mu.lock();
  } else {
    stripes_[s].mu.lock_shared();
  }
}

void ChunkIndex::UnlockOne(uint64_t s, bool exclusive) {
  if (exclusive) {
    stripes_[s].mu.unlock();
  } else {
    stripes_[s].mu.unlock_shared();
  }
}

// The stripes of a chunk range are one contiguous run modulo kStripes: all
// of them, [s0, s1], or, when it wraps, [0, s1] and [s0, kStripes).
void ChunkIndex::LockRange(uint64_t first, uint64_t last, bool exclusive) {
  const uint64_t mask = kStripes - 1;
  if (last - first + 1 >= kStripes) {
    for (uint64_t s = 0; s < kStripes; ++s) LockOne(s, exclusive);
    return;
  }
  const uint64_t s0 = first & mask, s1 = last & mask;
  if (s0 <= s1) {
    for (uint64_t s = s0; s <= s1; ++s) LockOne(s, exclusive);
  } else {
    for (uint64_t s = 0; s <= s1; ++s) LockOne(s, exclusive);
    for (uint64_t s = s0; s < kStripes; ++s) LockOne(s, exclusive);
  }
}

void ChunkIndex::UnlockRange(uint64_t first, uint64_t last, bool exclusive) {
  const uint64_t mask = kStripes - 1;
  if (last - first + 1 >= kStripes) {
    for (uint64_t s = 0; s < kStripes; ++s) UnlockOne(s, exclusive);
    return;
  }
  const uint64_t s0 = first & mask, s1 = last & mask;
  if (s0 <= s1) {
    for (uint64_t s = s0; s <= s1; ++s) UnlockOne(s, exclusive);
  } else {
    for (uint64_t s = 0; s <= s1; ++s) UnlockOne(s, exclusive);
    for (uint64_t s = s0; s < kStripes; ++s) UnlockOne(s, exclusive);
  }
}

uint64_t ChunkIndex::MaxTo(uint64_t chunk) const {
  const auto& map = StripeOf(chunk).map;
  if (map.empty()) return 0;  // the common case right after a snapshot
  auto it = map.find(chunk);
  return it == map.end() || it->second.empty() ? 0 : it->second.back().to;
}

const Mapping* ChunkIndex::Find(uint64_t chunk, uint64_t epoch) const {
  const auto& map = StripeOf(chunk).map;
  if (map.empty()) return nullptr;
  auto it = map.find(chunk);
  if (it == map.end()) return nullptr;
  const auto& v = it->second;
  auto m = std::lower_bound(v.begin(), v.end(), epoch,
                            [](const Mapping& a, uint64_t e) { return a.to < e; });
  if (m == v.end() || m->from >= epoch) return nullptr;
  return &*m;
}

void ChunkIndex::Add(uint64_t chunk, const Mapping& m) {
  StripeOf(chunk).map[chunk].push_back(m);
}

void ChunkIndex::RemoveIf(const std::function<bool(uint64_t, uint64_t)>& drop,
                          const std::function<void(uint32_t)>& freed) {
  for (uint64_t s = 0; s < kStripes; ++s) {
    std::unique_lock lock(stripes_[s].mu);
    auto& map = stripes_[s].map;
    for (auto it = map.begin(); it != map.end();) {
      auto& v = it->second;
      auto keep = std::remove_if(v.begin(), v.end(), [&](const Mapping& m) {
        if (!drop(m.from, m.to)) return false;
        freed(m.slot);
        return true;
      });
      v.erase(keep, v.end());
      if (v.empty()) {
        it = map.erase(it);
      } else {
        if (v.capacity() > 2 * v.size()) v.shrink_to_fit();
        ++it;
      }
    }
  }
}

void ChunkIndex::ForEach(
    const std::function<void(uint64_t, const std::vector<Mapping>&)>& fn) const {
  for (uint64_t s = 0; s < kStripes; ++s) {
    std::shared_lock lock(stripes_[s].mu);
    for (const auto& [chunk, v] : stripes_[s].map) fn(chunk, v);
  }
}

uint64_t ChunkIndex::mappings() const {
  uint64_t n = 0;
  ForEach([&](uint64_t, const std::vector<Mapping>& v) { n += v.size(); });
  return n;
}

uint64_t ChunkIndex::MemoryBytes() const {
  // libstdc++: one bucket pointer per bucket; per element a node holding the
  // next pointer and the pair, plus the vector's heap block; malloc adds
  // about 16 bytes to each block.
  constexpr uint64_t kMalloc = 16;
  constexpr uint64_t kNode = sizeof(void*) + sizeof(std::pair<const uint64_t, std::vector<Mapping>>);
  uint64_t bytes = uint64_t(kStripes) * sizeof(Stripe);
  for (uint64_t s = 0; s < kStripes; ++s) {
    std::shared_lock lock(stripes_[s].mu);
    const auto& map = stripes_[s].map;
    bytes += map.bucket_count() * sizeof(void*);
    for (const auto& [chunk, v] : map) {
      bytes += kNode + kMalloc + v.capacity() * sizeof(Mapping) + kMalloc;
    }
  }
  return bytes;
}

}  // namespace snapset::cow
