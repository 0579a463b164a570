// SPDX-License-Identifier: Apache-2.0
// snapset-pg-writer: makes a PostgreSQL cluster's snapshots restorable, with
// PostgreSQL's own backup API (non-exclusive backup, PostgreSQL 15+).
//
//   prepare-snapshot  pg_backup_start(label, fast => true) on the writer's own
//                     session: a checkpoint, and the backup's start in WAL.
//                     Done before freeze, so the writer window is not spent on
//                     a checkpoint
//   freeze            checks that the session and its backup are still alive
//   thaw              pg_backup_stop(wait_for_archive => true) on the same
//                     session, bounded by the writer window; its backup_label
//                     and tablespace_map become the set's backup documents,
//                     which a restore writes into the data directory before
//                     starting PostgreSQL with recovery
//   abort             pg_backup_stop, then the session ends (PostgreSQL ends a
//                     non-exclusive backup with its session anyway)
//
// The session stays open from prepare-snapshot to thaw: PostgreSQL 15
// removed exclusive backups, so start and stop must run in one session.
//
// WAL archiving is required (archive_mode on, an archive_command): recovery
// from such a backup needs every WAL record up to pg_backup_stop's, which is
// written after the cut and so is in no snapshot; the archive keeps it
// (PostgreSQL's documentation, "Making a Base Backup Using the Low Level
// API"). The writer refuses at prepare-snapshot when archiving is off,
// before anything is frozen, rather than give a backup that cannot be
// restored.
// Nothing holds PostgreSQL's writes: the snapshot is crash-consistent per
// volume at the cut, and recovery from the backup's start makes it
// consistent; the writer's part is the backup label that says where to
// start. A session that broke during the set makes the set fail
// (inconsistent-snapshot): its label would be lost.
//
// Restore (a revert to a set): pre-restore refuses while the cluster runs,
// unless --restart: then it stops the cluster, and post-restore starts it
// again with the set's backup_label and archive recovery to the set's
// instant (pg_server_control.hpp) -- or, when the revert changed nothing,
// as it was.
//
//   snapset-pg-writer --dbname CONNINFO [--name NAME] [--run-dir DIR]
//                     [--allow-uid UID]... [--restart --restore-command CMD]
#include <snapset/writer.hpp>

#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pg_server_control.hpp"

namespace {

using namespace snapset::writer;
namespace fs = std::filesystem;

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultCloser {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, ConnCloser>;
using PgResult = std::unique_ptr<PGresult, ResultCloser>;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The seconds left until `deadline`, at least 5: pg_ctl's -t.
int SecondsLeft(std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now());
  return std::max<int>(5, int(left.count()) - 2);
}

class PgWriter : public Writer {
 public:
  // `restore_command` non-empty: --restart, with that archive recovery.
  PgWriter(std::string conninfo, std::string name, std::string restore_command)
      : conninfo_(std::move(conninfo)),
        name_(std::move(name)),
        restore_command_(std::move(restore_command)) {}

  Metadata Identify() override {
    Metadata m;
    m.writer_id = "4c2f8e1a-0d6b-4a7e-9f35-b1e2c3d4a5f6";
    m.name = "postgresql";
    m.restore_method = "stop-restore-start";
    // WAL archiving gives log backups; full backups are the snapshots.
    m.backup_types = {"full", "log"};
    Conn c = Connect();
    if (!c) throw std::runtime_error("cannot connect to PostgreSQL (" + conninfo_ + "): " + error_);
    const std::string data = One(c.get(), "SELECT current_setting('data_directory')");
    if (data.empty()) throw std::runtime_error("cannot read data_directory: " + error_);
    m.instance = data;
    Component cluster;
    cluster.logical_path = name_;
    cluster.caption = "PostgreSQL cluster " + data;
    cluster.selectable = true;
    cluster.database_files.push_back({data, "*", true});
    // pg_wal may be a link to another filesystem: name where it really is.
    std::error_code ec;
    const fs::path wal = fs::canonical(fs::path(data) / "pg_wal", ec);
    cluster.log_files.push_back({ec ? data + "/pg_wal" : wal.string(), "*", true});
    PgResult spc(PQexec(c.get(),
                        "SELECT pg_tablespace_location(oid) FROM pg_tablespace "
                        "WHERE pg_tablespace_location(oid) <> ''"));
    if (PQresultStatus(spc.get()) == PGRES_TUPLES_OK)
      for (int i = 0; i < PQntuples(spc.get()); ++i)
        cluster.database_files.push_back({PQgetvalue(spc.get(), i, 0), "*", true});
    // What PostgreSQL's documentation says a base backup leaves out.
    for (const char* f : {"postmaster.pid", "postmaster.opts"})
      cluster.exclusions.push_back({data, f, false});
    for (const char* d : {"pg_stat_tmp", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial",
                          "pg_snapshots", "pg_subtrans"})
      cluster.exclusions.push_back({data + "/" + d, "*", true});
    m.components.push_back(std::move(cluster));
    return m;
  }

