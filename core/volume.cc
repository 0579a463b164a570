#include "core/volume.hpp"

#include <snapset/provider.h>

namespace snapset {
namespace {

// How much an NAA designator is worth as a volume's identity, by its NAA
// field (the designator's top nibble, SPC-4 7.7.6.6). Registered formats (6,
// then 5) and IEEE Extended (2) are globally unique; Locally Assigned (3) is
// unique only within one target, and tgt, for one, builds it from the target
// and LUN numbers, so two tgt instances report the same one. A target
// that sends several NAA designators (tgt sends NAA-3, then NAA-6) is thus
// identified by its most unique one, not by wire position.
int NaaRank(const Designator& d) {
  if (d.value.empty()) return -1;
  switch (d.value[0] >> 4) {
    case 6: return 4;
    case 5: return 3;
    case 2: return 2;
    case 3: return 1;
    default: return 0;
  }
}

std::string LowerHex(const std::vector<uint8_t>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    hex.push_back(kDigits[b >> 4]);
    hex.push_back(kDigits[b & 0x0f]);
  }
  return hex;
}

}  // namespace

const char* VolumeKindName(VolumeKind kind) {
  switch (kind) {
    case VolumeKind::kFilesystem: return "filesystem";
    case VolumeKind::kBlock: return "block";
    case VolumeKind::kIscsi: return "iscsi";
    case VolumeKind::kCow: return "cow";
  }
  return "unknown";
}

std::string ScsiIdentity::Naa() const {
  const Designator* best = nullptr;
  for (const Designator& d : designators) {
    if (d.type != SNAPSET_DESIGNATOR_TYPE_NAA || d.value.empty()) continue;
    // Strictly greater: among equals the first in wire order wins.
    if (best == nullptr || NaaRank(d) > NaaRank(*best)) best = &d;
  }
  return best == nullptr ? std::string() : LowerHex(best->value);
}

}  // namespace snapset
