#include "core/scsi_vpd.hpp"

#include <snapset/provider.h>

#include <cctype>

namespace snapset {

std::string HexLower(std::span<const uint8_t> bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

Result<std::vector<Designator>> ParseDeviceIdentificationPage(std::span<const uint8_t> page) {
  if (page.size() < 4) return Status::InvalidArgument("VPD page 0x83 is shorter than its header");
  if (page[1] != 0x83)
    return Status::InvalidArgument("expected VPD page 0x83, got page 0x" + HexLower(page.subspan(1, 1)));
  const size_t length = (size_t(page[2]) << 8) | page[3];
  if (4 + length > page.size())
    return Status::InvalidArgument("VPD page 0x83 declares " + std::to_string(length) +
                                   " bytes but holds " + std::to_string(page.size() - 4));
  std::vector<Designator> out;
  size_t pos = 4;
  const size_t end = 4 + length;
  while (pos + 4 <= end) {
    const uint8_t code_set = page[pos] & 0x0f;
    const uint8_t association = (page[pos + 1] >> 4) & 0x03;
    const uint8_t type = page[pos + 1] & 0x0f;
    const size_t dlen = page[pos + 3];
    if (pos + 4 + dlen > end)
      return Status::InvalidArgument("VPD page 0x83: designator at offset " + std::to_string(pos) +
                                     " runs past the end of the page");
    if (association == SNAPSET_DESIGNATOR_ASSOC_LOGICAL_UNIT) {
      Designator d;
      d.type = type;
      d.code_set = code_set;
      d.association = association;
      d.value.assign(page.begin() + pos + 4, page.begin() + pos + 4 + dlen);
      out.push_back(std::move(d));
    }
    pos += 4 + dlen;
  }
  return out;
}

Result<std::string> ParseUnitSerialPage(std::span<const uint8_t> page) {
  if (page.size() < 4) return Status::InvalidArgument("VPD page 0x80 is shorter than its header");
  if (page[1] != 0x80)
    return Status::InvalidArgument("expected VPD page 0x80, got page 0x" + HexLower(page.subspan(1, 1)));
  const size_t length = (size_t(page[2]) << 8) | page[3];
  if (4 + length > page.size())
    return Status::InvalidArgument("VPD page 0x80 declares more bytes than it holds");
  return TrimSerial(std::string_view(reinterpret_cast<const char*>(page.data() + 4), length));
}

std::vector<Designator> DesignatorsFromWwid(std::string_view wwid) {
  std::string w = TrimSerial(wwid);
  while (!w.empty() && (w.back() == '\n')) w.pop_back();
  if (w.rfind("naa.", 0) != 0) return {};
  std::string_view hex = std::string_view(w).substr(4);
  if (hex.empty() || hex.size() % 2 != 0) return {};
  Designator d;
  d.type = SNAPSET_DESIGNATOR_TYPE_NAA;
  d.code_set = 1;
  d.association = SNAPSET_DESIGNATOR_ASSOC_LOGICAL_UNIT;
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (!std::isxdigit(static_cast<unsigned char>(hex[i])) ||
        !std::isxdigit(static_cast<unsigned char>(hex[i + 1])))
      return {};
    d.value.push_back(static_cast<uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return {d};
}

}  // namespace snapset
