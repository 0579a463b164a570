// SPDX-License-Identifier: Apache-2.0
#include "pg_server_control.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

extern char** environ;

namespace snapset::pg {

namespace {

namespace fs = std::filesystem;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Runs `argv` (no shell) to its end: its exit status (-1 if it could not
// run or died of a signal) and what it printed. pg_ctl bounds its own
// waits (-t), so this needs no timeout of its own.
int Run(const std::vector<std::string>& argv, std::string* output) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    *output = "cannot run " + argv[0];
    return -1;
  }
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) output->append(buf, size_t(n));
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A value inside a double-quoted word of pg_ctl's -o (run by /bin/sh).
std::string ShellQuoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\' || c == '$' || c == '`') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

Status Start(const StoppedServer& s, const std::string& extra_options, int timeout_s) {
  std::string output;
  const std::string log = s.data_dir + "/snapset-restore.log";
  const int rc = Run({s.bin_dir + "/pg_ctl", "start", "-D", s.data_dir, "-w", "-t",
                      std::to_string(timeout_s), "-l", log, "-o", s.options + extra_options},
                     &output);
  if (rc != 0)
    return Status::Internal("pg_ctl start -D " + s.data_dir + " failed (" + Trim(output) +
                            "); its log: " + log);
  return Status::Ok();
}

}  // namespace

Result<StoppedServer> StopServer(const std::string& data_dir, int timeout_s) {
  StoppedServer s;
  s.data_dir = data_dir;
  std::ifstream opts(data_dir + "/postmaster.opts");
  std::string line;
  if (!std::getline(opts, line) || line.empty())
    return Status::NotFound("cannot read " + data_dir +
                            "/postmaster.opts, which says how the server was started");
  const size_t space = line.find(' ');
  const std::string program = line.substr(0, space);
  s.bin_dir = fs::path(program).parent_path().string();
  s.options = space == std::string::npos ? "" : Trim(line.substr(space + 1));
  if (::access((s.bin_dir + "/pg_ctl").c_str(), X_OK) != 0)
    return Status::NotFound("no pg_ctl beside " + program + " (from postmaster.opts)");
  std::string output;
  const int rc = Run({s.bin_dir + "/pg_ctl", "stop", "-D", data_dir, "-m", "fast", "-w", "-t",
                      std::to_string(timeout_s)},
                     &output);
  if (rc != 0)
    return Status::Unavailable("pg_ctl stop -D " + data_dir + " failed: " + Trim(output));
  return s;
}

Status StartServer(const StoppedServer& server, int timeout_s) {
  return Start(server, "", timeout_s);
}

Status StartWithRecovery(const StoppedServer& server,
                         const std::map<std::string, std::string>& blob,
                         const std::string& restore_command, int timeout_s) {
  const auto label = blob.find("backup_label");
  if (label == blob.end() || label->second.empty())
    return Status::NotFound("the set holds no backup_label for this cluster");
  const fs::path data(server.data_dir);
  std::error_code ec;
  fs::remove(data / "postmaster.pid", ec);  // the snapshot's, from the running server
  std::ofstream(data / "backup_label") << label->second;
  const auto map = blob.find("tablespace_map");
  if (map != blob.end() && !map->second.empty())
    std::ofstream(data / "tablespace_map") << map->second;
  std::ofstream(data / "recovery.signal");
  if (!fs::exists(data / "backup_label") || !fs::exists(data / "recovery.signal"))
    return Status::Internal("cannot write backup_label and recovery.signal into " +
                            server.data_dir);
  const std::string recovery = " \"-c\" " + ShellQuoted("restore_command=" + restore_command) +
                               " \"-c\" \"recovery_target=immediate\""
                               " \"-c\" \"recovery_target_action=promote\"";
  return Start(server, recovery, timeout_s);
}

}  // namespace snapset::pg
