// Resolves a volume name given by a user to a Volume (DESIGN §6):
//   - a mount point, or any path inside a mounted filesystem -> the mounted
//     filesystem (kind filesystem), with its block device's size and identity;
//   - a block device -> kind block, or filesystem when it is mounted;
//   - iscsi://host[:port]/target-iqn/lun -> kind iscsi, through libiscsi;
//   - cow:NAME -> kind cow, left for the software-cow provider to resolve;
//     when a running snapset-cowd serves it, with its size and the
//     filesystems stacked on it (core/cow_stack.hpp).
// A name that resolves to nothing gets NotFound or InvalidArgument with the
// accepted forms, never a guess.
#ifndef SNAPSET_CORE_VOLUME_RESOLVER_HPP
#define SNAPSET_CORE_VOLUME_RESOLVER_HPP

#include <snapset/status.hpp>

#include <sys/types.h>

#include <string>
#include <string_view>

#include "core/iscsi_identity.hpp"
#include "core/volume.hpp"

namespace snapset {

class MountTable;

struct ResolverOptions {
  std::string sysfs_root = "/sys";            // a test may point it at a copy
  std::string mountinfo = "/proc/self/mountinfo";
  // A mount table read once for many resolutions (a set of 64 volumes);
  // null: read `mountinfo` for each.
  const MountTable* mounts = nullptr;
  IscsiOptions iscsi;
};

Result<Volume> ResolveVolume(std::string_view name, const ResolverOptions& options = {});

// Size, block size and SCSI identity of the block device `device` from
// <sysfs_root>/dev/block/MAJ:MIN. Fills the fields of *v it knows.
Status ReadBlockDevice(const std::string& sysfs_root, dev_t device, Volume* v);

}  // namespace snapset

#endif  // SNAPSET_CORE_VOLUME_RESOLVER_HPP
