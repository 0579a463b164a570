#include "core/volume.hpp"

#include <snapset/provider.h>

namespace snapset {

const char* VolumeKindName(VolumeKind kind) {
  switch (kind) {
    case VolumeKind::kFilesystem: return "filesystem";
    case VolumeKind::kBlock: return "block";
    case VolumeKind::kIscsi: return "iscsi";
    case VolumeKind::kCow: return "cow";
  }
  return "unknown";
}

}  // namespace snapset
