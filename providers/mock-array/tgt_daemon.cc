#include "providers/mock-array/tgt_daemon.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/run_command.hpp"

namespace snapset::mock {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kStartAttempts = 5;
constexpr std::chrono::milliseconds kStartTimeout{10000};
constexpr std::chrono::milliseconds kPollInterval{20};
constexpr int kExitTimeoutMs = 3000;

std::string Program(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/local/sbin/", "/usr/bin/"}) {
    std::string path = std::string(dir) + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return name;
}

Result<int> FreePort(const std::string& host) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Internal(std::string("socket: ") + strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    close(fd);
    return Status::InvalidArgument("not an IPv4 address: " + host);
  }
  socklen_t length = sizeof(address);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int error = errno;
  close(fd);
  if (!ok) return Status::Unavailable(std::string("bind: ") + strerror(error));
  return static_cast<int>(ntohs(address.sin_port));
}

}  // namespace

Result<std::unique_ptr<TgtDaemon>> TgtDaemon::Start(const std::string& state_dir,
                                                    const std::string& host, int port) {
  if (geteuid() != 0) return Status::Unavailable("tgtd needs root");
  // tgtd listens on, and tgtadm talks to, this path plus ".<control>".
  setenv("TGT_IPC_SOCKET", (state_dir + "/tgt-ipc").c_str(), 1);
  // The control number only names the socket and its lock in state_dir; a
  // fresh one per run keeps clear of a daemon left from a killed array that
  // is still on its way out.
  const int control = 1 + getpid() % 32000;
  Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    int chosen = port;
    if (port == 0) {
      Result<int> free_port = FreePort(host);
      if (!free_port.ok()) return free_port.status();
      chosen = *free_port;
    }
    std::unique_ptr<TgtDaemon> daemon(new TgtDaemon(state_dir, host, chosen, control));
    bool port_taken = false;
    last = daemon->Launch(&port_taken);
    if (last.ok()) return daemon;
    daemon->Stop();
    if (!port_taken || port != 0) return last;
  }
  return last;
}

TgtDaemon::~TgtDaemon() { Stop(); }

Status TgtDaemon::Launch(bool* port_taken) {
  const std::string log_path = dir_ + "/tgtd.log";
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) {
    if (log_fd >= 0) close(log_fd);
    if (null_fd >= 0) close(null_fd);
    return Status::Internal("opening " + log_path + ": " + strerror(errno));
  }
  const std::string portal = host_ + ":" + std::to_string(port_);
  std::vector<std::string> args = {Program("tgtd"), "-f", "-C", std::to_string(control_),
                                   "--iscsi", "portal=" + portal};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Async-signal-safe calls only. Die with the array, even on kill -9.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const int fork_error = errno;
  close(log_fd);
  close(null_fd);
  if (pid < 0) return Status::Internal(std::string("fork: ") + strerror(fork_error));
  pid_ = pid;

  // tgtd answers tgtadm once set up; if it cannot bind the portal it falls
  // back to 0.0.0.0:3260 instead of failing, so the portal list tells.
  const std::string socket_path = dir_ + "/tgt-ipc." + std::to_string(control_);
  const auto deadline = Clock::now() + kStartTimeout;
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return Status::Unavailable("tgtd stopped at start; see " + log_path);
    }
    if (access(socket_path.c_str(), F_OK) == 0) {
      Result<std::string> portals = Admin({"--lld", "iscsi", "--op", "show", "--mode", "portal"});
      if (portals.ok()) {
        if (portals->find("Portal: " + portal + ",") != std::string::npos) return Status::Ok();
        *port_taken = true;
        return Status::Unavailable("tgtd could not bind " + portal);
      }
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return Status::Unavailable("tgtd did not answer within 10 s; see " + log_path);
}

Result<std::string> TgtDaemon::Admin(std::vector<std::string> args) const {
  args.insert(args.begin(), {Program("tgtadm"), "-C", std::to_string(control_)});
  CommandResult result = RunCommand(args);
  if (result.exit_code != 0) {
    std::string what;
    for (size_t i = 3; i < args.size(); ++i) what += " " + args[i];
    return Status::Unavailable("tgtadm" + what + " failed: " + result.output);
  }
  return result.output;
}

Status TgtDaemon::AddTargetWithLun(int tid, const std::string& iqn, const std::string& file,
                                   uint32_t block_size, const std::string& scsi_id,
                                   const std::string& serial, bool read_only) {
  const std::string t = std::to_string(tid);
  Result<std::string> r =
      Admin({"--lld", "iscsi", "--op", "new", "--mode", "target", "--tid", t, "-T", iqn});
  if (!r.ok()) return r.status();
  tids_.insert(tid);
  r = Admin({"--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", t, "-I", "ALL"});
  if (!r.ok()) return r.status();
  r = Admin({"--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", t, "--lun", "1",
             "-b", file, "--blocksize", std::to_string(block_size)});
  if (!r.ok()) return r.status();
  r = Admin({"--lld", "iscsi", "--op", "update", "--mode", "logicalunit", "--tid", t, "--lun",
             "1", "--params",
             "scsi_id=" + scsi_id + ",scsi_sn=" + serial + (read_only ? ",readonly=1" : "")});
  return r.ok() ? Status::Ok() : r.status();
}

Status TgtDaemon::Freeze() {
  if (pid_ <= 0) return Status::Unavailable("tgtd is not running");
  if (kill(pid_, SIGSTOP) != 0) return Status::Internal(std::string("SIGSTOP: ") + strerror(errno));
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid_, &status, WUNTRACED);
    if (r == pid_ && WIFSTOPPED(status)) return Status::Ok();
    if (r == pid_) {  // it died
      pid_ = -1;
      return Status::Unavailable("tgtd exited while being frozen");
    }
    if (r < 0 && errno != EINTR) {
      const int error = errno;
      kill(pid_, SIGCONT);
      return Status::Internal(std::string("waitpid: ") + strerror(error));
    }
  }
}

void TgtDaemon::Thaw() {
  if (pid_ > 0) kill(pid_, SIGCONT);
}

Status TgtDaemon::DeleteTarget(int tid) {
  const std::string t = std::to_string(tid);
  Result<std::string> shown =
      Admin({"--lld", "iscsi", "--op", "show", "--mode", "target", "--tid", t});
  tids_.erase(tid);
  if (!shown.ok()) return Status::Ok();  // not there
  Result<std::string> r =
      Admin({"--lld", "iscsi", "--op", "delete", "--mode", "target", "--tid", t, "--force"});
  return r.ok() ? Status::Ok() : r.status();
}

bool TgtDaemon::WaitForExit(int milliseconds) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(milliseconds);
  for (;;) {
    const pid_t done = waitpid(pid_, nullptr, WNOHANG);
    if (done == pid_ || (done < 0 && errno == ECHILD)) {
      pid_ = -1;
      return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
}

void TgtDaemon::Stop() {
  if (pid_ <= 0) return;
  for (int tid : std::set<int>(tids_)) {
    static_cast<void>(Admin({"--lld", "iscsi", "--op", "delete", "--mode", "target", "--tid",
                             std::to_string(tid), "--force"}));
  }
  tids_.clear();
  static_cast<void>(Admin({"--op", "delete", "--mode", "system"}));
  if (WaitForExit(kExitTimeoutMs)) return;
  kill(pid_, SIGKILL);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

}  // namespace snapset::mock