  Outcome OnPrepareSnapshot(const EventContext& e) override {
    session_ = Connect();
    if (!session_)
      return Outcome::Fail(Failure::kRetryable, "cannot connect to PostgreSQL: " + error_);
    // Bounded: a checkpoint on a busy cluster must not outlast the event.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        e.deadline - std::chrono::steady_clock::now());
    const std::string archive = One(session_.get(), "SELECT current_setting('archive_mode')");
    if (archive == "off" || archive.empty()) {
      session_.reset();
      return Outcome::Fail(
          Failure::kNonRetryable,
          "WAL archiving is off (archive_mode = " + (archive.empty() ? "?" : archive) +
              "): a snapshot backup restores only with the WAL written until "
              "pg_backup_stop, which only the archive keeps; set archive_mode = "
              "on and an archive_command, and restart PostgreSQL");
    }
    Exec("SET statement_timeout = " + std::to_string(std::max<int64_t>(1000, left.count() - 500)));
    const std::string label = "snapset set " + e.set_id;
    const char* params[] = {label.c_str()};
    PgResult r(PQexecParams(session_.get(), "SELECT pg_backup_start($1, true)", 1, nullptr, params,
                            nullptr, nullptr, 0));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      const std::string why = PQerrorMessage(session_.get());
      session_.reset();
      return Outcome::Fail(Failure::kRetryable, "pg_backup_start failed: " + Trim(why));
    }
    Exec("SET statement_timeout = 0");
    in_backup_ = true;
    return {};
  }

  Outcome OnFreeze(const EventContext&) override {
    // The snapshot is only restorable with this session's label: make sure
    // it is still there before the cut.
    if (!Alive())
      return Outcome::Fail(Failure::kRetryable,
                           "the backup session to PostgreSQL broke before the freeze: " + error_);
    return {};
  }

  Outcome OnThaw(const EventContext& e) override {
    if (!Alive())
      return Outcome::Fail(Failure::kInconsistentSnapshot,
                           "the backup session to PostgreSQL broke during the set, so its "
                           "backup_label is lost: " +
                               error_);
    // Waiting for the archive is bounded by what is left of the window.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        e.deadline - std::chrono::steady_clock::now());
    Exec("SET statement_timeout = " + std::to_string(std::max<int64_t>(1000, left.count() - 500)));
    PgResult r(PQexec(session_.get(),
                      "SELECT lsn, labelfile, spcmapfile, pg_walfile_name(lsn) "
                      "FROM pg_backup_stop(true)"));
    in_backup_ = false;
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
      const std::string why = PQerrorMessage(session_.get());
      session_.reset();
      return Outcome::Fail(Failure::kInconsistentSnapshot, "pg_backup_stop failed: " + Trim(why));
    }
    Outcome o;
    o.backup_blob["backup_label"] = PQgetvalue(r.get(), 0, 1);
    o.backup_blob["tablespace_map"] = PQgetvalue(r.get(), 0, 2);
    o.backup_blob["stop_lsn"] = PQgetvalue(r.get(), 0, 0);
    // The last WAL file a restore needs from the archive.
    o.backup_blob["stop_wal_file"] = PQgetvalue(r.get(), 0, 3);
    session_.reset();
    return o;
  }

  // A revert replaces the cluster's files: PostgreSQL must not be running
  // on them. Without --restart, stopping it and starting it afterwards with
  // the set's backup_label are the administrator's steps
  // (docs/writer-protocol.md, "Restore").
  Outcome OnPreRestore(const EventContext& e) override {
    stopped_.reset();
    Conn c = Connect();
    if (!c) return {};
    if (restore_command_.empty())
      return Outcome::Fail(Failure::kNonRetryable,
                           "PostgreSQL is running (" + conninfo_ +
                               "); stop it (pg_ctl stop -m fast -D DATA) and unmount its "
                               "filesystem before reverting: a revert replaces its files (or "
                               "run snapset-pg-writer with --restart, and revert with "
                               "--remount)");
    const std::string data = One(c.get(), "SELECT current_setting('data_directory')");
    c.reset();
    if (data.empty())
      return Outcome::Fail(Failure::kRetryable, "cannot read data_directory: " + error_);
    auto stopped = snapset::pg::StopServer(data, SecondsLeft(e.deadline));
    if (!stopped.ok()) return Outcome::Fail(Failure::kRetryable, stopped.status().message());
    stopped_ = std::move(*stopped);
    return {};
  }

  // Only a server this writer stopped is started again: with recovery from
  // the set's label when the volumes now hold the set, as it was when the
  // revert changed nothing, and not at all on a half-reverted cluster.
  Outcome OnPostRestore(const EventContext& e) override {
    if (!stopped_) return {};
    const snapset::pg::StoppedServer server = *stopped_;
    stopped_.reset();
    const int timeout_s = SecondsLeft(e.deadline);
    snapset::Status s;
    if (e.restore_status == "not-reverted") {
      s = snapset::pg::StartServer(server, timeout_s);
    } else if (e.restore_status == "reverted") {
      s = snapset::pg::StartWithRecovery(server, e.backup_blob, restore_command_, timeout_s);
    } else {
      return Outcome::Fail(Failure::kNonRetryable,
                           "the revert of set " + e.set_id + " was " +
                               (e.restore_status.empty() ? "not reported" : e.restore_status) +
                               ", so PostgreSQL (" + server.data_dir +
                               ") was left stopped: revert again, then start it");
    }
    if (!s.ok()) return Outcome::Fail(Failure::kNonRetryable, s.message());
    // Answered once the cluster is back, not when it starts to recover:
    // recovery can still fail (a full disk, a WAL file missing from the
    // archive), and the coordinator reports what the writer says.
    const std::string wanted = e.restore_status == "reverted" ? "f" : "";
    while (true) {
      if (Conn c = Connect()) {
        const std::string in_recovery = One(c.get(), "SELECT pg_is_in_recovery()");
        if (wanted.empty() || in_recovery == wanted) return {};
      }
      if (std::chrono::steady_clock::now() > e.deadline)
        return Outcome::Fail(Failure::kNonRetryable,
                             "PostgreSQL (" + server.data_dir + ") did not come back" +
                                 (wanted.empty() ? "" : " from recovery") + " in time (" + error_ +
                                 "); its log: " + server.data_dir + "/snapset-restore.log");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  void OnAbort(const EventContext&) override {
    if (session_ && in_backup_) Exec("SELECT pg_backup_stop(false)");
    in_backup_ = false;
    session_.reset();
  }

 private:
  Conn Connect() {
    Conn c(PQconnectdb(conninfo_.c_str()));
    if (!c || PQstatus(c.get()) != CONNECTION_OK) {
      error_ = c ? Trim(PQerrorMessage(c.get())) : "out of memory";
      return nullptr;
    }
    return c;
  }

  bool Alive() {
    if (!session_) {
      error_ = "no session";
      return false;
    }
    PgResult r(PQexec(session_.get(), "SELECT 1"));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      error_ = Trim(PQerrorMessage(session_.get()));
      return false;
    }
    return true;
  }

  void Exec(const std::string& sql) { PgResult r(PQexec(session_.get(), sql.c_str())); }

  std::string One(PGconn* c, const char* sql) {
    PgResult r(PQexec(c, sql));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) < 1) {
      error_ = Trim(PQerrorMessage(c));
      return "";
    }
    return PQgetvalue(r.get(), 0, 0);
  }

  std::string conninfo_, name_, restore_command_, error_;
  std::optional<snapset::pg::StoppedServer> stopped_;  // by pre-restore, for post-restore
  Conn session_;
  bool in_backup_ = false;
};

