// What the snapset-cowd tests share: a daemon started in a private temp
// dir and always stopped by pid (SIGTERM, then SIGKILL, then a lazy unmount
// of its FUSE mount), loop devices and mounts undone at scope exit, and
// small file helpers. Header-only; needs Boost.Test for the prerequisite
// rule.
#ifndef SNAPSET_TESTS_SOFTWARE_COW_DAEMON_COWD_FIXTURE_HPP
#define SNAPSET_TESTS_SOFTWARE_COW_DAEMON_COWD_FIXTURE_HPP

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "providers/software-cow/client/cowd_client.hpp"
#include "tests/support/command.hpp"
#include "tests/support/loop_filesystem.hpp"
#include "tests/support/prerequisites.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test::cowd {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// True when a snapset-cowd FUSE mount (live or dead) sits on `dir`.
inline bool FuseMounted(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    if (point == dir && line.find(" - fuse.snapset-cowd ") != std::string::npos) return true;
  }
  return false;
}

inline void LazyUnmount(const std::string& dir) {
  for (int i = 0; i < 5 && FuseMounted(dir); ++i) {
    if (RunCommand({"fusermount3", "-u", "-z", dir}).exit_code != 0) {
      RunCommand({"umount", "-l", dir});
    }
  }
}

// waitpid with a deadline; true once reaped (status in *status).
inline bool Reap(pid_t pid, std::chrono::milliseconds limit, int* status) {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno == ECHILD) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// What a test needs to run snapset-cowd here; "" when all is there.
inline std::string MissingPrerequisite(bool loop_devices) {
  if (::geteuid() != 0) return "root (FUSE mounts, loop devices)";
  if (::access("/dev/fuse", R_OK | W_OK) != 0) return "/dev/fuse";
  if (!HaveProgram("fusermount3")) return "fusermount3 (Debian package fuse3)";
  if (loop_devices) {
    std::string loop = LoopFilesystem::MissingPrerequisite("ext4");
    if (!loop.empty()) return loop;
    if (!HaveProgram("e2fsck")) return "e2fsck (e2fsprogs)";
  }
  return "";
}

// snapset-cowd in <dir>/state, <dir>/mnt, <dir>/run/cowd.sock.
class Daemon {
 public:
  explicit Daemon(const std::string& dir)
      : state_(dir + "/state"), mount_(dir + "/mnt"), socket_(dir + "/run/cowd.sock"),
        log_(dir + "/cowd.log") {}
  ~Daemon() {
    if (pid_ > 0) Stop();
    LazyUnmount(mount_);
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  const std::string& state_dir() const { return state_; }
  const std::string& mount() const { return mount_; }
  const std::string& socket() const { return socket_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return ReadFile(log_); }
  // The ready line it printed last.
  const std::string& ready_line() const { return ready_; }

  // Starts it and waits for its ready line. Extra arguments replace none of
  // the defaults; they are appended.
  Status Start(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {SNAPSET_COWD, "--state-dir", state_, "--mount", mount_,
                                     "--socket", socket_};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return Status::Internal("pipe");
    int err = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return Status::Internal("fork");
    if (pid == 0) {
      // Dies with the test, should the test itself crash.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(126);
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err, STDERR_FILENO);
      int null = ::open("/dev/null", O_RDONLY);
      ::dup2(null, STDIN_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err);
    pid_ = pid;
    std::string text;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (text.find('\n') == std::string::npos && std::chrono::steady_clock::now() < until) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, size_t(n));
    }
    ::close(out[0]);
    if (text.find("\"ready\":true") == std::string::npos) {
      Kill();
      return Status::Unavailable("snapset-cowd did not report ready; stdout: " + text +
                                 "\nits log:\n" + log());
    }
    ready_ = text.substr(0, text.find('\n'));
    return Status::Ok();
  }

  // SIGTERM, wait; then SIGKILL if it would not stop. Returns its exit
  // status as waitpid gives it (-1 when it had to be killed).
  int Stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    if (!Reap(pid_, std::chrono::seconds(20), &status)) {
      Kill();
      return -1;
    }
    pid_ = -1;
    return status;
  }

  // kill -9, reap, lazily unmount the dead mount.
  void Kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      Reap(pid_, std::chrono::seconds(20), &status);
      pid_ = -1;
    }
    LazyUnmount(mount_);
  }

  // kill -9 and reap, leaving the dead FUSE mount and the socket file as
  // a crash would.
  void KillLeavingMount() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    Reap(pid_, std::chrono::seconds(20), &status);
    pid_ = -1;
  }

  Result<std::unique_ptr<cow::CowdClient>> Client(
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    return cow::CowdClient::Connect(socket_, timeout);
  }

 private:
  std::string state_, mount_, socket_, log_;
  std::string ready_;
  pid_t pid_ = -1;
};

// A loop device over a file, detached at scope exit.
class LoopDevice {
 public:
  static Result<std::unique_ptr<LoopDevice>> Attach(const std::string& file, bool read_only) {
    std::vector<std::string> args = {"losetup", "--find", "--show"};
    if (read_only) args.push_back("--read-only");
    args.push_back(file);
    auto r = RunCommand(args);
    if (r.exit_code != 0) return Status::Unavailable("losetup " + file + ": " + r.output);
    std::unique_ptr<LoopDevice> d(new LoopDevice());
    d->device_ = r.output.substr(0, r.output.find('\n'));
    return d;
  }
  ~LoopDevice() { Detach(); }
  void Detach() {
    if (device_.empty()) return;
    for (int i = 0; i < 50; ++i) {
      if (RunCommand({"losetup", "--detach", device_}).exit_code == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    // Detaching is asynchronous: wait until the backing file is let go.
    for (int i = 0; i < 50; ++i) {
      auto r = RunCommand({"losetup", "--list", "--noheadings", "-O", "BACK-FILE", device_});
      if (r.exit_code != 0 || r.output.find_first_not_of(" \n") == std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    device_.clear();
  }
  const std::string& device() const { return device_; }

 private:
  LoopDevice() = default;
  std::string device_;
};

// A mount, unmounted (after a thaw, in case a failed test left it frozen)
// at scope exit.
class Mount {
 public:
  static Result<std::unique_ptr<Mount>> Make(const std::string& device, const std::string& dir,
                                             const std::string& options,
                                             const std::string& type = "") {
    std::filesystem::create_directories(dir);
    std::vector<std::string> args = {"mount"};
    if (!type.empty()) {
      args.push_back("-t");
      args.push_back(type);
    }
    if (!options.empty()) {
      args.push_back("-o");
      args.push_back(options);
    }
    args.push_back(device);
    args.push_back(dir);
    auto r = RunCommand(args);
    if (r.exit_code != 0) return Status::Unavailable("mount " + device + ": " + r.output);
    std::unique_ptr<Mount> m(new Mount());
    m->dir_ = dir;
    return m;
  }
  ~Mount() { Unmount(); }
  void Unmount() {
    if (dir_.empty()) return;
    RunCommand({"fsfreeze", "--unfreeze", dir_});
    if (RunCommand({"umount", dir_}).exit_code != 0) RunCommand({"umount", "-l", dir_});
    dir_.clear();
  }
  const std::string& dir() const { return dir_; }

 private:
  Mount() = default;
  std::string dir_;
};

}  // namespace snapset::test::cowd

#endif  // SNAPSET_TESTS_SOFTWARE_COW_DAEMON_COWD_FIXTURE_HPP
