// SPDX-License-Identifier: Apache-2.0
// How snapset names a LUN from its VPD pages: the preferred NAA and the
// trimmed serial. The host (snapset_volume.naa) and every provider that
// probes a LUN use these, so they agree on its name.
#include <snapset/provider.h>

#include <snapset/iscsi_lun.hpp>

namespace snapset::iscsi {

int NaaRank(std::span<const uint8_t> naa) {
  if (naa.empty()) return -1;
  switch (naa[0] >> 4) {
    case 6:
      return 4;
    case 5:
      return 3;
    case 2:
      return 2;
    case 3:
      return 1;
    default:
      return 0;
  }
}

std::string PreferredNaa(std::span<const LunDesignator> designators) {
  const LunDesignator* best = nullptr;
  for (const LunDesignator& d : designators) {
    if (d.type != SNAPSET_DESIGNATOR_TYPE_NAA || d.value.empty()) continue;
    // Strictly greater: among equals the first in wire order wins.
    if (best == nullptr || NaaRank(d.value) > NaaRank(best->value)) best = &d;
  }
  if (best == nullptr) return "";
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(best->value.size() * 2);
  for (uint8_t b : best->value) {
    hex.push_back(kDigits[b >> 4]);
    hex.push_back(kDigits[b & 0x0f]);
  }
  return hex;
}

std::string TrimSerial(std::string_view serial) {
  const auto pad = [](char c) { return c == ' ' || c == '\0' || c == '\t'; };
  while (!serial.empty() && pad(serial.front())) serial.remove_prefix(1);
  while (!serial.empty() && pad(serial.back())) serial.remove_suffix(1);
  return std::string(serial);
}

}  // namespace snapset::iscsi
