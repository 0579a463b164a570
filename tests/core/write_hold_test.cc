// Holding writes during the commit window (DESIGN §4), on real filesystems
// on loop devices: FIFREEZE stops a writer and FITHAW lets it go on; the
// filesystem of the state directory is never frozen; and the thaw guard
// thaws a frozen filesystem when the coordinator is killed or the deadline
// passes.
//
// A process writing to a frozen filesystem sleeps uninterruptibly: it cannot
// be killed until the filesystem is thawed. So every test that freezes thaws
// (fsfreeze --unfreeze) before it waits for any process, also when it fails.
#define BOOST_TEST_MODULE write_hold
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <optional>
#include <set>
#include <thread>

#include "core/thaw_guard.hpp"
#include "core/write_hold.hpp"
#include "tests/support/command.hpp"
#include "tests/support/loop_filesystem.hpp"
#include "tests/support/prerequisites.hpp"
#include "tests/support/temp_dir.hpp"

using namespace snapset;
using snapset::test::LoopFilesystem;
using snapset::test::RunCommand;
using snapset::test::TempDir;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// Skips (outside CI) or fails (in CI) when a frozen loop filesystem cannot
// be made here.
bool CanFreeze(const std::string& fstype = "ext4") {
  std::string missing = LoopFilesystem::MissingPrerequisite(fstype);
  if (missing.empty() && !snapset::test::HaveProgram("fsfreeze")) missing = "fsfreeze (util-linux)";
  if (fstype == "btrfs" && missing.empty() && !snapset::test::HaveProgram("btrfs")) {
    missing = "btrfs (btrfs-progs)";
  }
  return snapset::test::Available(missing);
}

std::unique_ptr<LoopFilesystem> MakeFs(const std::string& fstype = "ext4") {
  auto fs = LoopFilesystem::Create(fstype == "btrfs" ? 256ull << 20 : 64ull << 20, fstype);
  BOOST_TEST_REQUIRE(fs.ok(), fs.status().ToString());
  return std::move(fs).value();
}

std::string GuardBinary() {
  const char* env = std::getenv("SNAPSET_THAW_GUARD");
  return env && *env ? env : DefaultThawGuardPath();
}

void Unfreeze(const std::string& mount_point) {
  RunCommand({"fsfreeze", "--unfreeze", mount_point});
}

// FITHAW straight on the mount: 0 if it was frozen (and now is not),
// EINVAL if it was not frozen. How a test asks "is it still frozen?".
int RawThaw(const std::string& mount_point) {
  int fd = ::open(mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = ::ioctl(fd, FITHAW, 0) == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

// Child processes of one test. The destructor thaws `mount_point` first, so
// that none of them is stuck in a write, and only then kills and reaps them.
class Children {
 public:
  explicit Children(std::string mount_point) : mount_point_(std::move(mount_point)) {}
  ~Children() {
    Unfreeze(mount_point_);
    for (pid_t pid : pids_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  Children(const Children&) = delete;
  Children& operator=(const Children&) = delete;

  pid_t Add(pid_t pid) {
    BOOST_TEST_REQUIRE(pid > 0);
    pids_.insert(pid);
    return pid;
  }
  // The exit status once `pid` has exited, polling until `deadline`.
  std::optional<int> WaitUntil(pid_t pid, Clock::time_point deadline) {
    for (;;) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pids_.erase(pid);
        return status;
      }
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(milliseconds(2));
    }
  }
  bool Exited(pid_t pid) { return WaitUntil(pid, Clock::now()).has_value(); }

 private:
  std::string mount_point_;
  std::set<pid_t> pids_;
};

// A child that appends one block to `file`, fsyncs it and exits 0.
pid_t StartOneWrite(const std::string& file) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    static const char block[4096] = {};
    bool ok = fd >= 0 && ::write(fd, block, sizeof block) == ssize_t(sizeof block) &&
              ::fsync(fd) == 0;
    ::_exit(ok ? 0 : 1);
  }
  return pid;
}

