// SPDX-License-Identifier: Apache-2.0
// What a test of a PostgreSQL set needs beside the server itself
// (postgres_server.hpp): a client whose acknowledged rows a restore must
// hold, and the steps a backup application takes to start a server on a
// restored data directory with the backup_label the set recorded. Shared by
// the writer's test on a software-cow volume and the guest's test on array
// LUNs. Needs libpq and Boost.Test.
#ifndef SNAPSET_TESTS_SUPPORT_PG_SET_HPP
#define SNAPSET_TESTS_SUPPORT_PG_SET_HPP

#include <libpq-fe.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/postgres_server.hpp"

extern char** environ;

namespace snapset::test {

// CLOCK_MONOTONIC in ns: the clock of a set's timeline.
inline int64_t MonotonicNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The server settings that archive its WAL into `archive` (the writer
// requires archiving: recovery from a set needs the WAL written until
// pg_backup_stop, after the cut), plus `more`.
inline std::vector<std::string> ArchivingTo(const std::string& archive,
                                            std::vector<std::string> more = {}) {
  more.insert(more.begin(), {"archive_mode=on", "archive_command=test ! -f " + archive +
                                                    "/%f && cp %p " + archive + "/%f"});
  return more;
}

// A client that inserts one row per transaction into `acks (seq)` and
// records when each commit was acknowledged.
struct Acker {
  std::string conninfo;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> acked;  // seq, monotonic ns
  std::string error;
  std::thread thread;
  void Start() {
    thread = std::thread([this] {
      PGconn* c = PQconnectdb(conninfo.c_str());
      for (int64_t seq = 1; !stop && PQstatus(c) == CONNECTION_OK; ++seq) {
        const std::string sql = "INSERT INTO acks VALUES (" + std::to_string(seq) + ")";
        PGresult* r = PQexec(c, sql.c_str());
        const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
          error = PQerrorMessage(c);
          break;
        }
        std::lock_guard lock(mu);
        acked.emplace_back(seq, MonotonicNs());
      }
      if (PQstatus(c) != CONNECTION_OK && error.empty()) error = PQerrorMessage(c);
      PQfinish(c);
    });
  }
  void Stop() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
  // The highest row acknowledged before `t_ns` (0: none).
  int64_t AckedBefore(int64_t t_ns) {
    std::lock_guard lock(mu);
    int64_t last = 0;
    for (const auto& [seq, t] : acked)
      if (t < t_ns) last = std::max(last, seq);
    return last;
  }
  ~Acker() { Stop(); }
};

// pgbench's TPC-B-like load (-c 2 -j 2) on `server`, initialised before,
// until the scope ends, when it is killed by pid.
class Pgbench {
 public:
  explicit Pgbench(const PostgresServer& server) {
    std::vector<std::string> argv = {
        server.bin() + "/pgbench", "-c", "2", "-j", "2", "-T", "600", "-n", server.conninfo()};
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    BOOST_TEST_REQUIRE(::posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ) == 0);
  }
  ~Pgbench() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Pgbench(const Pgbench&) = delete;
  Pgbench& operator=(const Pgbench&) = delete;

 private:
  pid_t pid_ = -1;
};

// Readies a restored data directory for archive recovery from a set, as a
// backup application does: the set's backup_label and tablespace_map (each
// tablespace's recorded location replaced by `tablespace_moves`' second
// where it is the first: a restore elsewhere), recovery.signal, no stale
// postmaster.pid, owned by postgres. `blob`: the writer's backup_blob in
// `snapset show SET --writers`.
inline void PrepareRecovery(
    const std::string& data, const rapidjson::Value& blob,
    const std::vector<std::pair<std::string, std::string>>& tablespace_moves = {}) {
  namespace fs = std::filesystem;
  BOOST_TEST_REQUIRE(blob.HasMember("backup_label"));
  std::ofstream(fs::path(data) / "backup_label") << blob["backup_label"].GetString();
  std::string map = blob.HasMember("tablespace_map") ? blob["tablespace_map"].GetString() : "";
  for (const auto& [from, to] : tablespace_moves) {
    const size_t at = map.find(" " + from + "\n");
    BOOST_TEST_REQUIRE(at != std::string::npos, "no tablespace at " << from << " in: " << map);
    map.replace(at + 1, from.size(), to);
  }
  if (!map.empty()) std::ofstream(fs::path(data) / "tablespace_map") << map;
  std::ofstream(fs::path(data) / "recovery.signal");
  fs::remove(fs::path(data) / "postmaster.pid");
  RunCommand({"chown", "-R", "postgres:postgres", data});
}

// A server this process did not start (snapset-pg-writer --restart did):
// stopped by the pid in <data>/postmaster.pid at scope exit, fast shutdown
// then SIGKILL after 30 s.
struct StopServerOf {
  std::string data;
  ~StopServerOf() {
    std::ifstream pidfile(data + "/postmaster.pid");
    pid_t pid = 0;
    if (!(pidfile >> pid) || pid <= 0) return;
    ::kill(pid, SIGINT);
    for (int i = 0; i < 300 && ::kill(pid, 0) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(pid, SIGKILL);
  }
};

// Waits until archive recovery has ended by promoting, up to a minute.
inline void WaitPromoted(const PostgresServer& server) {
  std::string in_recovery = "t";
  for (int i = 0; i < 600 && in_recovery != "f"; ++i) {
    in_recovery = server.Sql("SELECT pg_is_in_recovery()");
    if (in_recovery != "f") std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  BOOST_TEST_REQUIRE(in_recovery == "f", server.Log());
}

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SUPPORT_PG_SET_HPP
