#include "tests/support/tgtd.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

extern char** environ;

namespace snapset::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A port found free can be taken before tgtd binds it; so many tries.
constexpr int kStartAttempts = 5;
constexpr milliseconds kStartTimeout{10000};
constexpr milliseconds kAdminTimeout{10000};
constexpr milliseconds kExitTimeout{3000};
constexpr milliseconds kPollInterval{20};
// tgt's limit on scsi_sn (SCSI_SN_LEN): the serial fills 36 bytes of VPD 0x80.
constexpr size_t kMaxSerialLength = 36;

std::string FindProgram(const std::string& name) {
  // sbin directories are often missing from PATH, even for root.
  std::string dirs = std::getenv("PATH") ? std::getenv("PATH") : "";
  dirs += ":/usr/sbin:/sbin:/usr/local/sbin";
  std::stringstream stream(dirs);
  std::string dir;
  while (std::getline(stream, dir, ':')) {
    if (dir.empty()) continue;
    const std::string path = dir + "/" + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

std::string Join(const std::vector<std::string>& words) {
  std::string joined;
  for (const std::string& word : words) {
    if (!joined.empty()) joined += ' ';
    joined += word;
  }
  return joined;
}

// argv/envp views of strings that outlive the exec.
std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

Result<int> FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Internal(std::string("socket: ") + strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool ok =
      bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int error = errno;
  close(fd);
  if (!ok) return Status::Internal(std::string("bind: ") + strerror(error));
  return static_cast<int>(ntohs(address.sin_port));
}

Result<std::string> MakeTempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string path = std::string(base && *base ? base : "/tmp") +
                     "/snapset-tgtd-XXXXXX";
  if (mkdtemp(path.data()) == nullptr) {
    return Status::Internal("mkdtemp " + path + ": " + strerror(errno));
  }
  return path;
}

bool IsHex32(const std::string& s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
           return std::isxdigit(c);
         });
}

// tgtadm splits --params at ',' and '=', and tgt pads with spaces.
bool IsPlainWord(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
  });
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace

Result<Tgtd::Programs> Tgtd::FindPrograms() {
  Programs programs{FindProgram("tgtd"), FindProgram("tgtadm")};
  std::vector<std::string> missing;
  if (programs.tgtd.empty()) missing.push_back("tgtd");
  if (programs.tgtadm.empty()) missing.push_back("tgtadm");
  if (!missing.empty()) {
    return Status::Unavailable(
        Join(missing) +
        " not installed (looked in PATH, /usr/sbin, /sbin, /usr/local/sbin); "
        "install the tgt package");
  }
  return programs;
}

Status Tgtd::CheckPrerequisites() {
  std::vector<std::string> problems;
  if (geteuid() != 0) {
    problems.push_back("tgtd needs root (running as uid " +
                       std::to_string(geteuid()) + ")");
  }
  Result<Programs> programs = FindPrograms();
  if (!programs.ok()) problems.push_back(programs.status().message());
  if (problems.empty()) return Status::Ok();
  std::string message;
  for (const std::string& problem : problems) {
    if (!message.empty()) message += "; ";
    message += problem;
  }
  return Status::Unavailable(message);
}

Result<std::unique_ptr<Tgtd>> Tgtd::Start() {
  SNAPSET_RETURN_IF_ERROR(CheckPrerequisites());
  Result<Programs> programs = FindPrograms();
  if (!programs.ok()) return programs.status();
  Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    Result<int> port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    Result<std::string> dir = MakeTempDir();
    if (!dir.ok()) return dir.status();
    std::unique_ptr<Tgtd> tgtd(new Tgtd(*programs, *dir, *port));
    bool port_taken = false;
    last = tgtd->Launch(&port_taken);
    if (last.ok()) return tgtd;
    if (!port_taken) return last;
  }
  return last.WithContext("tgtd found no free port in " +
                          std::to_string(kStartAttempts) + " tries");
}

Tgtd::Tgtd(Programs programs, std::string dir, int port)
    : programs_(std::move(programs)),
      dir_(std::move(dir)),
      port_(port),
      // tgtd keeps -C in a short. It only names the IPC socket and its lock
      // file, both in dir_, so any value works; one from the port merely
      // tells live instances apart in ps.
      control_(port % 32768) {}

