// "Set in progress": a volume belongs to at most one set being created, in
// this process or any other. Each volume has a lock file
// <state-dir>/locks/<hash>.lock held with flock(LOCK_EX | LOCK_NB) while
// its set is created; the kernel drops the lock when the process dies, so a
// crash never leaves a volume locked. Sets on disjoint volumes run at once.
#ifndef SNAPSET_CORE_VOLUME_LOCKS_HPP
#define SNAPSET_CORE_VOLUME_LOCKS_HPP

#include <snapset/status.hpp>

#include <memory>
#include <string>
#include <vector>

namespace snapset {

class VolumeLocks {
 public:
  // Locks every volume or none. Errors: BadState "set in progress" naming
  // the first busy volume (and the set holding it, when known); Unavailable
  // if the lock folder cannot be used.
  static Result<std::unique_ptr<VolumeLocks>> Acquire(const std::string& state_dir,
                                                      const std::vector<std::string>& volumes,
                                                      const std::string& set_id);
  ~VolumeLocks();  // unlocks
  VolumeLocks(const VolumeLocks&) = delete;
  VolumeLocks& operator=(const VolumeLocks&) = delete;

 private:
  VolumeLocks() = default;
  std::vector<int> fds_;
};

}  // namespace snapset

#endif  // SNAPSET_CORE_VOLUME_LOCKS_HPP
