#include "core/hook_writers.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "core/file_safety.hpp"

extern char** environ;

namespace snapset {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kMaxOutput = 4096;  // what goes into an error message
// Bytes read after a hook exited: a background child it left holding the
// pipe may write forever, and we must not wait for it.
constexpr size_t kMaxDrainAfterExit = 1 << 20;
// Thaw runs even when the window is (nearly) used up: a frozen application
// left frozen is worse than a late thaw.
constexpr milliseconds kMinThawTime = std::chrono::seconds(5);
// SIGKILL cannot end a process in uninterruptible sleep (e.g. writing to a
// frozen filesystem), so reaping after a kill is bounded too.
constexpr milliseconds kReapAfterKill = std::chrono::seconds(2);
// Bytes read per wakeup, so that a hook writing nonstop (`yes`) cannot keep
// us reading past the deadline.
constexpr size_t kReadPerWakeup = 64 * 1024;
// Without a pidfd, how often to look whether the hook has exited.
constexpr milliseconds kExitPollTick{10};

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::string Errno(int err) { return std::strerror(err); }

// "60 s", "4.2 s", "300 ms".
std::string FormatDuration(milliseconds d) {
  const int64_t ms = d.count();
  if (ms < 1000) return std::to_string(ms) + " ms";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", double(ms) / 1000.0);
  return buf;
}

milliseconds Until(Clock::time_point deadline) {
  auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
  return std::max(left, milliseconds(0));
}

std::string Lane(const std::string& hook) {
  return "writer:" + fs::path(hook).filename().string();
}

// Output captured from a hook: the first kMaxOutput bytes; the rest is read
// and dropped so the hook never blocks on a full pipe.
struct Captured {
  std::string text;
  bool truncated = false;

  void Append(const char* data, size_t n) {
    const size_t keep = std::min(n, kMaxOutput - text.size());
    text.append(data, keep);
    if (keep < n) truncated = true;
  }

  // ": <output>", or nothing for a silent hook.
  std::string ForMessage() const {
    std::string t = text;
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
    if (t.empty()) return "";
    if (truncated) t += " [output truncated to the first 4 KiB]";
    return ": " + t;
  }
};

// Reads what is available on the non-blocking `fd`, at most `budget` bytes.
// Returns false at end of file.
bool ReadAvailable(int fd, Captured* out, size_t budget) {
  char buf[4096];
  size_t total = 0;
  while (total < budget) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out->Append(buf, size_t(n));
      total += size_t(n);
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    // EAGAIN: nothing more for now. Any other error: treat as closed, since
    // polling a broken descriptor again would spin.
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
  return true;
}

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return int(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

// Waits until `pid` exits or `deadline`, reading its output from `out_fd`
// (-1 once closed) meanwhile. Returns true and the wait status once reaped.
// `*wait_error` is set if waitpid fails for a reason other than EINTR.
bool WaitForExit(pid_t pid, int pidfd, int* out_fd, Captured* out, Clock::time_point deadline,
                 int* wstatus, int* wait_error) {
  for (;;) {
    pid_t r = ::waitpid(pid, wstatus, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) {
      *wait_error = errno;
      return false;
    }
    milliseconds left = Until(deadline);
    if (left.count() == 0) return false;
    // A pidfd wakes us the moment the hook exits; without one, look again
    // every tick, because the pipe alone does not tell: a background child
    // the hook started may keep the write end open long after it exited.
    if (pidfd < 0) left = std::min(left, kExitPollTick);
    pollfd fds[2];
    nfds_t n = 0;
    if (*out_fd >= 0) fds[n++] = {*out_fd, POLLIN, 0};
    if (pidfd >= 0) fds[n++] = {pidfd, POLLIN, 0};
    int ready = ::poll(fds, n, int(left.count()));
    if (ready < 0 && errno != EINTR) {
      // Should not happen; fall back to a plain tick so the deadline holds.
      std::this_thread::sleep_for(kExitPollTick);
      continue;
    }
    if (ready > 0 && *out_fd >= 0 && fds[0].revents != 0) {
      if (!ReadAvailable(*out_fd, out, kReadPerWakeup)) *out_fd = -1;
    }
  }
}

std::vector<std::string> HookEnvironment(const std::string& set_id,
                                         const std::vector<std::string>& volumes,
                                         const char* phase) {
  static constexpr std::string_view kOurs[] = {"SNAPSET_SET_ID=", "SNAPSET_VOLUMES=",
                                               "SNAPSET_PHASE="};
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    bool ours = std::any_of(std::begin(kOurs), std::end(kOurs),
                            [&](std::string_view p) { return entry.substr(0, p.size()) == p; });
    if (!ours) env.emplace_back(entry);
  }
  std::string joined;
  for (const auto& v : volumes) joined += (joined.empty() ? "" : "\n") + v;
  env.push_back("SNAPSET_SET_ID=" + set_id);
  env.push_back("SNAPSET_VOLUMES=" + joined);
  env.push_back(std::string("SNAPSET_PHASE=") + phase);
  return env;
}

struct SpawnConfig {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnConfig() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnConfig() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnConfig(const SpawnConfig&) = delete;
  SpawnConfig& operator=(const SpawnConfig&) = delete;
};

}  // namespace