Tgtd::~Tgtd() {
  Stop();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::vector<std::string> Tgtd::Environment() const {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "TGT_IPC_SOCKET=", 15) != 0) env.emplace_back(*e);
  }
  // tgtd listens on, and tgtadm talks to, this path plus ".<control>".
  env.push_back("TGT_IPC_SOCKET=" + dir_ + "/ipc");
  return env;
}

std::string Tgtd::LogTail() const {
  std::ifstream log(dir_ + "/tgtd.log");
  std::string text((std::istreambuf_iterator<char>(log)),
                   std::istreambuf_iterator<char>());
  if (text.size() > 1500) text = "..." + text.substr(text.size() - 1500);
  std::replace(text.begin(), text.end(), '\n', '|');
  return text.empty() ? "(tgtd printed nothing)" : "tgtd said: " + text;
}

Status Tgtd::Launch(bool* port_taken) {
  const std::string log_path = dir_ + "/tgtd.log";
  const int log_fd =
      open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) {
    const int error = errno;
    if (log_fd >= 0) close(log_fd);
    if (null_fd >= 0) close(null_fd);
    return Status::Internal("opening " + log_path + ": " + strerror(error));
  }
  const std::string portal = "127.0.0.1:" + std::to_string(port_);
  std::vector<std::string> args = {programs_.tgtd, "-f",    "-C",
                                   std::to_string(control_), "--iscsi",
                                   "portal=" + portal};
  std::vector<std::string> env = Environment();
  std::vector<char*> argv = CStrings(args);
  std::vector<char*> envp = CStrings(env);

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec. tgtd ignores SIGTERM, so make
    // it die with the test process even when that crashes; the signal comes
    // when the forking thread ends, which for Boost.Test is the main one.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  const int fork_error = errno;
  close(log_fd);
  close(null_fd);
  if (pid < 0) return Status::Internal(std::string("fork: ") + strerror(fork_error));
  pid_ = pid;

  // tgtd answers tgtadm only once its set-up, portals included, is done. If
  // it cannot bind the portal it does not exit: it falls back to
  // 0.0.0.0:3260 and [::]:3260, so the portal list is what tells.
  const std::string socket_path = dir_ + "/ipc." + std::to_string(control_);
  const auto deadline = Clock::now() + kStartTimeout;
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return Status::Unavailable("tgtd stopped at start (" +
                                 DescribeExit(status) + "); " + LogTail());
    }
    if (access(socket_path.c_str(), F_OK) == 0) {
      Result<std::string> portals =
          Admin({"--lld", "iscsi", "--op", "show", "--mode", "portal"});
      if (portals.ok()) {
        if (portals->find("Portal: " + portal + ",") != std::string::npos) {
          return Status::Ok();
        }
        *port_taken = true;
        return Status::Unavailable("tgtd could not bind " + portal + "; " +
                                   LogTail());
      }
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return Status::Unavailable("tgtd did not answer within " +
                             std::to_string(kStartTimeout.count()) + " ms; " +
                             LogTail());
}

