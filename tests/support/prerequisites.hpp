// What tests on real system components share: the skip rule for a missing
// prerequisite, and probing or undoing a filesystem freeze.
#ifndef SNAPSET_TESTS_SUPPORT_PREREQUISITES_HPP
#define SNAPSET_TESTS_SUPPORT_PREREQUISITES_HPP

#include <boost/test/unit_test.hpp>

#include <string>

#include "tests/support/command.hpp"
#include "tests/support/freeze_probe.hpp"
#include "tests/support/loop_filesystem.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {

// True when `missing` is empty. Otherwise the test must end: in CI (CI=true)
// a missing dependency is a failure, elsewhere a skip that says what is
// missing.
inline bool Available(const std::string& missing) {
  if (missing.empty()) return true;
  BOOST_TEST(!InCi(), "CI must provide " + missing);
  BOOST_TEST_MESSAGE("skipped: needs " + missing);
  return false;
}

inline bool LoopFilesystemsAvailable(const std::string& fstype = "ext4") {
  return Available(LoopFilesystem::MissingPrerequisite(fstype));
}

// Thaws a mount point at scope exit, whatever happened: a process writing to
// a frozen filesystem cannot be killed, so this must run before anything
// waits on one.
class Unfreeze {
 public:
  explicit Unfreeze(std::string mount_point) : mount_point_(std::move(mount_point)) {}
  ~Unfreeze() { Now(); }
  void Now() const { RunCommand({"fsfreeze", "--unfreeze", mount_point_}); }

 private:
  std::string mount_point_;
};

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SUPPORT_PREREQUISITES_HPP
