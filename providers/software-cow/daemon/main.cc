// snapset-cowd: serves software copy-on-write volumes (DESIGN §7) through
// FUSE and takes orders on a control socket. docs/software-cow.md.
//
// Start-up: lock the state dir, open every volume found there, listen on
// the control socket, mount FUSE, then print one JSON "ready" line on
// stdout. SIGTERM/SIGINT/SIGHUP: end every hold, close the control socket,
// stop FUSE and unmount, flush and close the volumes, exit 0.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "providers/software-cow/client/cowd_client.hpp"
#include "providers/software-cow/daemon/control_server.hpp"
#include "providers/software-cow/daemon/fuse_fs.hpp"
#include "providers/software-cow/daemon/log.hpp"
#include "providers/software-cow/daemon/volume_registry.hpp"

#ifndef SNAPSET_VERSION
#define SNAPSET_VERSION "unknown"
#endif

namespace fs = std::filesystem;
using namespace snapset::cow;
using namespace snapset::cow::daemon;

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitFailure = 1;

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "snapset-cowd: %s\n", message.c_str());
  return code;
}

bool IsOurDeadMount(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    if (point == dir && line.find(std::string(" - ") + kFuseType + " ") != std::string::npos) {
      return true;
    }
  }
  return false;
}

// "" when `dir` can be mounted on (created when missing), else why not.
std::string CheckMountDir(const std::string& dir, int* exit_code) {
  *exit_code = kExitUsage;
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOTCONN && IsOurDeadMount(dir)) {
      // A daemon died with its mount in place: take it away.
      if (::umount2(dir.c_str(), MNT_DETACH) != 0) {
        *exit_code = kExitFailure;
        return "--mount " + dir + " is the dead FUSE mount of a snapset-cowd that died and "
               "cannot be unmounted (" + std::strerror(errno) + "); run `umount -l " + dir + "`";
      }
      Log("lazily unmounted the dead FUSE mount left on " + dir + " by a daemon that died");
      return CheckMountDir(dir, exit_code);
    }
    if (errno != ENOENT) {
      *exit_code = kExitFailure;
      return "--mount " + dir + ": " + std::strerror(errno) +
             (errno == ENOTCONN ? "; a dead FUSE mount? run `umount -l " + dir + "`" : "");
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      *exit_code = kExitFailure;
      return "cannot create the mount directory " + dir + ": " + ec.message();
    }
    return "";
  }
  if (!S_ISDIR(st.st_mode)) return "--mount " + dir + " is not a directory";
  std::error_code ec;
  if (!fs::is_empty(dir, ec) || ec) {
    return "--mount " + dir + " is not an empty directory (" +
           (ec ? ec.message() : std::string("it has entries")) +
           "); snapset-cowd mounts its FUSE tree on an empty directory";
  }
  return "";
}

std::string Absolute(const std::string& p) {
  return fs::absolute(p).lexically_normal().string();
}

std::string ReadyLine(const VolumeRegistry& reg, const std::string& socket) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("ready");
  w.Bool(true);
  w.Key("pid");
  w.Int64(::getpid());
  w.Key("version");
  w.String(SNAPSET_VERSION);
  w.Key("mount");
  w.String(reg.mount_dir().c_str());
  w.Key("socket");
  w.String(socket.c_str());
  w.Key("state_dir");
  w.String(reg.state_dir().c_str());
  w.Key("volumes");
  w.Uint64(reg.Count() - reg.BrokenCount());
  w.Key("broken_volumes");
  w.Uint64(reg.BrokenCount());
  w.EndObject();
  return sb.GetString();
}

}  // namespace