// Reads what is in `fd` (non-blocking) without waiting.
std::string Drain(int fd) {
  std::string text;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, size_t(n));
  return text;
}

// A guard whose stderr (its log of thaws) goes to a pipe the test reads.
struct LoggedGuard {
  std::unique_ptr<ThawGuard> guard;
  int log_fd = -1;
  ~LoggedGuard() {
    guard.reset();
    if (log_fd >= 0) ::close(log_fd);
  }
  std::string Log() const { return Drain(log_fd); }
};

std::unique_ptr<LoggedGuard> StartLoggedGuard() {
  auto logged = std::make_unique<LoggedGuard>();
  int fds[2];
  BOOST_TEST_REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
  // The guard inherits fd 2 at spawn; point it at the pipe only for that.
  int saved = ::dup(2);
  ::dup2(fds[1], 2);
  auto guard = ThawGuard::Start(GuardBinary());
  ::dup2(saved, 2);
  ::close(saved);
  ::close(fds[1]);
  logged->log_fd = fds[0];
  BOOST_TEST_REQUIRE(guard.ok(), guard.status().ToString());
  logged->guard = std::move(guard).value();
  return logged;
}

std::string ReadLineWithin(int fd, milliseconds timeout) {
  std::string line;
  const auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10) <= 0) continue;
    char c;
    if (::read(fd, &c, 1) != 1 || c == '\n') break;
    line += c;
  }
  return line;
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

BOOST_AUTO_TEST_SUITE(hold_method)