Status RunWriterCommand(const std::vector<std::string>& command, const std::string& who,
                        const char* phase, const std::string& set_id,
                        const std::vector<std::string>& volumes, Clock::time_point deadline,
                        const std::string& budget) {
  if (command.empty()) return Status::InvalidArgument(who + " has an empty command");
  const std::string& hook = command.front();
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
    return Status::Internal("cannot create a pipe for " + who + ": " + Errno(errno));
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);

  SpawnConfig cfg;
  posix_spawn_file_actions_addopen(&cfg.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&cfg.actions, write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&cfg.actions, write_end.get(), STDERR_FILENO);
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
  // A hook (or a daemon it starts) must not inherit the coordinator's other
  // descriptors: holding the thaw guard's pipe, say, would keep the guard
  // from noticing that the coordinator died.
  posix_spawn_file_actions_addclosefrom_np(&cfg.actions, STDERR_FILENO + 1);
#endif
  // Its own process group, so that on overrun kill(-pgid) reaches the
  // children it started too. Default signal dispositions and an empty mask,
  // whatever the coordinator's thread had: a hook with SIGPIPE ignored or
  // SIGTERM blocked misbehaves in ways nobody would debug.
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setflags(&cfg.attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&cfg.attr, 0);
  posix_spawnattr_setsigmask(&cfg.attr, &empty);
  posix_spawnattr_setsigdefault(&cfg.attr, &all);

  std::vector<std::string> args = command;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = HookEnvironment(set_id, volumes, phase);
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  int err = ::posix_spawn(&pid, hook.c_str(), &cfg.actions, &cfg.attr, argv.data(), envp.data());
  if (err != 0) {
    std::string msg = "cannot run " + who + ": " + Errno(err);
    if (err == ENOEXEC) msg += " (a script must start with a #! line, e.g. #!/bin/sh)";
    return Status(Code::kWriterFailed, msg);
  }
  write_end.reset();  // else we would never see end of file
  ::fcntl(read_end.get(), F_SETFL, ::fcntl(read_end.get(), F_GETFL) | O_NONBLOCK);
  UniqueFd pidfd(PidfdOpen(pid));

  Captured out;
  int out_fd = read_end.get();
  int wstatus = 0, wait_error = 0;
  if (!WaitForExit(pid, pidfd.get(), &out_fd, &out, deadline, &wstatus, &wait_error)) {
    if (wait_error != 0) {
      // ECHILD: someone else reaped it (SIGCHLD ignored, or a waitpid(-1)
      // elsewhere), so its exit status is lost.
      return Status::Internal("cannot wait for " + who + ": " + Errno(wait_error));
    }
    // The group first; the pid too, in case the hook moved to a new group.
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    int ignored_fd = -1;
    Captured ignored;
    if (!WaitForExit(pid, pidfd.get(), &ignored_fd, &ignored, Clock::now() + kReapAfterKill,
                     &wstatus, &wait_error) &&
        wait_error == 0) {
      // Stuck in uninterruptible sleep. Reap it whenever it does die rather
      // than blocking the set or leaving a zombie.
      std::thread([pid] {
        while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
      }).detach();
    }
    if (out_fd >= 0) ReadAvailable(out_fd, &out, kMaxOutput);
    std::string output = out.ForMessage();
    return Status(Code::kWriterTimeout,
                  who + " did not finish " + phase + " within " + budget +
                      "; killed" + (output.empty() ? "" : ". Its output" + output));
  }
  if (out_fd >= 0) ReadAvailable(out_fd, &out, kMaxDrainAfterExit);

  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return Status::Ok();
  if (WIFEXITED(wstatus)) {
    return Status(Code::kWriterFailed, who + " failed with exit status " +
                                           std::to_string(WEXITSTATUS(wstatus)) +
                                           out.ForMessage());
  }
  const int sig = WTERMSIG(wstatus);
  const char* abbrev = sigabbrev_np(sig);
  return Status(Code::kWriterFailed,
                who + " was killed by signal " + std::to_string(sig) +
                    (abbrev ? std::string(" (SIG") + abbrev + ")" : "") + out.ForMessage());
}

namespace {

Status RunPhase(const std::string& hook, const char* phase, const std::string& set_id,
                const std::vector<std::string>& volumes, Clock::time_point deadline,
                const std::string& budget, Timeline* timeline) {
  const std::string lane = Lane(hook);
  if (timeline) timeline->Begin(lane, phase);
  Status s = RunWriterCommand({hook, phase}, "writer hook " + hook, phase, set_id, volumes,
                              deadline, budget);
  if (timeline) timeline->End(lane, phase, s);
  return s;
}

}  // namespace

