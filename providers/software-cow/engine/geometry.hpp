// Where things are: chunk arithmetic of the origin and the placement of
// slots across the diff area's files. Slots are numbered globally, file 0's
// first; the slot table in file 0 has one entry for every slot.
#ifndef SNAPSET_COW_GEOMETRY_HPP
#define SNAPSET_COW_GEOMETRY_HPP

#include <cstdint>
#include <string>
#include <vector>

#include <snapset/status.hpp>

#include "providers/software-cow/engine/cow_volume.hpp"

namespace snapset::cow {

struct FileGeometry {
  std::string path;
  uint64_t first_slot = 0;
  uint64_t slot_count = 0;
  uint64_t data_offset = 0;  // byte offset of the first slot in the file
  uint64_t bytes = 0;        // what the file must be at least
};

struct Geometry {
  uint32_t chunk_size = 0;
  uint32_t chunk_shift = 0;
  uint64_t origin_size = 0;
  uint64_t chunk_count = 0;
  uint64_t table_offset = 0;
  uint64_t slots_total = 0;
  std::vector<FileGeometry> files;

  void SetOrigin(uint64_t size) {
    origin_size = size;
    chunk_count = (size + chunk_size - 1) >> chunk_shift;
  }
  // Bytes of chunk c: chunk_size, or less for a partial last chunk.
  uint64_t ChunkBytes(uint64_t c) const {
    const uint64_t start = c << chunk_shift;
    return origin_size - start < chunk_size ? origin_size - start : chunk_size;
  }
  size_t FileOfSlot(uint64_t slot) const {
    size_t f = 0;
    while (f + 1 < files.size() && slot >= files[f + 1].first_slot) ++f;
    return f;
  }
  uint64_t SlotOffset(size_t file, uint64_t slot) const {
    return files[file].data_offset + ((slot - files[file].first_slot) << chunk_shift);
  }
  uint64_t EntryOffset(uint64_t slot) const { return table_offset + slot * 64; }
};

// Slot numbers are 32-bit in memory (the index stays small).
constexpr uint64_t kMaxSlots = (uint64_t(1) << 32) - 1;

// Lays out a new diff area. InvalidArgument when a file is too small for
// its header and one slot.
Result<Geometry> PlanGeometry(uint32_t chunk_size, const std::vector<DiffFileSpec>& files);
// InvalidArgument when the area has kMaxSlots slots or more. Checked after
// the files are allocated, so an absurd size reports the disk's limit first.
Status CheckSlotLimit(const Geometry& g);

uint32_t Log2(uint32_t power_of_two);

}  // namespace snapset::cow

#endif  // SNAPSET_COW_GEOMETRY_HPP
