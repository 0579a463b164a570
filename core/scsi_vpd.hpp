// Parsers for the raw INQUIRY VPD pages the kernel exposes in sysfs
// (device/vpd_pg83, device/vpd_pg80) and for its "wwid" text.
#ifndef SNAPSET_CORE_SCSI_VPD_HPP
#define SNAPSET_CORE_SCSI_VPD_HPP

#include <snapset/iscsi_lun.hpp>
#include <snapset/status.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/volume.hpp"

namespace snapset {

// Device Identification page (0x83): the designators whose association is
// the logical unit, in wire order. Errors: InvalidArgument for a page that is
// not 0x83 or whose lengths run past its end.
Result<std::vector<Designator>> ParseDeviceIdentificationPage(std::span<const uint8_t> page);

// Unit Serial Number page (0x80): the serial with surrounding spaces and NULs
// trimmed (arrays pad it).
Result<std::string> ParseUnitSerialPage(std::span<const uint8_t> page);

// The kernel's wwid attribute, e.g. "naa.600140512345678901234567890abcde":
// an NAA designator when it starts with "naa.", else nothing.
std::vector<Designator> DesignatorsFromWwid(std::string_view wwid);

// Padding (spaces, tabs, NULs) trimmed off a serial, as the iSCSI LUN
// toolkit trims what it reads on the wire, so both paths give one serial.
using iscsi::TrimSerial;
std::string HexLower(std::span<const uint8_t> bytes);

}  // namespace snapset

#endif  // SNAPSET_CORE_SCSI_VPD_HPP