Result<HookWriters> HookWriters::Discover(const std::string& config_dir) {
  const fs::path dir = fs::path(config_dir) / "writers.d";
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (st.type() == fs::file_type::not_found) return HookWriters();
  if (ec) return Status::Config("cannot read " + dir.string() + ": " + ec.message());
  if (!fs::is_directory(st)) {
    return Status::InvalidArgument(dir.string() +
                                   " is not a directory; it must be a folder of hook writers "
                                   "(remove it, or make it a folder)");
  }
  // Whoever can add a file here runs code with our privileges.
  SNAPSET_RETURN_IF_ERROR(CheckTrustedFile(dir.string(), "hook writers folder"));
  const fs::path abs_dir = fs::canonical(dir, ec);
  if (ec) return Status::Config("cannot resolve " + dir.string() + ": " + ec.message());

  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(abs_dir, ec)) {
    std::string name = entry.path().filename().string();
    // Hidden files and editor backups are not hooks: running "10-db~" next
    // to "10-db" would freeze the database twice with an old script.
    if (name.empty() || name.front() == '.' || name.back() == '~') continue;
    // NAME.json declares an express writer (core/express_writer.hpp).
    if (name.size() > 5 && name.ends_with(".json")) continue;
    names.push_back(std::move(name));
  }
  if (ec) return Status::Config("cannot read " + dir.string() + ": " + ec.message());
  std::sort(names.begin(), names.end());

  HookWriters writers;
  for (const auto& name : names) {
    // The entry itself, not its target: the lane and the order are by the
    // name in writers.d, and the safety check below follows the link.
    const std::string path = (abs_dir / name).string();
    const std::string fix = " (make it executable: chmod +x " + path +
                            ", or remove it from " + abs_dir.string() + ")";
    struct stat target;
    if (::stat(path.c_str(), &target) != 0) {
      return Status::InvalidArgument("writer hook " + path + " cannot be used: " +
                                     Errno(errno) + "; every file in writers.d must be an "
                                     "executable file (fix the link, or remove it)");
    }
    if (!S_ISREG(target.st_mode)) {
      return Status::InvalidArgument("writer hook " + path +
                                     " is not a regular file; every entry in writers.d must be "
                                     "an executable file (remove it from " +
                                     abs_dir.string() + ")");
    }
    if (::faccessat(AT_FDCWD, path.c_str(), X_OK, AT_EACCESS) != 0) {
      return Status::InvalidArgument("writer hook " + path +
                                     " is not executable, so it would never run" + fix);
    }
    SNAPSET_RETURN_IF_ERROR(CheckTrustedFile(path, "hook writer"));
    writers.hooks_.push_back(path);
  }
  return writers;
}

Status HookWriters::Freeze(const std::string& set_id, const std::vector<std::string>& volumes,
                           Timeline* timeline, std::chrono::milliseconds window) {
  if (!frozen_.empty()) {
    return Status::BadState("hook writers are still frozen for set " + set_id_ +
                            "; thaw them before freezing again");
  }
  if (window.count() <= 0) {
    return Status::InvalidArgument("the writer window must be positive, not " +
                                   std::to_string(window.count()) + " ms");
  }
  set_id_ = set_id;
  volumes_ = volumes;
  window_end_ = Clock::now() + window;
  const std::string budget = "the writer window of " + FormatDuration(window);
  for (const auto& hook : hooks_) {
    Status s = RunPhase(hook, "freeze", set_id_, volumes_, window_end_, budget, timeline);
    if (!s.ok()) {
      // Never leave an application frozen because a later one refused.
      Status thawed = Thaw(timeline);
      if (!thawed.ok()) {
        return Status(s.code(), s.message() + "; then thawing the hooks that had frozen failed: " +
                                    thawed.message());
      }
      return s;
    }
    frozen_.push_back(hook);
  }
  return Status::Ok();
}

Status HookWriters::Thaw(Timeline* timeline) {
  Status first;
  for (auto it = frozen_.rbegin(); it != frozen_.rend(); ++it) {
    const auto now = Clock::now();
    const auto deadline = std::max(window_end_, now + kMinThawTime);
    const std::string budget =
        "the " + FormatDuration(std::chrono::ceil<milliseconds>(deadline - now)) +
        " it was given (the rest of the writer window, at least " +
        FormatDuration(kMinThawTime) + ")";
    Status s = RunPhase(*it, "thaw", set_id_, volumes_, deadline, budget, timeline);
    if (!s.ok() && first.ok()) first = std::move(s);
  }
  frozen_.clear();
  return first;
}

}  // namespace snapset
