// Hook writers: the first, simplest kind of writer (issue 3, point 7).
//
// Every executable regular file in <config-dir>/writers.d (but NAME.json,
// which declares an express writer) is a hook (a
// symlink to one counts, named after the link; names starting with '.' and
// editor backups ending in '~' are ignored), run in file-name order with one
// argument, "freeze" before the set's writes are held and "thaw" after they
// are released -- the qemu-guest-agent fsfreeze-hook convention. Each hook gets in its environment:
//   SNAPSET_SET_ID     the set id
//   SNAPSET_VOLUMES    the set's volume names, one per line
//   SNAPSET_PHASE      "freeze" or "thaw"
// stdin is /dev/null; stdout and stderr are captured (the first 4 KiB go
// into the error message of a failed hook). Hooks run in their own process
// group so an overrunning hook and its children can be killed together (a
// child that moves itself to another group or session escapes that). A hook
// gets no other descriptor of the coordinator, default signal dispositions and an
// empty signal mask.
//
// The writer window: from the start of Freeze() to the end of Thaw(), at
// most `window` (60 s by default). A hook that exits non-zero, dies of a
// signal or overruns fails the set; Freeze() then thaws every hook that had
// frozen (in reverse order) before returning the error, and Thaw() runs
// "thaw" on every hook that froze even if some fail. The hook that failed or
// overran is not thawed: it never reported frozen.
//
// Thread-safety: none; one thread drives Freeze() then Thaw() for one set.
// No call waits past its deadline: a killed hook that cannot die (stuck
// in uninterruptible sleep) is left to a detached thread to reap.
#ifndef SNAPSET_CORE_HOOK_WRITERS_HPP
#define SNAPSET_CORE_HOOK_WRITERS_HPP

#include <snapset/status.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "core/timeline.hpp"

namespace snapset {

// Runs one writer command (`command[0]` is an absolute path, no shell) for
// `phase` with the hooks' conventions above: environment, own process
// group, output captured, killed at `deadline`. `who` names it in errors
// ("writer hook /etc/snapset/writers.d/10-db"); `budget` describes the time
// it had. Errors: WriterFailed, WriterTimeout, Internal as for Freeze().
Status RunWriterCommand(const std::vector<std::string>& command, const std::string& who,
                        const char* phase, const std::string& set_id,
                        const std::vector<std::string>& volumes,
                        std::chrono::steady_clock::time_point deadline, const std::string& budget);

class HookWriters {
 public:
  // Finds the hooks of <config_dir>/writers.d (none if the folder is
  // missing). Errors: InvalidArgument naming a file in writers.d that is not
  // an executable regular file (a hook that would silently not run is
  // worse than an error), Config for an unsafe file or folder (owned by
  // someone other than root or the current user, or writable by group or
  // others; it runs with the coordinator's privileges).
  static Result<HookWriters> Discover(const std::string& config_dir);

  // Absolute paths of the entries in writers.d, in run order (links not
  // resolved).
  const std::vector<std::string>& hooks() const { return hooks_; }
  bool empty() const { return hooks_.empty(); }

  // Runs "freeze" on each hook in order; starts the writer window.
  // Errors: WriterFailed (exit status / signal / could not be started, with
  // its output), WriterTimeout (overran the window; killed), BadState if
  // still frozen from an earlier Freeze(), InvalidArgument for a window <= 0,
  // Internal if someone else reaped the hook (SIGCHLD set to SIG_IGN). Each
  // hook run is a span on lane "writer:<file name>", step "freeze", of
  // `timeline` (may be null).
  Status Freeze(const std::string& set_id, const std::vector<std::string>& volumes,
                Timeline* timeline, std::chrono::milliseconds window = std::chrono::seconds(60));
  // Runs "thaw" on each hook that froze, in reverse order, within what is
  // left of the window (at least a few seconds, so thaw always gets a
  // chance: 5 s). Returns the first failure; frozen_ is empty afterwards, so
  // a second Thaw(), or one after a failed Freeze(), does nothing. Spans on
  // the same lanes, step "thaw".
  Status Thaw(Timeline* timeline);

 private:
  std::vector<std::string> hooks_;
  std::vector<std::string> frozen_;  // hooks whose freeze succeeded
  std::string set_id_;
  std::vector<std::string> volumes_;
  std::chrono::steady_clock::time_point window_end_;
};

}  // namespace snapset

#endif  // SNAPSET_CORE_HOOK_WRITERS_HPP
