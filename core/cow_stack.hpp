// How software-cow volumes stack under filesystems (DESIGN §7):
//
//   ext4 mounted on /mnt/db        <- FIFREEZE holds it
//   /dev/loop3                     <- a loop device over ...
//   <cowd mount>/db/origin         <- ... the file snapset-cowd serves
//   cow:db                         <- the daemon's write gate holds it
//
// Whether the user names /mnt/db or cow:db, the coordinator must hold the
// whole stack: freeze the filesystem first (its flush must reach the
// daemon), then the gate; release in the reverse order. These functions
// find the stack from the mount table and the loop devices' sysfs entries.
// snapset-cowd's FUSE mounts show as type "fuse.snapset-cowd".
#ifndef SNAPSET_CORE_COW_STACK_HPP
#define SNAPSET_CORE_COW_STACK_HPP

#include <sys/types.h>

#include <string>
#include <vector>

namespace snapset {

class MountTable;

constexpr const char* kCowdFuseType = "fuse.snapset-cowd";

// "cow:NAME" when block device `device` is a loop device whose backing file
// is NAME/origin inside a snapset-cowd mount; "" otherwise.
std::string CowVolumeUnder(dev_t device, const std::string& sysfs_root, const MountTable& mounts);

// What is stacked on cow volume NAME: the loop devices over
// <cowd mount>/NAME/origin in any snapset-cowd mount, and the filesystems
// mounted on them. Found from sysfs and the mount table alone: nothing here
// touches the FUSE mount, so a hung daemon cannot hang the caller.
struct CowStack {
  uint64_t size_bytes = 0;          // the origin's, read from a loop device; 0 if none
  std::vector<std::string> mounts;  // mount points of the filesystems on it
};
CowStack CowStackOf(const std::string& name, const std::string& sysfs_root,
                    const MountTable& mounts);

}  // namespace snapset

#endif  // SNAPSET_CORE_COW_STACK_HPP
