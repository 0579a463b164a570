// SPDX-License-Identifier: Apache-2.0
// A real PostgreSQL server for tests (Debian's postgresql-15): initdb into a
// directory, a postmaster run as the `postgres` user listening only on a
// Unix socket in a temporary directory (no TCP), and stopped by pid (fast
// shutdown, then SIGKILL) when the test ends, also when it fails.
#ifndef SNAPSET_TESTS_SUPPORT_POSTGRES_SERVER_HPP
#define SNAPSET_TESTS_SUPPORT_POSTGRES_SERVER_HPP

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/run_command.hpp"

namespace snapset::test {

class PostgresServer {
 public:
  // The newest /usr/lib/postgresql/N/bin, or "" when PostgreSQL is missing.
  static std::string BinDir() {
    std::string best;
    int best_version = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      const int v = std::atoi(e.path().filename().c_str());
      if (v > best_version && ::access((e.path() / "bin/postgres").c_str(), X_OK) == 0) {
        best_version = v;
        best = (e.path() / "bin").string();
      }
    }
    return best;
  }
  // "" when a server can be run here, else what is missing.
  static std::string MissingPrerequisite() {
    if (::geteuid() != 0) return "root (to run PostgreSQL as the postgres user)";
    if (BinDir().empty()) return "PostgreSQL (Debian package postgresql-15)";
    if (!::getpwnam("postgres")) return "the postgres user (made by the postgresql-15 package)";
    return "";
  }

  // initdb into `data` (created; owned by postgres, mode 0700) unless
  // `init` is false (a restored data directory), then starts the server
  // with its socket in `socket_dir`. Waits until it accepts connections
  // (after recovery, for a restored one), up to `ready_within`.
  // `settings`: extra NAME=VALUE server settings (-c).
  PostgresServer(std::string data, std::string socket_dir, bool init = true,
                 std::vector<std::string> settings = {},
                 std::chrono::seconds ready_within = std::chrono::seconds(120))
      : data_(std::move(data)), socket_dir_(std::move(socket_dir)) {
    const passwd* pw = ::getpwnam("postgres");
    if (!pw) throw std::runtime_error("no postgres user");
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
    bin_ = BinDir();
    for (const auto& d : {data_, socket_dir_}) {
      std::filesystem::create_directories(d);
      Own(d);
    }
    ::chmod(data_.c_str(), 0700);
    if (init) {
      auto r = AsPostgres({bin_ + "/initdb", "-D", data_, "-A", "trust", "-U", "postgres", "-E",
                           "UTF8", "--no-sync"});
      if (r.exit_code != 0) throw std::runtime_error("initdb: " + r.output);
    }
    log_ = socket_dir_ + "/postgres.log";
    // Built before fork: the child of a threaded process only execs.
    std::vector<std::string> args = {bin_ + "/postgres",
                                     "-D",
                                     data_,
                                     "-c",
                                     "listen_addresses=",
                                     "-c",
                                     "unix_socket_directories=" + socket_dir_,
                                     "-p",
                                     "5432"};
    for (const auto& s : settings) {
      args.push_back("-c");
      args.push_back(s);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      DropToPostgres();
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + ready_within;
    while (!Ready()) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("postgres exited at start; its log " + log_ + ":\n" + Log());
      }
      if (std::chrono::steady_clock::now() > deadline) {
        Stop();
        throw std::runtime_error("postgres was not ready in time; its log:\n" + Log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~PostgresServer() { Stop(); }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // A libpq connection string for this server.
  std::string conninfo(const std::string& db = "postgres") const {
    return "host=" + socket_dir_ + " port=5432 user=postgres dbname=" + db;
  }
  const std::string& socket_dir() const { return socket_dir_; }
  const std::string& bin() const { return bin_; }
  pid_t pid() const { return pid_; }

  // psql -Atc: the output; throws on error.
  std::string Sql(const std::string& sql, const std::string& db = "postgres") const {
    auto r = RunCommand({bin_ + "/psql", "-X", "-v", "ON_ERROR_STOP=1", "-Atc", sql, conninfo(db)},
                        std::chrono::seconds(120));
    if (r.exit_code != 0) throw std::runtime_error("psql " + sql + ": " + r.output);
    while (!r.output.empty() && r.output.back() == '\n') r.output.pop_back();
    return r.output;
  }
  CommandResult Tool(std::vector<std::string> argv,
                     std::chrono::seconds timeout = std::chrono::seconds(300)) const {
    argv[0] = bin_ + "/" + argv[0];
    return RunCommand(argv, timeout);
  }
  std::string Log() const {
    auto r = RunCommand({"tail", "-n", "40", log_});
    return r.output;
  }
  // Fast shutdown (SIGINT), then SIGKILL after 30 s.
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGINT);
    for (int i = 0; i < 300; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  void Own(const std::string& path) const { (void)::chown(path.c_str(), uid_, gid_); }
  void OwnTree(const std::string& path) const {
    RunCommand({"chown", "-R", "postgres:postgres", path});
  }

 private:
  bool Ready() const {
    return RunCommand({bin_ + "/pg_isready", "-q", "-h", socket_dir_, "-p", "5432"},
                      std::chrono::seconds(10))
               .exit_code == 0;
  }
  void DropToPostgres() const {
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid_) != 0 || ::setuid(uid_) != 0) ::_exit(126);
  }
  CommandResult AsPostgres(const std::vector<std::string>& argv) const {
    std::vector<std::string> full = {"setpriv", "--reuid=postgres", "--regid=postgres",
                                     "--init-groups", "--"};
    full.insert(full.end(), argv.begin(), argv.end());
    return RunCommand(full, std::chrono::seconds(300));
  }

  std::string data_, socket_dir_, bin_, log_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  pid_t pid_ = -1;
};

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SUPPORT_POSTGRES_SERVER_HPP
