// The coordinator's side of the thaw guard.
//
// Protocol, version 1, between ThawGuard and tools/snapset_thaw_guard.cc.
// Lines of printable ASCII ending in '\n'. The coordinator writes requests
// to the guard's stdin; the guard answers each on its stdout, in order:
//
//   guard, once at start:             hello snapset-thaw-guard 1
//   hold <deadline> <mount point>     -> ok | error <text>
//   release <mount point>             -> ok | error <text>
//
// <deadline> is a CLOCK_MONOTONIC time in nanoseconds, in decimal; the guard
// refuses one that has passed. <mount point> is an absolute path,
// percent-encoded: every '%' and every byte outside '!'..'~' becomes %XX
// (upper-case hex), so spaces and newlines in a path cannot split a line.
// "hold" opens the mount point and replaces an earlier hold of the same path;
// "release" of a path the guard does not hold is ok (it may have thawed it at
// the deadline already). <text> is for humans.
//
// EOF on the guard's stdin means the coordinator is gone: the guard thaws
// every mount it holds, then exits 0. So does SIGTERM. At a deadline it
// thaws that mount and forgets it.
#include "core/thaw_guard.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string_view>
#include <thread>

extern char** environ;

namespace snapset {
namespace {

using Clock = std::chrono::steady_clock;

// A guard that does not answer within this is dead or stuck; the coordinator
// must not wait on it longer, its own commit window is 10 s at most.
constexpr std::chrono::milliseconds kRequestTimeout(2000);
constexpr std::string_view kHello = "hello snapset-thaw-guard 1";

std::string PercentEncode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (c > ' ' && c < 0x7f && c != '%') {
      out += char(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

int64_t MonotonicNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int RemainingMs(Clock::time_point end) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(end - Clock::now()).count();
  return left > 0 ? int(left) : 0;
}

// Writing to a pipe whose reader is dead raises SIGPIPE, which would kill the
// coordinator; a dead guard must be an error instead. This blocks SIGPIPE in
// the calling thread only (the process disposition belongs to the program)
// and, after an EPIPE, discards the signal that write raised.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    ::sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~ScopedSigpipeBlock() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

  void DiscardRaised() {
    if (was_pending_) return;  // not ours to swallow
    timespec zero{};
    while (::sigtimedwait(&set_, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }

 private:
  sigset_t set_, old_;
  bool was_pending_ = false;
};

// `fd` is non-blocking, so a guard that stops reading cannot block us.
Status WriteAll(int fd, std::string_view data, Clock::time_point end) {
  ScopedSigpipeBlock sigpipe;
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      int r = ::poll(&p, 1, RemainingMs(end));
      if (r == 0) return Status::Unavailable("the thaw guard stopped reading its requests");
      continue;
    }
    if (n < 0 && errno == EPIPE) {
      sigpipe.DiscardRaised();
      return Status::Unavailable("the thaw guard is gone (its pipe is closed)");
    }
    return Status::Unavailable(std::string("cannot write to the thaw guard: ") +
                               std::strerror(errno));
  }
  return Status::Ok();
}

// One line, without its '\n'. Byte by byte: answers are a few bytes, and
// nothing is read beyond the line, so no buffer outlives a request.
Status ReadLine(int fd, Clock::time_point end, std::string* line) {
  line->clear();
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, RemainingMs(end));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      return Status::Unavailable("the thaw guard did not answer within " +
                                 std::to_string(kRequestTimeout.count()) + " ms");
    }
    char c;
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return Status::Unavailable("the thaw guard is gone (it closed its pipe)");
    if (c == '\n') return Status::Ok();
    if (line->size() >= 4096) return Status::Internal("the thaw guard sent an overlong line");
    *line += c;
  }
}

// The child's dup2 onto 0 and 1 must not overwrite one of our own pipe ends,
// which would happen if this process runs with stdin or stdout closed.
bool MoveAboveStdio(int* fd) {
  if (*fd > 2) return true;
  int moved = ::fcntl(*fd, F_DUPFD_CLOEXEC, 3);
  ::close(*fd);
  *fd = moved;
  return moved >= 0;
}

// posix_spawn needs a path; resolve a bare name here rather than in the child.
std::string ResolveProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

}  // namespace