int Usage(const std::string& why) {
  std::cerr << "snapset-pg-writer: " << why
            << "\nusage: snapset-pg-writer --dbname CONNINFO [--name NAME] [--run-dir DIR] "
               "[--allow-uid UID]... [--restart --restore-command CMD]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string conninfo, name = "postgresql", run_dir, restore_command;
  bool restart = false;
  std::vector<uid_t> allowed;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "-h" || k == "--help") {
      Usage("a snapset writer for one PostgreSQL cluster");
      return 0;
    }
    if (k == "--restart") {
      restart = true;
      continue;
    }
    if (i + 1 >= argc) return Usage("option " + k + " needs a value");
    const std::string v = argv[++i];
    if (k == "--dbname")
      conninfo = v;
    else if (k == "--name")
      name = v;
    else if (k == "--run-dir")
      run_dir = v;
    else if (k == "--restore-command")
      restore_command = v;
    else if (k == "--allow-uid")
      allowed.push_back(static_cast<uid_t>(std::strtoul(v.c_str(), nullptr, 10)));
    else
      return Usage("unknown option " + k);
  }
  if (conninfo.empty())
    return Usage("--dbname CONNINFO is required (e.g. \"host=/run/postgresql dbname=postgres\")");
  if (restart != !restore_command.empty())
    return Usage(
        "--restart and --restore-command go together: after a revert the cluster "
        "recovers from the WAL archive (e.g. --restore-command 'cp /archive/%f %p')");
  // Fail at start, not at the first set, when the cluster cannot be reached.
  Conn probe(PQconnectdb(conninfo.c_str()));
  if (!probe || PQstatus(probe.get()) != CONNECTION_OK) {
    std::cerr << "snapset-pg-writer: cannot connect to PostgreSQL (" << conninfo
              << "): " << (probe ? Trim(PQerrorMessage(probe.get())) : "out of memory") << "\n";
    return 1;
  }
  probe.reset();
  PgWriter w(conninfo, name, restore_command);
  ServeOptions o;
  o.name = name;
  if (!run_dir.empty()) o.run_dir = run_dir;
  o.allowed_uids = allowed;
  snapset::Status s = Serve(w, o);
  if (!s.ok()) {
    std::cerr << "snapset-pg-writer: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}
