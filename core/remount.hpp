// SPDX-License-Identifier: Apache-2.0
// `snapset revert --remount`: the filesystems on the volumes to revert are
// taken down after the writers' pre-restore and put back before their
// post-restore, as an administrator does by hand:
//
//   umount /srv/pg                   (never lazily: a busy one stops it all)
//   losetup -d /dev/loop3            (a cow volume's loop device holds its origin)
//   ... the revert ...
//   losetup --find --show --direct-io=on <cowd mount>/pg/origin
//   mount -t ext4 -o rw,relatime /dev/loop7 /srv/pg
//
// A filesystem mounted twice (a bind mount, a subtree) is refused: which
// one to put back where is the administrator's call.
#ifndef SNAPSET_CORE_REMOUNT_HPP
#define SNAPSET_CORE_REMOUNT_HPP

#include <snapset/status.hpp>

#include <string>
#include <vector>

#include "core/mount_table.hpp"

namespace snapset {

// A filesystem mounted on a volume to revert. `over_cow`: it is on a loop
// device over a cow volume, whose origin that loop device holds open, so
// the loop device goes too.
struct VolumeMount {
  MountEntry mount;
  bool over_cow = false;
};

// One filesystem taken down, and how to put it back.
struct TakenDown {
  MountEntry mount;          // as it was mounted
  std::string loop_backing;  // its loop device was detached: the file it was over
  bool loop_direct_io = false;
};

// Refuses (BadState, naming it) a mount --remount cannot put back as it
// was: a filesystem mounted more than once or a subtree of one.
Status CheckRemountable(const MountEntry& mount, const MountTable& mounts);

// Unmounts each of `mounts`, given in mount order (as the mount table lists
// them), the last mounted first: one mounted inside another goes down
// before it, with the loop device under it when it is over a cow volume.
// On the first that cannot be (busy: a process still uses
// it), puts back those already taken down and fails, naming it and what to
// run to see who uses it. The result is in the order they went down.
Result<std::vector<TakenDown>> TakeDown(const std::vector<VolumeMount>& mounts,
                                        const std::string& sysfs_root = "/sys");

// Attaches and mounts again, in the reverse of the order they were taken
// down (mount order); an error names each one left down and the commands
// to put it back by hand.
Status PutBack(const std::vector<TakenDown>& down);

}  // namespace snapset

#endif  // SNAPSET_CORE_REMOUNT_HPP
