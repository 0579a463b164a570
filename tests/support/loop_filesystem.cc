#include "tests/support/loop_filesystem.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "tests/support/command.hpp"

namespace snapset::test {

std::string LoopFilesystem::MissingPrerequisite(const std::string& fstype) {
  if (::geteuid() != 0) return "root (loop devices and mount need it)";
  if (::access("/dev/loop-control", F_OK) != 0) return "/dev/loop-control (no loop driver)";
  if (!HaveProgram("losetup")) return "losetup (util-linux)";
  if (!HaveProgram("mkfs." + fstype)) return "mkfs." + fstype;
  return "";
}

Result<std::unique_ptr<LoopFilesystem>> LoopFilesystem::Create(uint64_t size_bytes,
                                                               const std::string& fstype) {
  std::unique_ptr<LoopFilesystem> fs(new LoopFilesystem());
  fs->backing_ = fs->dir_.str() + "/backing.img";
  fs->mount_point_ = fs->dir_.str() + "/mnt";
  std::filesystem::create_directories(fs->mount_point_);
  int fd = ::open(fs->backing_.c_str(), O_CREAT | O_WRONLY, 0600);
  if (fd < 0 || ::ftruncate(fd, off_t(size_bytes)) != 0) {
    if (fd >= 0) ::close(fd);
    return Status::Internal("cannot create " + fs->backing_);
  }
  ::close(fd);
  auto loop = RunCommand({"losetup", "--find", "--show", fs->backing_});
  if (loop.exit_code != 0) return Status::Unavailable("losetup failed: " + loop.output);
  fs->device_ = loop.output.substr(0, loop.output.find('\n'));
  auto mkfs = RunCommand({"mkfs." + fstype, "-q", fs->device_});
  if (mkfs.exit_code != 0) return Status::Unavailable("mkfs." + fstype + " failed: " + mkfs.output);
  auto mount = RunCommand({"mount", fs->device_, fs->mount_point_});
  if (mount.exit_code != 0) return Status::Unavailable("mount failed: " + mount.output);
  fs->mounted_ = true;
  return fs;
}

LoopFilesystem::~LoopFilesystem() {
  // Thaw first in case a test froze it and failed before thawing: a frozen
  // filesystem cannot be unmounted and blocks writers forever.
  if (mounted_) {
    RunCommand({"fsfreeze", "--unfreeze", mount_point_});
    RunCommand({"umount", mount_point_});
  }
  if (!device_.empty()) RunCommand({"losetup", "--detach", device_});
}

}  // namespace snapset::test
