// snapset-thaw-guard: thaws the filesystems the snapset coordinator froze
// when the coordinator goes away or a hold's deadline passes (DESIGN §4).
//
// Why a separate process: a frozen filesystem puts every writer to sleep
// uninterruptibly and nothing in the kernel ever thaws it; if the coordinator
// is killed with -9 while it holds a freeze, only another process can thaw.
// This one reads its requests from a pipe whose only write end is in the
// coordinator, so the coordinator's end, however it comes, is an EOF here.
// (PR_SET_PDEATHSIG is not used: it fires when the *thread* that forked
// exits, which in a threaded coordinator is not the coordinator's death.)
//
// Started by snapset::ThawGuard (core/thaw_guard.cc, which documents the
// protocol): requests on fd 0, answers on fd 1, one log line per thaw on
// fd 2. Plain libc and libstdc++, single-threaded, one poll loop.
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

namespace {

constexpr char kHello[] = "hello snapset-thaw-guard 1";
// Far more than any encoded path (PATH_MAX * 3); a longer line means the
// peer is not a coordinator speaking this protocol.
constexpr size_t kMaxLine = 64 * 1024;

struct Hold {
  int fd;               // the mount point, opened at "hold": thawing needs no lookup
  int64_t deadline_ns;  // CLOCK_MONOTONIC
};
std::map<std::string, Hold> holds;  // by mount point

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// For log lines and error answers, which must stay one line.
std::string Printable(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < ' ' || c == 0x7f) c = '?';
  }
  return out;
}

void Thaw(const std::string& path, const Hold& h, const char* why) {
  int err = ioctl(h.fd, FITHAW, 0) == 0 ? 0 : errno;
  if (err == 0) {
    std::fprintf(stderr, "snapset-thaw-guard: thawed %s: %s\n", Printable(path).c_str(), why);
  } else if (err != EINVAL) {  // EINVAL: not frozen, nothing to do
    std::fprintf(stderr, "snapset-thaw-guard: cannot thaw %s: %s\n", Printable(path).c_str(),
                 std::strerror(err));
  }
  close(h.fd);
}

[[noreturn]] void ThawAllAndExit(const char* why, int code) {
  for (const auto& [path, hold] : holds) Thaw(path, hold, why);
  std::exit(code);
}

void Answer(std::string line) {
  line += '\n';
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = write(1, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    // The coordinator is gone; the EOF on fd 0 that follows ends the guard.
    if (n <= 0) return;
    done += size_t(n);
  }
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool PercentDecode(const std::string& in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = HexDigit(in[i + 1]), lo = HexDigit(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(char(hi * 16 + lo));
    i += 2;
  }
  return true;
}

std::string DoHold(const std::string& args) {
  size_t space = args.find(' ');
  if (space == std::string::npos) return "error hold needs a deadline and a mount point";
  std::string deadline_text = args.substr(0, space);
  char* end = nullptr;
  errno = 0;
  long long deadline = std::strtoll(deadline_text.c_str(), &end, 10);
  if (deadline_text.empty() || *end != '\0' || errno != 0) return "error bad deadline";
  std::string path;
  if (!PercentDecode(args.substr(space + 1), &path) || path.empty() || path[0] != '/') {
    return "error the mount point must be an absolute, percent-encoded path";
  }
  // A hold registered after its deadline would never be thawed on time.
  if (deadline <= NowNs()) return "error the deadline for " + Printable(path) + " has passed";
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return "error cannot open " + Printable(path) + ": " + std::strerror(errno);
  auto it = holds.find(path);
  if (it != holds.end()) close(it->second.fd);
  holds[path] = Hold{fd, deadline};
  return "ok";
}

std::string DoRelease(const std::string& args) {
  std::string path;
  if (!PercentDecode(args, &path)) return "error bad mount point encoding";
  // The coordinator thawed it itself; forget it without touching it. Not
  // held (thawed at the deadline already) is fine too.
  auto it = holds.find(path);
  if (it != holds.end()) {
    close(it->second.fd);
    holds.erase(it);
  }
  return "ok";
}

std::string Handle(const std::string& line) {
  if (line.rfind("hold ", 0) == 0) return DoHold(line.substr(5));
  if (line.rfind("release ", 0) == 0) return DoRelease(line.substr(8));
  return "error unknown request";
}

void ThawExpired() {
  const int64_t now = NowNs();
  for (auto it = holds.begin(); it != holds.end();) {
    if (it->second.deadline_ns <= now) {
      Thaw(it->first, it->second, "deadline passed");
      it = holds.erase(it);
    } else {
      ++it;
    }
  }
}

// How long to sleep: until the earliest deadline, or forever (nullptr).
timespec* UntilNextDeadline(timespec* ts) {
  if (holds.empty()) return nullptr;
  int64_t earliest = INT64_MAX;
  for (const auto& [path, hold] : holds) earliest = std::min(earliest, hold.deadline_ns);
  int64_t wait = std::max<int64_t>(earliest - NowNs(), 0);
  ts->tv_sec = time_t(wait / 1'000'000'000);
  ts->tv_nsec = long(wait % 1'000'000'000);
  return ts;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 1) {
    std::fprintf(stderr, "usage: %s (started by snapset; speaks on stdin/stdout)\n", argv[0]);
    return 2;
  }
  // Answering a coordinator that just died must not kill us before we thaw.
  signal(SIGPIPE, SIG_IGN);
  // Terminal signals are for the coordinator; we follow it through the EOF.
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  // SIGTERM (shutdown, an administrator) thaws everything and exits. Through
  // a signalfd, so it is handled in the loop and not in a signal handler
  // racing with the map of holds.
  signal(SIGTERM, SIG_DFL);
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_SETMASK, &term, nullptr);
  int sigfd = signalfd(-1, &term, SFD_CLOEXEC);
  if (sigfd < 0) {
    std::fprintf(stderr, "snapset-thaw-guard: signalfd: %s\n", std::strerror(errno));
    return 1;
  }
  // Do not keep the coordinator's working directory (and its mount) busy.
  if (chdir("/") != 0) {
    std::fprintf(stderr, "snapset-thaw-guard: chdir /: %s\n", std::strerror(errno));
  }
  // The OOM killer must pick anything else: killing us may leave a
  // filesystem frozen. Fails without CAP_SYS_RESOURCE; then it stays as is.
  if (int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC); fd >= 0) {
    (void)!write(fd, "-1000", 5);
    close(fd);
  }

  Answer(kHello);
  std::string buffer;
  for (;;) {
    ThawExpired();
    pollfd fds[2] = {{0, POLLIN, 0}, {sigfd, POLLIN, 0}};
    timespec ts;
    int r = ppoll(fds, 2, UntilNextDeadline(&ts), nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "snapset-thaw-guard: poll: %s\n", std::strerror(errno));
      ThawAllAndExit("poll failed", 1);
    }
    if (fds[1].revents) ThawAllAndExit("SIGTERM", 0);
    if (fds[0].revents == 0) continue;  // a deadline: handled at the top
    char chunk[4096];
    ssize_t n = read(0, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) ThawAllAndExit("coordinator gone", 0);
    buffer.append(chunk, size_t(n));
    size_t newline;
    while ((newline = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      Answer(Handle(line));
    }
    if (buffer.size() > kMaxLine) {
      std::fprintf(stderr, "snapset-thaw-guard: request too long; not a snapset coordinator\n");
      ThawAllAndExit("protocol error", 1);
    }
  }
}