int main(int argc, char** argv) {
  std::string state_dir = kDefaultStateDir;
  std::string mount_dir = kDefaultMount;
  std::string socket_path = kDefaultSocket;
  bool debug_fuse = false;

  CLI::App app{"snapset-cowd: serves software copy-on-write volumes and their snapshots as "
               "files through FUSE, controlled over a Unix socket (docs/software-cow.md)",
               "snapset-cowd"};
  app.add_option("--state-dir", state_dir,
                 "where diff areas (volumes/NAME.diff) and created origins live")
      ->capture_default_str();
  app.add_option("--mount", mount_dir, "empty directory for the FUSE tree NAME/origin, "
                 "NAME/snapshots/ID")->capture_default_str();
  app.add_option("--socket", socket_path, "control socket (created 0600)")->capture_default_str();
  app.add_flag("--debug-fuse", debug_fuse, "log every FUSE request (libfuse -d)");
  app.set_version_flag("--version", SNAPSET_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  if (state_dir.empty() || mount_dir.empty() || socket_path.empty()) {
    return Fail(kExitUsage, "--state-dir, --mount and --socket must not be empty");
  }
  state_dir = Absolute(state_dir);
  mount_dir = Absolute(mount_dir);
  socket_path = Absolute(socket_path);
  auto under = [](const std::string& a, const std::string& b) {
    return a == b || (a.size() > b.size() && a.compare(0, b.size(), b) == 0 && a[b.size()] == '/');
  };
  if (under(state_dir, mount_dir) || under(mount_dir, state_dir) || under(socket_path, mount_dir)) {
    return Fail(kExitUsage, "--state-dir, --mount and --socket must not lie inside one another "
                            "(state dir " + state_dir + ", mount " + mount_dir + ", socket " +
                            socket_path + ")");
  }

  // The state dir, locked for this daemon's life.
  std::error_code ec;
  fs::create_directories(state_dir + "/volumes", ec);
  if (ec) return Fail(kExitFailure, "cannot create " + state_dir + "/volumes: " + ec.message());
  ::chmod(state_dir.c_str(), 0700);
  const std::string lock_path = state_dir + "/cowd.lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return Fail(kExitFailure, "cannot open " + lock_path + ": " + std::strerror(errno));
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    (void)!::pread(lock_fd, pid, sizeof pid - 1, 0);
    return Fail(kExitFailure, "state dir " + state_dir + " is in use by another snapset-cowd (pid " +
                                  std::string(pid) + "); stop it first or use another --state-dir");
  }
  std::string pid_text = std::to_string(::getpid());
  (void)!::ftruncate(lock_fd, 0);
  (void)!::pwrite(lock_fd, pid_text.data(), pid_text.size(), 0);

  int mount_exit = 0;
  std::string mount_problem = CheckMountDir(mount_dir, &mount_exit);
  if (!mount_problem.empty()) return Fail(mount_exit, mount_problem);
  // The path the kernel reports for files under the mount (a loop device's
  // backing_file, mountinfo) is the canonical one: publish that, so clients
  // can match it (the provider finds cow volumes under loop devices so).
  if (auto canonical = std::filesystem::canonical(mount_dir, ec); !ec)
    mount_dir = canonical.string();

  // Signals are taken by sigwait in this thread only; every thread started
  // from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  VolumeRegistry registry(state_dir, mount_dir);
  registry.Recover();

  ControlServer control(&registry, socket_path);
  if (auto s = control.Listen(); !s.ok()) {
    return Fail(s.IsInvalidArgument() ? kExitUsage : kExitFailure, s.message());
  }

  FuseFs fuse(&registry);
  if (auto s = fuse.Mount(mount_dir, debug_fuse); !s.ok()) {
    control.Stop();
    return Fail(kExitFailure, s.message());
  }
  registry.SetSnapshotGoneHook(
      [&fuse](const Volume& v, uint64_t epoch, bool in_fuse_request) {
        fuse.InvalidateSnapshot(v.uid, epoch, /*wait=*/!in_fuse_request);
      });
  fuse.Start([] { ::kill(::getpid(), SIGUSR1); });
  control.Start();
  registry.StartWatchdog();

  std::string ready = ReadyLine(registry, socket_path);
  std::fprintf(stdout, "%s\n", ready.c_str());
  std::fflush(stdout);
  Log("ready: mount " + mount_dir + ", socket " + socket_path + ", state " + state_dir);

  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  int exit_code = 0;
  if (sig == SIGUSR1) {
    Log("shutting down: the FUSE mount went away");
    exit_code = kExitFailure;
  } else {
    Log(std::string("shutting down on ") + strsignal(sig));
  }
  registry.ReleaseEverything();
  control.Stop();
  if (auto s = fuse.Stop(); !s.ok()) {
    Log(s.message() + "; exiting without closing the volumes (their diff areas are crash-safe)");
    std::fflush(stderr);
    ::_exit(kExitFailure);
  }
  registry.CloseAll();
  ::close(lock_fd);  // the file stays: unlinking a lock file races with the next daemon
  Log("stopped");
  return exit_code;
}
