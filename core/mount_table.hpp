// The mount table as the kernel reports it in /proc/self/mountinfo.
#ifndef SNAPSET_CORE_MOUNT_TABLE_HPP
#define SNAPSET_CORE_MOUNT_TABLE_HPP

#include <snapset/status.hpp>

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snapset {

struct MountEntry {
  dev_t device = 0;         // st_dev of files on it (major:minor field)
  std::string root;         // the mounted subtree of the filesystem
  std::string mount_point;  // unescaped
  std::string fstype;
  std::string source;       // e.g. /dev/loop3, tmpfs
  std::string options;      // per-mount: "rw,relatime"
  std::string super_options;  // the filesystem's: "rw,errors=remount-ro"
};

class MountTable {
 public:
  // Reads and parses a mountinfo file. Errors: Internal if it cannot be read.
  static Result<MountTable> Read(const std::string& path = "/proc/self/mountinfo");
  // Parses mountinfo text (for tests). Malformed lines are skipped.
  static MountTable Parse(std::string_view text);

  // The mount that holds canonical path `path` (the longest mount point that
  // is a prefix of it; the last mounted wins when mounts are stacked).
  std::optional<MountEntry> Containing(std::string_view path) const;
  // The topmost mount of a block device, found by its device number.
  std::optional<MountEntry> OfDevice(dev_t device) const;

  const std::vector<MountEntry>& entries() const { return entries_; }

 private:
  std::vector<MountEntry> entries_;
};

// Undoes mountinfo's octal escapes (\040 for space, ...).
std::string UnescapeMountField(std::string_view s);

}  // namespace snapset

#endif  // SNAPSET_CORE_MOUNT_TABLE_HPP
