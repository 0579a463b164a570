// snapset::SnapshotInfo: the properties of one snapshot in C++ form (the
// C form is snapset_snapshot_properties in provider.h). A plain value type,
// shared by the provider SDK and the requestor side.
#ifndef SNAPSET_SNAPSHOT_INFO_HPP
#define SNAPSET_SNAPSHOT_INFO_HPP

#include <snapset/provider.h>

#include <cstdint>
#include <string>

namespace snapset {

struct SnapshotInfo {
  std::string snapshot_id;
  std::string set_id;
  std::string original_volume;
  std::string provider_id;
  int64_t creation_time_ns = 0;
  uint32_t attributes = 0;
  int32_t state = SNAPSET_STATE_COMPLETE;
  std::string exposed_as;       // empty when not exposed
  std::string snapshot_device;  // empty when none
  std::string invalid_reason;   // with SNAPSET_ATTR_INVALID: why it cannot be read
};

// Bytes [offset, offset + length) of a volume or snapshot (changed blocks).
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const ByteRange&) const = default;
};

}  // namespace snapset

#endif  // SNAPSET_SNAPSHOT_INFO_HPP