BOOST_AUTO_TEST_CASE(mounted_filesystems_are_frozen_everything_else_is_not_held) {
  struct Case {
    VolumeKind kind;
    std::string mount_point;
    HoldMethod expected;
  };
  const Case cases[] = {
      {VolumeKind::kFilesystem, "/mnt/db", HoldMethod::kFreeze},
      {VolumeKind::kFilesystem, "", HoldMethod::kNone},
      {VolumeKind::kBlock, "", HoldMethod::kNone},
      {VolumeKind::kIscsi, "", HoldMethod::kNone},
      {VolumeKind::kCow, "", HoldMethod::kNone},  // until the cow provider supplies gates
  };
  for (const Case& c : cases) {
    Volume v;
    v.kind = c.kind;
    v.mount_point = c.mount_point;
    BOOST_TEST((HoldMethodFor(v) == c.expected), VolumeKindName(c.kind) << " " << c.mount_point);
  }
  BOOST_TEST(std::string(HoldMethodName(HoldMethod::kNone)) == "none");
  BOOST_TEST(std::string(HoldMethodName(HoldMethod::kFreeze)) == "fsfreeze");
  BOOST_TEST(std::string(HoldMethodName(HoldMethod::kGate)) == "write-gate");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(freeze_hold)

BOOST_AUTO_TEST_CASE(a_writer_stops_while_held_and_resumes_after_release) {
  if (!CanFreeze()) return;
  auto fs = MakeFs();
  // The writer counts its fsynced writes in memory shared with the test.
  void* shared = ::mmap(nullptr, sizeof(std::atomic<uint64_t>), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  BOOST_TEST_REQUIRE(shared != MAP_FAILED);
  auto* progress = new (shared) std::atomic<uint64_t>(0);
  Children children(fs->mount_point());
  const std::string file = fs->mount_point() + "/log";
  const pid_t writer = ::fork();
  if (writer == 0) {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    static const char block[4096] = {};
    for (;;) {
      if (::write(fd, block, sizeof block) != ssize_t(sizeof block) || ::fdatasync(fd) != 0) {
        ::_exit(1);
      }
      progress->fetch_add(1);
      // Wrap around well before the 64 MiB filesystem fills up.
      if (progress->load() % 2048 == 0 && ::ftruncate(fd, 0) != 0) ::_exit(1);
    }
  }
  children.Add(writer);
  auto wait_for_progress = [&](uint64_t target) {
    const auto end = Clock::now() + milliseconds(3000);
    while (progress->load() < target && Clock::now() < end) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    return progress->load() >= target;
  };
  BOOST_TEST_REQUIRE(wait_for_progress(20), "the writer does not write at all");

  auto hold = MakeFreezeHold(fs->mount_point(), {});
  BOOST_TEST_REQUIRE(hold.ok(), hold.status().ToString());
  BOOST_TEST(((*hold)->method() == HoldMethod::kFreeze));
  BOOST_TEST((*hold)->target() == fs->mount_point());
  BOOST_TEST_REQUIRE((*hold)->Hold().ok());
  const uint64_t at_hold = progress->load();
  std::this_thread::sleep_for(milliseconds(300));
  const uint64_t after_hold = progress->load();
  BOOST_TEST_REQUIRE((*hold)->Release().ok());
  // One write that was already past the freeze point may still count.
  BOOST_TEST(after_hold - at_hold <= 1u,
             "the writer went on while held: " << at_hold << " -> " << after_hold);
  BOOST_TEST(wait_for_progress(after_hold + 10), "the writer did not resume after release");
  BOOST_TEST_MESSAGE("writes: " << at_hold << " before the hold, " << after_hold - at_hold
                                << " during 300 ms held, " << progress->load() - after_hold
                                << " soon after release");
  BOOST_TEST(!children.Exited(writer), "the writer failed");
  ::munmap(shared, sizeof(std::atomic<uint64_t>));
}

BOOST_AUTO_TEST_CASE(the_root_filesystem_is_never_frozen) {
  auto hold = MakeFreezeHold("/", {});
  BOOST_TEST_REQUIRE(!hold.ok());
  BOOST_TEST(hold.status().IsInvalidArgument());
  BOOST_TEST(
      hold.status().message().find("refusing to freeze /: it is on the root filesystem") == 0u,
      hold.status().message());
}

BOOST_AUTO_TEST_CASE(the_filesystem_of_the_state_directory_is_never_frozen) {
  if (!CanFreeze()) return;
  auto fs = MakeFs();
  // The state directory does not exist yet: it would be created there.
  const std::string state = fs->mount_point() + "/var/lib/snapset";
  TempDir elsewhere;
  auto hold = MakeFreezeHold(fs->mount_point(), {elsewhere.str() + "/catalog.db", state});
  BOOST_TEST_REQUIRE(!hold.ok());
  BOOST_TEST(hold.status().IsInvalidArgument());
  BOOST_TEST(hold.status().message() ==
             "freezing " + fs->mount_point() + " would freeze the filesystem holding the snapset "
             "state directory " + state + "; the coordinator would deadlock: move the state "
             "directory (--state-dir) to another filesystem");
  // A state directory on another filesystem is fine.
  auto ok = MakeFreezeHold(fs->mount_point(), {elsewhere.str() + "/state"});
  BOOST_TEST(ok.ok(), ok.status().ToString());
}

// Fedora's layout: / and /home are subvolumes of one btrfs. stat gives each
// subvolume its own st_dev, but FIFREEZE freezes the whole filesystem.
BOOST_AUTO_TEST_CASE(a_state_directory_on_another_btrfs_subvolume_is_still_protected) {
  if (!CanFreeze("btrfs")) return;
  auto fs = MakeFs("btrfs");
  TempDir dir;
  const std::string home = dir.str() + "/home";
  std::filesystem::create_directories(home);
  for (const char* sub : {"/root", "/home"}) {
    auto r = RunCommand({"btrfs", "-q", "subvolume", "create", fs->mount_point() + sub});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  }
  auto mounted = RunCommand({"mount", "-o", "subvol=home", fs->device(), home});
  BOOST_TEST_REQUIRE(mounted.exit_code == 0, mounted.output);
  struct Unmount {
    std::string path;
    ~Unmount() {
      Unfreeze(path);
      RunCommand({"umount", path});
    }
  } unmount{home};
  const std::string state = fs->mount_point() + "/root/var/lib/snapset";
  auto hold = MakeFreezeHold(home, {state});
  BOOST_TEST_REQUIRE(!hold.ok());
  BOOST_TEST(hold.status().IsInvalidArgument());
  BOOST_TEST(hold.status().message().find("the snapset state directory " + state) !=
                 std::string::npos,
             hold.status().message());
}

BOOST_AUTO_TEST_CASE(a_mount_point_that_cannot_be_opened_is_unavailable) {
  TempDir dir;
  auto hold = MakeFreezeHold(dir.str() + "/missing", {});
  BOOST_TEST_REQUIRE(!hold.ok());
  BOOST_TEST(hold.status().Is(Code::kUnavailable));
  BOOST_TEST(hold.status().message().find("cannot open mount point") == 0u);
}

BOOST_AUTO_TEST_CASE(a_filesystem_that_cannot_be_frozen_says_so) {
  // procfs has no freeze support; without CAP_SYS_ADMIN the kernel says
  // EPERM before it looks.
  auto hold = MakeFreezeHold("/proc", {});
  BOOST_TEST_REQUIRE(hold.ok(), hold.status().ToString());
  Status s = (*hold)->Hold();
  BOOST_TEST(s.Is(Code::kUnavailable));
  if (::geteuid() == 0) {
    BOOST_TEST(s.message() == "filesystem type proc on /proc cannot be frozen");
  } else {
    BOOST_TEST(s.message() == "freezing /proc needs CAP_SYS_ADMIN (run as root)");
  }
  BOOST_TEST((*hold)->Release().ok());
}

BOOST_AUTO_TEST_CASE(release_is_idempotent_and_ok_without_hold) {
  if (!CanFreeze()) return;
  auto fs = MakeFs();
  Children children(fs->mount_point());
  auto fresh = MakeFreezeHold(fs->mount_point(), {});
  BOOST_TEST_REQUIRE(fresh.ok(), fresh.status().ToString());
  BOOST_TEST((*fresh)->Release().ok());

  auto hold = MakeFreezeHold(fs->mount_point(), {});
  BOOST_TEST_REQUIRE(hold.ok(), hold.status().ToString());
  BOOST_TEST_REQUIRE((*hold)->Hold().ok());
  BOOST_TEST((*hold)->Hold().IsBadState());
  BOOST_TEST((*hold)->Release().ok());
  BOOST_TEST((*hold)->Release().ok());
  pid_t writer = children.Add(StartOneWrite(fs->mount_point() + "/after"));
  auto status = children.WaitUntil(writer, Clock::now() + milliseconds(3000));
  BOOST_TEST_REQUIRE(status.has_value(), "still frozen after Release");
  BOOST_TEST(*status == 0);
}

BOOST_AUTO_TEST_CASE(a_hold_destroyed_while_held_thaws) {
  if (!CanFreeze()) return;
  auto fs = MakeFs();
  Children children(fs->mount_point());
  {
    auto hold = MakeFreezeHold(fs->mount_point(), {});
    BOOST_TEST_REQUIRE(hold.ok(), hold.status().ToString());
    BOOST_TEST_REQUIRE((*hold)->Hold().ok());
  }
  BOOST_TEST(RawThaw(fs->mount_point()) == EINVAL, "still frozen");
}

BOOST_AUTO_TEST_CASE(someone_elses_freeze_is_reported_and_left_alone) {
  if (!CanFreeze()) return;
  auto fs = MakeFs();
  Children children(fs->mount_point());
  auto hold = MakeFreezeHold(fs->mount_point(), {});
  BOOST_TEST_REQUIRE(hold.ok(), hold.status().ToString());
  auto frozen = RunCommand({"fsfreeze", "--freeze", fs->mount_point()});
  BOOST_TEST_REQUIRE(frozen.exit_code == 0, frozen.output);
  Status s = (*hold)->Hold();
  BOOST_TEST(s.Is(Code::kUnavailable));
  BOOST_TEST(s.message() == fs->mount_point() + " is already frozen by someone else");
  BOOST_TEST((*hold)->Release().ok());
  // Release after a failed Hold must not thaw the other party's freeze.
  BOOST_TEST(RawThaw(fs->mount_point()) == 0, "the other freeze was thawed");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(thaw_guard)

BOOST_AUTO_TEST_CASE(the_guard_thaws_at_once_when_the_coordinator_is_killed) {
  if (!CanFreeze()) return;
  auto fs = MakeFs();
  // The guard outlives the killed "coordinator"; as subreaper the test
  // inherits it and can check that it exits cleanly.
  BOOST_TEST_REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  struct NoSubreaper {
    ~NoSubreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
  } no_subreaper;
  int report[2], log[2];
  BOOST_TEST_REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
  BOOST_TEST_REQUIRE(::pipe2(log, O_CLOEXEC | O_NONBLOCK) == 0);
  Children children(fs->mount_point());
  const pid_t coordinator = ::fork();
  if (coordinator == 0) {
    ::dup2(log[1], 2);  // the guard inherits it as its log
    auto guard = ThawGuard::Start(GuardBinary());
    if (!guard.ok()) ::_exit(10);
    auto hold = MakeFreezeHold(fs->mount_point(), {});
    if (!hold.ok()) ::_exit(11);
    if (!(*guard)->Register(fs->mount_point(), Clock::now() + std::chrono::seconds(60)).ok()) {
      ::_exit(12);
    }
    if (!(*hold)->Hold().ok()) ::_exit(13);
    std::string line = "frozen " + std::to_string((*guard)->pid()) + "\n";
    if (::write(report[1], line.data(), line.size()) != ssize_t(line.size())) ::_exit(14);
    for (;;) ::pause();
  }
  children.Add(coordinator);
  ::close(report[1]);
  ::close(log[1]);
  const std::string line = ReadLineWithin(report[0], milliseconds(5000));
  ::close(report[0]);
  BOOST_TEST_REQUIRE(line.rfind("frozen ", 0) == 0u, "the coordinator child did not freeze");
  pid_t guard_pid = children.Add(std::stoi(line.substr(7)));

  pid_t writer = children.Add(StartOneWrite(fs->mount_point() + "/blocked"));
  std::this_thread::sleep_for(milliseconds(200));
  BOOST_TEST_REQUIRE(!children.Exited(writer), "the filesystem is not frozen");

  const auto killed_at = Clock::now();
  BOOST_TEST_REQUIRE(::kill(coordinator, SIGKILL) == 0);
  auto written = children.WaitUntil(writer, killed_at + milliseconds(1000));
  BOOST_TEST_REQUIRE(written.has_value(), "still frozen 1 s after the coordinator was killed");
  BOOST_TEST(*written == 0);
  BOOST_TEST_MESSAGE("thawed " << Ms(Clock::now() - killed_at)
                               << " ms after kill -9 of the coordinator (write completed)");
  auto guard_status = children.WaitUntil(guard_pid, Clock::now() + milliseconds(2000));
  BOOST_TEST_REQUIRE(guard_status.has_value(), "the guard did not exit");
  BOOST_TEST((WIFEXITED(*guard_status) && WEXITSTATUS(*guard_status) == 0));
  BOOST_TEST(Drain(log[0]) ==
             "snapset-thaw-guard: thawed " + fs->mount_point() + ": coordinator gone\n");
  ::close(log[0]);
}

BOOST_AUTO_TEST_CASE(the_guard_thaws_at_the_deadline_not_before) {
  if (!CanFreeze()) return;
  auto fs = MakeFs();
  Children children(fs->mount_point());
  auto guard = StartLoggedGuard();
  auto hold = MakeFreezeHold(fs->mount_point(), {});
  BOOST_TEST_REQUIRE(hold.ok(), hold.status().ToString());
  const auto registered_at = Clock::now();
  const auto deadline = registered_at + milliseconds(500);
  BOOST_TEST_REQUIRE(guard->guard->Register(fs->mount_point(), deadline).ok());
  BOOST_TEST_REQUIRE((*hold)->Hold().ok());
  pid_t writer = children.Add(StartOneWrite(fs->mount_point() + "/blocked"));

  std::this_thread::sleep_until(registered_at + milliseconds(250));
  BOOST_TEST(!children.Exited(writer), "thawed long before the deadline");
  auto written = children.WaitUntil(writer, deadline + milliseconds(1000));
  const auto done_at = Clock::now();
  BOOST_TEST_REQUIRE(written.has_value(), "still frozen 1 s after the deadline");
  BOOST_TEST(*written == 0);
  BOOST_TEST((done_at >= deadline));
  BOOST_TEST_MESSAGE("write completed " << Ms(done_at - deadline) << " ms after the deadline");
  BOOST_TEST(guard->Log() ==
             "snapset-thaw-guard: thawed " + fs->mount_point() + ": deadline passed\n");
  // The coordinator's own release and unregister come late and are fine.
  BOOST_TEST((*hold)->Release().ok());
  BOOST_TEST(guard->guard->Unregister(fs->mount_point()).ok());
}

BOOST_AUTO_TEST_CASE(after_unregister_the_guard_leaves_the_filesystem_alone) {
  if (!CanFreeze()) return;
  auto fs = MakeFs();
  Children children(fs->mount_point());
  auto guard = StartLoggedGuard();
  auto hold = MakeFreezeHold(fs->mount_point(), {});
  BOOST_TEST_REQUIRE(hold.ok(), hold.status().ToString());
  const auto deadline = Clock::now() + milliseconds(500);
  BOOST_TEST_REQUIRE(guard->guard->Register(fs->mount_point(), deadline).ok());
  BOOST_TEST_REQUIRE((*hold)->Hold().ok());
  BOOST_TEST_REQUIRE((*hold)->Release().ok());
  BOOST_TEST_REQUIRE(guard->guard->Unregister(fs->mount_point()).ok());
  // Someone freezes it later: the guard's old deadline must not thaw that.
  auto frozen = RunCommand({"fsfreeze", "--freeze", fs->mount_point()});
  BOOST_TEST_REQUIRE(frozen.exit_code == 0, frozen.output);
  std::this_thread::sleep_until(deadline + milliseconds(300));
  BOOST_TEST(RawThaw(fs->mount_point()) == 0, "the guard thawed an unregistered mount");
  BOOST_TEST(guard->Log() == "");
  // Alive: it still answers.
  TempDir dir;
  BOOST_TEST(guard->guard->Register(dir.str(), Clock::now() + std::chrono::seconds(10)).ok());
  BOOST_TEST(guard->guard->Unregister(dir.str()).ok());
}

BOOST_AUTO_TEST_CASE(sigterm_to_the_guard_thaws_and_exits) {
  if (!CanFreeze()) return;
  auto fs = MakeFs();
  Children children(fs->mount_point());
  auto guard = StartLoggedGuard();
  auto hold = MakeFreezeHold(fs->mount_point(), {});
  BOOST_TEST_REQUIRE(hold.ok(), hold.status().ToString());
  BOOST_TEST_REQUIRE(
      guard->guard->Register(fs->mount_point(), Clock::now() + std::chrono::seconds(60)).ok());
  BOOST_TEST_REQUIRE((*hold)->Hold().ok());
  BOOST_TEST_REQUIRE(::kill(guard->guard->pid(), SIGTERM) == 0);
  pid_t writer = children.Add(StartOneWrite(fs->mount_point() + "/blocked"));
  auto written = children.WaitUntil(writer, Clock::now() + milliseconds(2000));
  BOOST_TEST_REQUIRE(written.has_value(), "still frozen after SIGTERM to the guard");
  BOOST_TEST(guard->Log() == "snapset-thaw-guard: thawed " + fs->mount_point() + ": SIGTERM\n");
  // The guard is gone: requests fail instead of hanging, and the
  // coordinator's own release still works.
  BOOST_TEST(guard->guard->Unregister(fs->mount_point()).Is(Code::kUnavailable));
  BOOST_TEST((*hold)->Release().ok());
}

BOOST_AUTO_TEST_CASE(mount_points_with_spaces_and_newlines_round_trip) {
  TempDir dir;
  // "%41" too: decoded twice, it would name ".../a b\ncA", which does not exist.
  const std::string odd = dir.str() + "/a b\nc%41";
  std::filesystem::create_directories(odd);
  auto guard = StartLoggedGuard();
  BOOST_TEST(guard->guard->Register(odd, Clock::now() + std::chrono::seconds(10)).ok());
  BOOST_TEST(guard->guard->Unregister(odd).ok());
  Status missing = guard->guard->Register(dir.str() + "/no such", Clock::now() + milliseconds(500));
  BOOST_TEST(missing.Is(Code::kUnavailable));
  BOOST_TEST(missing.message().find("cannot open " + dir.str() + "/no such") != std::string::npos,
             missing.message());
  BOOST_TEST(guard->guard->Register(odd, Clock::now() - milliseconds(1)).Is(
      Code::kHoldWritesTimeout));
  BOOST_TEST(guard->Log() == "");
}

BOOST_AUTO_TEST_CASE(a_dead_or_stuck_guard_fails_requests_in_bounded_time) {
  TempDir dir;
  {
    auto guard = StartLoggedGuard();
    BOOST_TEST_REQUIRE(::kill(guard->guard->pid(), SIGKILL) == 0);
    const auto start = Clock::now();
    // Writing to its closed pipe must be an error, not a SIGPIPE.
    Status s = guard->guard->Register(dir.str(), Clock::now() + std::chrono::seconds(10));
    BOOST_TEST(s.Is(Code::kUnavailable), s.ToString());
    BOOST_TEST(Ms(Clock::now() - start) < 2500);
  }
  {
    auto guard = StartLoggedGuard();
    BOOST_TEST_REQUIRE(::kill(guard->guard->pid(), SIGSTOP) == 0);
    const auto start = Clock::now();
    Status s = guard->guard->Register(dir.str(), Clock::now() + std::chrono::seconds(10));
    const double waited = Ms(Clock::now() - start);
    BOOST_TEST(s.Is(Code::kUnavailable), s.ToString());
    BOOST_TEST(waited < 3000);
    BOOST_TEST_MESSAGE("a stopped guard failed the request after " << waited << " ms");
    // Later requests fail at once.
    BOOST_TEST(guard->guard->Unregister(dir.str()).Is(Code::kUnavailable));
    ::kill(guard->guard->pid(), SIGCONT);
  }
}

BOOST_AUTO_TEST_CASE(the_guard_inherits_only_stdin_stdout_and_stderr) {
  // A descriptor the test forgot to make close-on-exec: a guard holding a
  // copy of some pipe or socket would keep it open as long as it lives.
  int leaked = ::open("/dev/null", O_RDONLY);
  BOOST_TEST_REQUIRE(leaked >= 0);
  auto guard = StartLoggedGuard();
  ::close(leaked);
  const std::string fd_dir = "/proc/" + std::to_string(guard->guard->pid()) + "/fd";
  for (const auto& entry : std::filesystem::directory_iterator(fd_dir)) {
    const int fd = std::stoi(entry.path().filename().string());
    if (fd <= 2) continue;
    // Its own signalfd (for SIGTERM) is the only other one.
    const std::string target = std::filesystem::read_symlink(entry.path()).string();
    BOOST_TEST(target == "anon_inode:[signalfd]", "fd " << fd << " -> " << target);
  }
}

BOOST_AUTO_TEST_CASE(a_program_that_is_not_the_guard_does_not_start) {
  auto missing = ThawGuard::Start("/nonexistent/snapset-thaw-guard");
  BOOST_TEST(missing.status().Is(Code::kUnavailable));
  auto silent = ThawGuard::Start("true");
  BOOST_TEST(silent.status().Is(Code::kUnavailable));
  BOOST_TEST(silent.status().message().find("did not start") != std::string::npos,
             silent.status().message());
}

BOOST_AUTO_TEST_CASE(the_default_guard_path_names_the_guard) {
  const std::string path = DefaultThawGuardPath();
  BOOST_TEST(std::filesystem::path(path).filename() == "snapset-thaw-guard");
}

BOOST_AUTO_TEST_SUITE_END()
