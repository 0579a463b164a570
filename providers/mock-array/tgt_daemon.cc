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
constexpr std::chrono::milliseconds kAdminTimeout{10000};

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
  std::vector<std::string> args = {Program("tgtd"),          "-f",      "-C",
                                   std::to_string(control_), "--iscsi", "portal=" + portal};
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
  // tgtadm answers in milliseconds; a tgtd that does not answer must fail
  // the request, not hang the array's lock for good.
  CommandResult result = RunCommand(args, kAdminTimeout);
  if (result.exit_code != 0) {
    // Names the call, never a CHAP secret.
    std::string what;
    for (size_t i = 3; i < args.size(); ++i) {
      what += " " + (i > 3 && args[i - 1] == "--password" ? std::string("<secret>") : args[i]);
    }
    return Status::Unavailable("tgtadm" + what + " failed: " + result.output);
  }
  return result.output;
}

Status TgtDaemon::AddTarget(const Target& target) {
  const std::string t = std::to_string(target.tid);
  Result<std::string> r =
      Admin({"--lld", "iscsi", "--op", "new", "--mode", "target", "--tid", t, "-T", target.iqn});
  if (!r.ok()) return r.status();
  tids_.insert(target.tid);
  Status s = [&]() -> Status {
    // -I ALL: any initiator address; -Q: only this initiator name.
    SNAPSET_RETURN_IF_ERROR(Admin({"--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", t,
                                   target.initiator_iqn.empty() ? "-I" : "-Q",
                                   target.initiator_iqn.empty() ? "ALL" : target.initiator_iqn})
                                .status());
    if (!target.chap_user.empty()) {
      // Accounts are tgtd-wide: one per user name, shared by every target
      // that names it (the array refuses one name with two passwords).
      bool exists = false;
      for (const auto& [tid, user] : chap_user_of_) exists = exists || user == target.chap_user;
      if (!exists) {
        SNAPSET_RETURN_IF_ERROR(
            Admin({"--lld", "iscsi", "--op", "new", "--mode", "account", "--user", target.chap_user,
                   "--password", target.chap_password})
                .status());
      }
      chap_user_of_[target.tid] = target.chap_user;
      SNAPSET_RETURN_IF_ERROR(Admin({"--lld", "iscsi", "--op", "bind", "--mode", "account", "--tid",
                                     t, "--user", target.chap_user})
                                  .status());
    }
    for (const Lun& lun : target.luns) {
      const std::string l = std::to_string(lun.lun);
      SNAPSET_RETURN_IF_ERROR(
          Admin({"--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", t, "--lun", l,
                 "-b", lun.file, "--blocksize", std::to_string(lun.block_size)})
              .status());
      SNAPSET_RETURN_IF_ERROR(Admin({"--lld", "iscsi", "--op", "update", "--mode", "logicalunit",
                                     "--tid", t, "--lun", l, "--params",
                                     "scsi_id=" + lun.scsi_id + ",scsi_sn=" + lun.serial +
                                         (lun.read_only ? ",readonly=1" : "")})
                                  .status());
    }
    // Like every target of an array whose controller is away.
    if (offline_) SNAPSET_RETURN_IF_ERROR(SetTargetState(target.tid, true));
    return Status::Ok();
  }();
  if (!s.ok()) static_cast<void>(DeleteTarget(target.tid));
  return s;
}

Status TgtDaemon::SetOffline(bool offline) {
  offline_ = offline;
  for (int tid : tids_) SNAPSET_RETURN_IF_ERROR(SetTargetState(tid, offline));
  return Status::Ok();
}

Status TgtDaemon::SetTargetState(int tid, bool offline) {
  return Admin({"--lld", "iscsi", "--op", "update", "--mode", "target", "--tid",
                std::to_string(tid), "--name", "state", "--value", offline ? "offline" : "ready"})
      .status();
}

bool TgtDaemon::Running() {
  if (pid_ <= 0) return false;
  const pid_t r = waitpid(pid_, nullptr, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    pid_ = -1;
    return false;
  }
  return true;
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
  Status s = Status::Ok();
  if (shown.ok()) {  // else not there
    s = Admin({"--lld", "iscsi", "--op", "delete", "--mode", "target", "--tid", t, "--force"})
            .status();
  }
  // The CHAP account goes with the last target that used it.
  auto account = chap_user_of_.find(tid);
  if (account != chap_user_of_.end()) {
    const std::string user = account->second;
    chap_user_of_.erase(account);
    bool used = false;
    for (const auto& [other, name] : chap_user_of_) used = used || name == user;
    if (!used) {
      static_cast<void>(
          Admin({"--lld", "iscsi", "--op", "delete", "--mode", "account", "--user", user}));
    }
  }
  return s;
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