Result<std::string> Tgtd::Admin(const std::vector<std::string>& args) const {
  std::vector<std::string> command = {programs_.tgtadm, "-C",
                                      std::to_string(control_)};
  command.insert(command.end(), args.begin(), args.end());
  std::vector<std::string> env = Environment();
  std::vector<char*> argv = CStrings(command);
  std::vector<char*> envp = CStrings(env);
  const std::string what = "tgtadm " + Join(args);

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    return Status::Internal(what + ": pipe: " + strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDERR_FILENO);
  pid_t pid = -1;
  const int spawn_error =
      posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (spawn_error != 0) {
    close(out[0]);
    return Status::Internal(what + ": spawn: " + strerror(spawn_error));
  }

  // tgtadm blocks on tgtd's socket; a wedged daemon must not hang the test.
  std::string output;
  bool timed_out = false;
  const auto deadline = Clock::now() + kAdminTimeout;
  for (;;) {
    const auto left =
        std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
    pollfd pfd{out[0], POLLIN, 0};
    const int ready = left > 0 ? poll(&pfd, 1, static_cast<int>(left)) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      timed_out = ready == 0;
      break;
    }
    char buffer[4096];
    const ssize_t n = read(out[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buffer, static_cast<size_t>(n));
  }
  close(out[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return Status::Unavailable(what + ": no answer within " +
                               std::to_string(kAdminTimeout.count()) + " ms");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::Unavailable(what + " failed (" + DescribeExit(status) +
                               "): " + output);
  }
  return output;
}

Status Tgtd::AddLun(std::string iqn, int lun, std::string backing_file,
                    std::string scsi_id_hex32, std::string serial) {
  if (iqn.empty() || !IsPlainWord(iqn)) {
    return Status::InvalidArgument("bad target IQN '" + iqn + "'");
  }
  if (lun < 1) {
    return Status::InvalidArgument("LUN must be 1 or more (tgt keeps LUN 0)");
  }
  if (!IsHex32(scsi_id_hex32)) {
    return Status::InvalidArgument("scsi_id must be 32 hex digits, not '" +
                                   scsi_id_hex32 + "'");
  }
  if (!IsPlainWord(serial) || serial.size() > kMaxSerialLength) {
    return Status::InvalidArgument(
        "serial must be 1 to 36 of [A-Za-z0-9._:-], not '" + serial + "'");
  }
  auto iscsi = [this](std::vector<std::string> args) {
    args.insert(args.begin(), {"--lld", "iscsi"});
    Result<std::string> result = Admin(args);
    return result.ok() ? Status::Ok() : result.status();
  };
  auto target = tids_.find(iqn);
  if (target == tids_.end()) {
    const int new_tid = static_cast<int>(tids_.size()) + 1;
    const std::string tid = std::to_string(new_tid);
    SNAPSET_RETURN_IF_ERROR(iscsi(
        {"--op", "new", "--mode", "target", "--tid", tid, "-T", iqn}));
    target = tids_.emplace(iqn, new_tid).first;
    SNAPSET_RETURN_IF_ERROR(iscsi(
        {"--op", "bind", "--mode", "target", "--tid", tid, "-I", "ALL"}));
  }
  const std::string tid = std::to_string(target->second);
  const std::string lun_text = std::to_string(lun);
  SNAPSET_RETURN_IF_ERROR(iscsi({"--op", "new", "--mode", "logicalunit",
                                 "--tid", tid, "--lun", lun_text, "-b",
                                 backing_file}));
  return iscsi({"--op", "update", "--mode", "logicalunit", "--tid", tid,
                "--lun", lun_text, "--params",
                "scsi_id=" + scsi_id_hex32 + ",scsi_sn=" + serial});
}

std::string Tgtd::url(std::string_view iqn, int lun) const {
  return "iscsi://127.0.0.1:" + std::to_string(port_) + "/" +
         std::string(iqn) + "/" + std::to_string(lun);
}

bool Tgtd::WaitForExit(int milliseconds_to_wait) {
  const auto deadline = Clock::now() + milliseconds(milliseconds_to_wait);
  for (;;) {
    int status = 0;
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_ || (done < 0 && errno == ECHILD)) {
      pid_ = -1;
      return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
}

void Tgtd::Stop() {
  if (pid_ <= 0) return;
  // tgtd ignores SIGTERM; it leaves when its system is deleted, which it
  // refuses while targets exist. Errors are moot: SIGKILL follows.
  for (const auto& [iqn, tid] : tids_) {
    static_cast<void>(Admin({"--lld", "iscsi", "--op", "delete", "--mode",
                             "target", "--tid", std::to_string(tid),
                             "--force"}));
  }
  static_cast<void>(Admin({"--op", "delete", "--mode", "system"}));
  if (WaitForExit(static_cast<int>(kExitTimeout.count()))) return;
  kill(pid_, SIGKILL);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

Status Tgtd::RestrictTo(const std::string& iqn, const std::string& initiator) {
  auto target = tids_.find(iqn);
  if (target == tids_.end()) return Status::NotFound("no target " + iqn + " (AddLun makes it)");
  const std::string tid = std::to_string(target->second);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--lld", "iscsi", "--op", "unbind", "--mode", "target", "--tid",
                                 tid, "-I", "ALL"},
        std::vector<std::string>{"--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid",
                                 tid, "--initiator-name", initiator}}) {
    Result<std::string> r = Admin(args);
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

}  // namespace snapset::test
