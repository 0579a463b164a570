// ThawGuard: a frozen filesystem must never outlive the coordinator.
//
// The guard is a small separate process (tools/snapset-thaw-guard, started
// by Start() with posix_spawn, in its own session, inheriting only stdin,
// stdout and stderr) that owns the thaw. The coordinator tells it,
// through a pipe, each filesystem it is about to freeze and the deadline,
// and each one it released. The guard thaws (FITHAW) every filesystem still
// registered when
//   - the pipe closes (the coordinator exited or was killed with -9), at once;
//   - a registration's deadline passes, at the deadline;
//   - it gets SIGTERM (shutdown), at once.
// It opens each mount point when registered, so thawing needs no path lookup.
// The protocol is documented in thaw_guard.cc.
//
// The coordinator's death is seen as EOF because the pipe's write end lives
// only in the coordinator (close-on-exec). A fork() without exec that
// outlives the coordinator would keep it open and delay that thaw.
//
// Thread-safety: Register/Unregister may be called from several threads;
// each request waits at most 2 s for the guard's answer.
#ifndef SNAPSET_CORE_THAW_GUARD_HPP
#define SNAPSET_CORE_THAW_GUARD_HPP

#include <snapset/status.hpp>

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace snapset {

class ThawGuard {
 public:
  // Starts the guard process `guard_binary`. Errors: Unavailable if it cannot
  // be started or does not answer its hello.
  static Result<std::unique_ptr<ThawGuard>> Start(const std::string& guard_binary);
  // Closes the pipe (the guard thaws what is left, then exits) and reaps it;
  // SIGKILL if it has not exited after 2 s.
  ~ThawGuard();

  // Call BEFORE freezing. Returns once the guard has opened the mount point
  // and acknowledged, so a kill -9 right after the freeze is covered. At the
  // deadline the guard thaws the mount once and forgets it, so do not freeze
  // after the deadline. Registering a mount point again replaces its
  // deadline. Errors: HoldWritesTimeout if the deadline has passed;
  // Unavailable if the guard cannot open the mount point, is gone, or does
  // not answer within 2 s. After a dead or silent guard every later call
  // fails with Unavailable (its pipe is closed, so it thaws what it holds if
  // it still runs): abort the set and release the holds yourself.
  Status Register(const std::string& mount_point, std::chrono::steady_clock::time_point deadline);
  // Call AFTER thawing. The guard forgets the mount point; OK if it does not
  // hold it (e.g. it thawed it at the deadline). Errors as for Register.
  Status Unregister(const std::string& mount_point);
  // The same for many mount points in one round trip (the guard answers in
  // order). On a refusal the others are still registered / unregistered.
  Status RegisterAll(const std::vector<std::string>& mount_points,
                     std::chrono::steady_clock::time_point deadline);
  Status UnregisterAll(const std::vector<std::string>& mount_points);

  pid_t pid() const { return pid_; }

 private:
  ThawGuard() = default;
  Status Request(const std::vector<std::string>& lines);  // one answer per line
  std::mutex mu_;
  pid_t pid_ = -1;
  int to_guard_ = -1;    // write end
  int from_guard_ = -1;  // read end
};

// Where the guard binary is: next to the running executable, else on PATH.
std::string DefaultThawGuardPath();

}  // namespace snapset

#endif  // SNAPSET_CORE_THAW_GUARD_HPP