Result<std::unique_ptr<ThawGuard>> ThawGuard::Start(const std::string& guard_binary) {
  const std::string binary = ResolveProgram(guard_binary);
  if (binary.empty() || ::access(binary.c_str(), X_OK) != 0) {
    return Status::Unavailable("thaw guard " + guard_binary +
                               " not found or not executable; it is installed next to snapset "
                               "as snapset-thaw-guard");
  }
  int to[2], from[2];
  if (::pipe2(to, O_CLOEXEC) != 0) {
    return Status::Unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  if (::pipe2(from, O_CLOEXEC) != 0) {
    int err = errno;
    ::close(to[0]);
    ::close(to[1]);
    return Status::Unavailable(std::string("pipe: ") + std::strerror(err));
  }
  std::unique_ptr<ThawGuard> guard(new ThawGuard());
  // From here on the destructor closes what is set and reaps the child.
  guard->to_guard_ = to[1];
  guard->from_guard_ = from[0];
  int child_in = to[0], child_out = from[1];
  bool moved = MoveAboveStdio(&child_in) && MoveAboveStdio(&child_out) &&
               MoveAboveStdio(&guard->to_guard_) && MoveAboveStdio(&guard->from_guard_);
  if (!moved || ::fcntl(guard->to_guard_, F_SETFL, O_NONBLOCK) != 0) {
    int err = errno;
    if (child_in >= 0) ::close(child_in);
    if (child_out >= 0) ::close(child_out);
    return Status::Unavailable(std::string("setting up the thaw guard's pipes: ") +
                               std::strerror(err));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_in, 0);
  posix_spawn_file_actions_adddup2(&actions, child_out, 1);
  // Only stdin, stdout and stderr: an inherited copy of some other pipe or
  // socket would keep it open for as long as the guard lives.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own session: a Ctrl-C, Ctrl-Z or hang-up of the terminal must reach
  // the coordinator only; the guard follows through the pipe's EOF.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK);
  char* argv[] = {const_cast<char*>(binary.c_str()), nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, binary.c_str(), &actions, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  ::close(child_in);
  ::close(child_out);
  if (rc != 0) {
    return Status::Unavailable("cannot start thaw guard " + binary + ": " + std::strerror(rc));
  }
  guard->pid_ = pid;

  std::string hello;
  Status s = ReadLine(guard->from_guard_, Clock::now() + kRequestTimeout, &hello);
  if (s.ok() && hello != kHello) {
    s = Status::Unavailable("it said \"" + hello + "\", not \"" + std::string(kHello) + "\"");
  }
  if (!s.ok()) return s.WithContext("thaw guard " + binary + " did not start");
  return guard;
}

ThawGuard::~ThawGuard() {
  // EOF on its stdin: the guard thaws whatever is still registered and exits.
  if (to_guard_ >= 0) ::close(to_guard_);
  if (from_guard_ >= 0) ::close(from_guard_);
  if (pid_ <= 0) return;
  for (int i = 0; i < 200; ++i) {
    pid_t r = ::waitpid(pid_, nullptr, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

Status ThawGuard::Register(const std::string& mount_point, Clock::time_point deadline) {
  return RegisterAll({mount_point}, deadline);
}

Status ThawGuard::RegisterAll(const std::vector<std::string>& mount_points,
                              Clock::time_point deadline) {
  const Clock::time_point now = Clock::now();
  if (deadline <= now) {
    return Status::HoldWritesTimeout("the hold deadline has passed already; not holding " +
                                     (mount_points.empty() ? std::string() : mount_points[0]));
  }
  // steady_clock and the guard's CLOCK_MONOTONIC are the same clock in
  // libstdc++, but convert through "now" so nothing depends on that. Cap
  // the distance so that time_point::max() cannot overflow.
  auto ahead = std::min<Clock::duration>(deadline - now, std::chrono::hours(24 * 365));
  int64_t deadline_ns =
      MonotonicNs() + std::chrono::duration_cast<std::chrono::nanoseconds>(ahead).count();
  std::vector<std::string> lines;
  for (const auto& m : mount_points)
    lines.push_back("hold " + std::to_string(deadline_ns) + " " + PercentEncode(m) + "\n");
  return Request(lines);
}

Status ThawGuard::Unregister(const std::string& mount_point) {
  return UnregisterAll({mount_point});
}

Status ThawGuard::UnregisterAll(const std::vector<std::string>& mount_points) {
  std::vector<std::string> lines;
  for (const auto& m : mount_points) lines.push_back("release " + PercentEncode(m) + "\n");
  return Request(lines);
}

// Sends every line at once, then reads one answer per line: the guard
// answers in order, so a batch costs one round trip instead of one each.
Status ThawGuard::Request(const std::vector<std::string>& lines) {
  std::lock_guard<std::mutex> lock(mu_);
  if (to_guard_ < 0) return Status::Unavailable("the thaw guard failed earlier");
  if (lines.empty()) return Status::Ok();
  const Clock::time_point end = Clock::now() + kRequestTimeout;
  std::string batch;
  for (const auto& l : lines) batch += l;
  Status s = WriteAll(to_guard_, batch, end);
  Status refused;
  std::string answer;
  for (size_t i = 0; s.ok() && i < lines.size(); ++i) {
    s = ReadLine(from_guard_, end, &answer);
    if (!s.ok()) break;
    if (answer == "ok") continue;
    if (answer.rfind("error ", 0) == 0) {
      if (refused.ok()) refused = Status::Unavailable(answer.substr(6));
      continue;
    }
    s = Status::Internal("unexpected answer from the thaw guard: \"" + answer + "\"");
  }
  if (s.ok()) return refused;
  // A guard that timed out may answer late and would then be out of step;
  // one that is gone cannot be trusted. Close its pipe: if it still runs it
  // thaws what it holds and exits. Later requests fail, and the coordinator
  // aborts the set and thaws its own holds.
  ::close(to_guard_);
  to_guard_ = -1;
  return s;
}

std::string DefaultThawGuardPath() {
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    std::filesystem::path candidate = exe.parent_path() / "snapset-thaw-guard";
    if (std::filesystem::is_regular_file(candidate, ec) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate.string();
    }
  }
  return "snapset-thaw-guard";
}

}  // namespace snapset
