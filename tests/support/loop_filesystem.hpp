// A real filesystem on a real loop device for tests: a sparse backing file,
// losetup, mkfs, mount; all undone by the destructor, even when the test
// fails. Needs root, /dev/loop-control and the mkfs tool.
#ifndef SNAPSET_TESTS_SUPPORT_LOOP_FILESYSTEM_HPP
#define SNAPSET_TESTS_SUPPORT_LOOP_FILESYSTEM_HPP

#include <snapset/status.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "tests/support/temp_dir.hpp"

namespace snapset::test {

class LoopFilesystem {
 public:
  // "" when loop filesystems can be made here, else what is missing.
  static std::string MissingPrerequisite(const std::string& fstype = "ext4");

  static Result<std::unique_ptr<LoopFilesystem>> Create(uint64_t size_bytes,
                                                        const std::string& fstype = "ext4");
  ~LoopFilesystem();

  const std::string& device() const { return device_; }            // /dev/loopN
  const std::string& mount_point() const { return mount_point_; }
  const std::string& backing_file() const { return backing_; }

 private:
  LoopFilesystem() = default;
  TempDir dir_;
  std::string backing_, device_, mount_point_;
  bool mounted_ = false;
};

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SUPPORT_LOOP_FILESYSTEM_HPP
