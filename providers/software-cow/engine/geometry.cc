#include "providers/software-cow/engine/geometry.hpp"

#include "providers/software-cow/engine/format.hpp"

namespace snapset::cow {

uint32_t Log2(uint32_t v) {
  uint32_t s = 0;
  while ((1u << s) < v) ++s;
  return s;
}

Result<Geometry> PlanGeometry(uint32_t chunk_size, const std::vector<DiffFileSpec>& specs) {
  using format::AlignUp;
  Geometry g;
  g.chunk_size = chunk_size;
  g.chunk_shift = Log2(chunk_size);
  g.table_offset = format::kSlotTableOffset;
  g.files.resize(specs.size());
  const auto too_small = [&](size_t i, uint64_t need) {
    return Status::InvalidArgument(
        "diff-area file " + specs[i].path + " is too small: " + std::to_string(specs[i].max_bytes) +
        " bytes cannot hold its header and one " + std::to_string(chunk_size) +
        "-byte chunk; give it at least " + std::to_string(need) + " bytes");
  };
  // Extension files: a 4 KiB header, then slots.
  uint64_t others = 0;
  for (size_t i = 1; i < specs.size(); ++i) {
    const uint64_t need = format::kExtHeaderSize + chunk_size;
    if (specs[i].max_bytes < need) return too_small(i, need);
    auto& f = g.files[i];
    f.path = specs[i].path;
    f.data_offset = format::kExtHeaderSize;
    f.slot_count = (specs[i].max_bytes - format::kExtHeaderSize) / chunk_size;
    others += f.slot_count;
  }
  // File 0: superblocks, the table for every slot, then its own slots. The
  // table grows with file 0's slot count, so find the largest count that fits.
  const uint64_t max0 = specs[0].max_bytes;
  auto fits = [&](uint64_t n0) {
    const uint64_t table = AlignUp((n0 + others) * format::kSlotEntrySize, format::kAlign);
    return format::kSlotTableOffset + table + n0 * chunk_size <= max0;
  };
  const uint64_t fixed = format::kSlotTableOffset + AlignUp(others * 64, format::kAlign) + format::kAlign;
  uint64_t n0 = max0 > fixed ? (max0 - fixed) / (chunk_size + format::kSlotEntrySize) : 0;
  while (n0 > 0 && !fits(n0)) --n0;
  while (fits(n0 + 1)) ++n0;
  if (n0 == 0) {
    return too_small(0, format::kSlotTableOffset + AlignUp((others + 1) * 64, format::kAlign) +
                            chunk_size);
  }
  g.slots_total = n0 + others;
  g.files[0].path = specs[0].path;
  g.files[0].slot_count = n0;
  g.files[0].data_offset =
      format::kSlotTableOffset + AlignUp(g.slots_total * format::kSlotEntrySize, format::kAlign);
  uint64_t first = 0;
  for (size_t i = 0; i < g.files.size(); ++i) {
    g.files[i].first_slot = first;
    first += g.files[i].slot_count;
    g.files[i].bytes = specs[i].max_bytes;
  }
  return g;
}

Status CheckSlotLimit(const Geometry& g) {
  if (g.slots_total < kMaxSlots) return Status::Ok();
  return Status::InvalidArgument("the diff area would have " + std::to_string(g.slots_total) +
                                 " slots, more than the engine supports (" +
                                 std::to_string(kMaxSlots - 1) +
                                 "); use a larger chunk size or a smaller diff area");
}

}  // namespace snapset::cow
