// SPDX-License-Identifier: Apache-2.0
// A writer process started by a test: spawned with its argv, waited for
// until its socket accepts, and killed by pid (SIGKILL, reaped) when the
// test ends, also when it fails.
#ifndef SNAPSET_TESTS_SUPPORT_WRITER_PROCESS_HPP
#define SNAPSET_TESTS_SUPPORT_WRITER_PROCESS_HPP

#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace snapset::test {

class WriterProcess {
 public:
  // Starts `argv` and waits up to 10 s for `socket_path` to accept.
  WriterProcess(std::vector<std::string> argv, std::string socket_path)
      : socket_(std::move(socket_path)) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (::posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ) != 0)
      throw std::runtime_error("cannot start " + argv[0]);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!Accepts()) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error(argv[0] + " exited before serving " + socket_);
      }
      if (std::chrono::steady_clock::now() > deadline) {
        Kill();
        throw std::runtime_error(argv[0] + " did not serve " + socket_ + " within 10 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~WriterProcess() { Kill(); }
  WriterProcess(const WriterProcess&) = delete;
  WriterProcess& operator=(const WriterProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Still running (not exited, not killed)?
  bool Alive() {
    if (pid_ < 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = status;
      return false;
    }
    return true;
  }
  int exit_status() const { return exit_status_; }
  void Kill() {
    if (pid_ < 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  // SIGTERM, then wait up to `within` for it to exit.
  bool Stop(std::chrono::milliseconds within = std::chrono::seconds(5)) {
    if (pid_ < 0) return true;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!Alive()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

 private:
  bool Accepts() const {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_.c_str(), sizeof addr.sun_path - 1);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  }

  std::string socket_;
  pid_t pid_ = -1;
  int exit_status_ = 0;
};

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SUPPORT_WRITER_PROCESS_HPP
