// Helpers shared by the engine tests: deterministic data, whole-volume
// reads, and a reference model of origin + snapshots.
#ifndef SNAPSET_TESTS_COW_TEST_UTIL_HPP
#define SNAPSET_TESTS_COW_TEST_UTIL_HPP

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "providers/software-cow/engine/cow_volume.hpp"

namespace snapset::cow::test {

// Bytes that differ for every (seed, position): a misplaced chunk shows.
inline std::vector<uint8_t> Pattern(uint64_t seed, size_t n) {
  std::vector<uint8_t> v(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v[i] = uint8_t(x >> 24);
  }
  return v;
}

inline std::vector<uint8_t> ReadOrigin(CowVolume& v) {
  std::vector<uint8_t> out(v.size());
  Status st = v.Read(0, out.data(), out.size());
  if (!st.ok()) throw std::runtime_error("origin read failed: " + st.ToString());
  return out;
}

inline Status ReadSnap(CowVolume& v, const std::string& id, std::vector<uint8_t>* out) {
  out->assign(v.size(), 0);
  return v.ReadSnapshot(id, 0, out->data(), out->size());
}

// First differing offset, or -1.
inline int64_t FirstDiff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a.size() != b.size()) return 0;
  auto m = std::mismatch(a.begin(), a.end(), b.begin());
  return m.first == a.end() ? -1 : int64_t(m.first - a.begin());
}

// What the volume should hold: the origin and every live snapshot's image.
struct Model {
  std::vector<uint8_t> origin;
  std::map<std::string, std::vector<uint8_t>> snaps;
  std::vector<std::string> order;  // oldest first

  void Write(uint64_t off, const std::vector<uint8_t>& data) {
    std::memcpy(origin.data() + off, data.data(), data.size());
  }
  void Snapshot(const std::string& id) {
    snaps[id] = origin;
    order.push_back(id);
  }
  void Delete(const std::string& id) {
    snaps.erase(id);
    order.erase(std::remove(order.begin(), order.end(), id), order.end());
  }
  size_t Position(const std::string& id) const {
    return size_t(std::find(order.begin(), order.end(), id) - order.begin());
  }
};

}  // namespace snapset::cow::test

#endif  // SNAPSET_TESTS_COW_TEST_UTIL_HPP
