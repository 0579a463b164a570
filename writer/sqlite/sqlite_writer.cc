// SPDX-License-Identifier: Apache-2.0
// snapset-sqlite-writer: makes a SQLite database's snapshots consistent.
//
//   prepare-snapshot  a WAL checkpoint (TRUNCATE, bounded by the event's
//                     deadline), so the frozen database is mostly its main
//                     file and freeze is short
//   freeze            BEGIN IMMEDIATE on the writer's own connection: the
//                     write lock is held, so no other connection commits
//                     until thaw; readers go on
//   thaw              ROLLBACK (nothing was written). If the transaction is
//                     no longer open, the hold broke: inconsistent-snapshot
//   abort             ROLLBACK, whatever the state
//
// Every transaction committed before freeze is in the database's files when
// the filesystem below is flushed and frozen; none commits during the hold.
//
//   snapset-sqlite-writer --db PATH [--name NAME] [--run-dir DIR]
//                         [--allow-uid UID]...
#include <snapset/writer.hpp>

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace snapset::writer;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};

int MillisLeft(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count() - 100, 1, 1 << 30));
}

class SqliteWriter : public Writer {
 public:
  SqliteWriter(std::string path, std::string name)
      : path_(std::move(path)), name_(std::move(name)) {}

  Metadata Identify() override {
    const fs::path p(path_);
    Metadata m;
    m.writer_id = "9d3c4a1e-5b7f-4e2a-8c61-2f0d9e8b7a54";
    m.name = "sqlite";
    m.instance = path_;
    m.restore_method = "restore-if-can-replace";
    m.backup_types = {"full"};
    Component c;
    c.logical_path = name_;
    c.caption = "SQLite database " + path_;
    const std::string dir = p.parent_path().string(), file = p.filename().string();
    c.database_files.push_back({dir, file, false});
    c.log_files.push_back({dir, file + "-wal", false});
    c.log_files.push_back({dir, file + "-journal", false});
    // Shared memory of WAL readers: rebuilt on open, never backed up.
    c.exclusions.push_back({dir, file + "-shm", false});
    m.components.push_back(std::move(c));
    return m;
  }

  Outcome OnPrepareSnapshot(const EventContext& e) override {
    if (Outcome o = Open(e.deadline); !o.ok()) return o;
    sqlite3_busy_timeout(db_.get(), MillisLeft(e.deadline));
    int log = 0, done = 0;
    const int rc =
        sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    // Not in WAL mode: nothing to checkpoint. Busy: readers kept part of the
    // log; freeze still holds every commit, the snapshot just carries the WAL.
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
      return Outcome::Fail(Failure::kRetryable,
                           "WAL checkpoint of " + path_ + " failed: " + sqlite3_errmsg(db_.get()));
    return {};
  }

  Outcome OnFreeze(const EventContext& e) override {
    if (Outcome o = Open(e.deadline); !o.ok()) return o;
    // Wait for the write lock no longer than the window allows.
    sqlite3_busy_timeout(db_.get(), MillisLeft(e.deadline));
    char* err = nullptr;
    const int rc = sqlite3_exec(db_.get(), "BEGIN IMMEDIATE", nullptr, nullptr, &err);
    std::string message = err ? err : "";
    sqlite3_free(err);
    if (rc == SQLITE_BUSY)
      return Outcome::Fail(Failure::kRetryable, "could not take the write lock of " + path_ +
                                                    " in time (a long write transaction holds "
                                                    "it); a later set may succeed");
    if (rc != SQLITE_OK)
      return Outcome::Fail(Failure::kNonRetryable, "BEGIN IMMEDIATE on " + path_ + ": " + message);
    return {};
  }

  Outcome OnThaw(const EventContext&) override {
    // The transaction must still be open: if it was not, other connections
    // could have committed during the hold.
    const bool held = db_ && sqlite3_get_autocommit(db_.get()) == 0;
    Rollback();
    if (!held)
      return Outcome::Fail(Failure::kInconsistentSnapshot,
                           "the write transaction on " + path_ +
                               " ended during the hold; commits may have slipped into the "
                               "snapshot half-done");
    return {};
  }

  void OnAbort(const EventContext&) override { Rollback(); }

 private:
  Outcome Open(Clock::time_point) {
    if (db_) return {};
    sqlite3* raw = nullptr;
    // SQLITE_OPEN_READWRITE without CREATE: a missing database is an error,
    // not a new empty file.
    const int rc = sqlite3_open_v2(path_.c_str(), &raw,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr);
    std::unique_ptr<sqlite3, DbCloser> db(raw);
    if (rc != SQLITE_OK)
      return Outcome::Fail(
          Failure::kNonRetryable,
          "cannot open " + path_ + ": " + (raw ? sqlite3_errmsg(raw) : "out of memory"));
    db_ = std::move(db);
    return {};
  }

  void Rollback() {
    if (db_ && sqlite3_get_autocommit(db_.get()) == 0)
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }

  std::string path_, name_;
  std::unique_ptr<sqlite3, DbCloser> db_;
};

int Usage(const std::string& why) {
  std::cerr << "snapset-sqlite-writer: " << why
            << "\nusage: snapset-sqlite-writer --db PATH [--name NAME] [--run-dir DIR] "
               "[--allow-uid UID]...\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string db, name, run_dir;
  std::vector<uid_t> allowed;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "-h" || k == "--help") {
      Usage("a snapset writer for one SQLite database");
      return 0;
    }
    if (i + 1 >= argc) return Usage("option " + k + " needs a value");
    const std::string v = argv[++i];
    if (k == "--db")
      db = v;
    else if (k == "--name")
      name = v;
    else if (k == "--run-dir")
      run_dir = v;
    else if (k == "--allow-uid")
      allowed.push_back(static_cast<uid_t>(std::strtoul(v.c_str(), nullptr, 10)));
    else
      return Usage("unknown option " + k);
  }
  if (db.empty()) return Usage("--db PATH is required");
  std::error_code ec;
  const fs::path canonical = fs::canonical(db, ec);
  if (ec) return Usage("database " + db + ": " + ec.message());
  if (name.empty()) name = "sqlite-" + canonical.stem().string();
  SqliteWriter w(canonical.string(), name);
  ServeOptions o;
  o.name = name;
  if (!run_dir.empty()) o.run_dir = run_dir;
  o.allowed_uids = allowed;
  snapset::Status s = Serve(w, o);
  if (!s.ok()) {
    std::cerr << "snapset-sqlite-writer: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}
