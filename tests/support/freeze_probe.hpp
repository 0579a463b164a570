// Whether a filesystem is frozen, without changing it (for tests and the
// benchmark: no Boost here).
#ifndef SNAPSET_TESTS_SUPPORT_FREEZE_PROBE_HPP
#define SNAPSET_TESTS_SUPPORT_FREEZE_PROBE_HPP

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace snapset::test {

// FIFREEZE answers EBUSY on a frozen filesystem; if it succeeds, the
// filesystem was not frozen and is thawed again at once.
inline bool IsFrozen(const std::string& mount_point) {
  int fd = ::open(mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  bool frozen = false;
  if (::ioctl(fd, FIFREEZE, 0) == 0) {
    ::ioctl(fd, FITHAW, 0);
  } else {
    frozen = errno == EBUSY;
  }
  ::close(fd);
  return frozen;
}

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SUPPORT_FREEZE_PROBE_HPP
