// SPDX-License-Identifier: Apache-2.0
// The bundled SQLite writer, as a user of a SQLite application relies on it:
// a set taken while the application commits nonstop holds a database that
// passes PRAGMA integrity_check and has every transaction committed before
// the freeze, and no other connection commits while the writer holds it.
// Real pieces: an ext4 on a loop device whose backing file sits on an xfs
// pool, the loop-clone provider (reflink snapshots), the real writer
// process, and a SQLite file.
#define BOOST_TEST_MODULE sqlite_writer
#include <snapset/requestor.hpp>

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/run_command.hpp"
#include "core/set_creation.hpp"
#include "tests/support/loop_filesystem.hpp"
#include "tests/support/prerequisites.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/writer_process.hpp"

using namespace snapset;
using snapset::test::LoopFilesystem;
using snapset::test::TempDir;
using snapset::test::WriterProcess;
using Clock = std::chrono::steady_clock;

namespace {

int64_t MonotonicNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string Must(const std::vector<std::string>& argv) {
  CommandResult r = RunCommand(argv, std::chrono::seconds(60));
  std::string line;
  for (const auto& a : argv) line += a + " ";
  if (r.exit_code != 0) throw std::runtime_error(line + "failed: " + r.output);
  return r.output;
}

// An ext4 on a loop device whose backing file lives on an xfs pool, so that
// loop-clone can reflink it; undone by the destructor.
struct ClonableExt4 {
  std::unique_ptr<LoopFilesystem> pool;
  TempDir dir;
  std::string device, mount;
  ClonableExt4() {
    auto p = LoopFilesystem::Create(1ull << 30, "xfs");
    if (!p.ok()) throw std::runtime_error(p.status().ToString());
    pool = std::move(*p);
    const std::string backing = pool->mount_point() + "/vol.img";
    Must({"truncate", "-s", "256M", backing});
    device = Must({"losetup", "--find", "--show", backing});
    while (!device.empty() && device.back() == '\n') device.pop_back();
    Must({"mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", device});
    mount = dir.str() + "/data";
    std::filesystem::create_directories(mount);
    Must({"mount", "-t", "ext4", device, mount});
    std::filesystem::create_directories(pool->mount_point() + "/snapshots");
  }
  ~ClonableExt4() {
    RunCommand({"fsfreeze", "--unfreeze", mount}, std::chrono::seconds(10));
    RunCommand({"umount", mount}, std::chrono::seconds(30));
    RunCommand({"losetup", "-d", device}, std::chrono::seconds(30));
    // Exposures loop-clone left attached keep the pool busy.
    CommandResult list = RunCommand({"losetup", "-j", pool->mount_point() + "/snapshots"});
    (void)list;
  }
};

struct Db {
  sqlite3* db = nullptr;
  explicit Db(const std::string& path, int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) {
    if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK)
      throw std::runtime_error("cannot open " + path);
  }
  ~Db() { sqlite3_close_v2(db); }
  void Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(sql + ": " + m);
    }
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr);
    std::string out;
    if (s && sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return out;
  }
};

// The application: commits one row per transaction, nonstop, and records
// when each commit returned and when a write had to wait for the lock.
struct Workload {
  std::string path;
  std::atomic<bool> stop{false};
  std::mutex mu;
  struct Commit {
    int64_t seq, began_ns, committed_ns;  // monotonic: before BEGIN, after COMMIT returned
  };
  std::vector<Commit> commits;
  std::vector<int64_t> waited;  // busy-handler calls, monotonic ns
  std::thread thread;

  static int OnBusy(void* self, int) {
    auto* w = static_cast<Workload*>(self);
    {
      std::lock_guard lock(w->mu);
      w->waited.push_back(MonotonicNs());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return 1;  // keep waiting
  }

  void Start() {
    thread = std::thread([this] {
      Db db(path);
      sqlite3_busy_handler(db.db, OnBusy, this);
      db.Exec("PRAGMA synchronous = NORMAL");
      for (int64_t seq = 1; !stop.load(); ++seq) {
        const int64_t began = MonotonicNs();
        db.Exec("BEGIN IMMEDIATE");
        db.Exec("INSERT INTO t (seq, payload) VALUES (" + std::to_string(seq) +
                ", printf('%.500c', 'x'))");
        db.Exec("COMMIT");
        std::lock_guard lock(mu);
        commits.push_back({seq, began, MonotonicNs()});
      }
    });
  }
  void Stop() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
  ~Workload() { Stop(); }
};

std::pair<int64_t, int64_t> Span(const TimelineData& t, const std::string& lane,
                                 const std::string& step) {
  int64_t b = -1, e = -1;
  for (const auto& ev : t.events) {
    if (ev.lane != lane || ev.step != step) continue;
    if (ev.kind == TimelineKind::kBegin) b = ev.t_ns;
    if (ev.kind == TimelineKind::kEnd) e = ev.t_ns;
  }
  return {b, e};
}

}  // namespace

BOOST_AUTO_TEST_CASE(
    a_set_taken_under_load_holds_a_sound_database_with_every_commit_before_freeze) {
  const std::string missing = LoopFilesystem::MissingPrerequisite("xfs");
  if (!snapset::test::Available(missing)) return;
  ClonableExt4 vol;
  TempDir dir;
  ::chmod(dir.str().c_str(), 0755);
  const std::string config = dir.str() + "/config", run = dir.str() + "/run";
  std::filesystem::create_directories(config + "/providers.d");
  ::chmod(config.c_str(), 0755);
  dir.Write("config/providers.d/loop-clone.json",
            "{\"id\": \"" + NewUuid() +
                "\", \"name\": \"loop-clone\", \"type\": \"software\", "
                "\"library\": \"" SNAPSET_LOOP_CLONE "\", \"config\": {\"snapshot_dir\": \"" +
                vol.pool->mount_point() + "/snapshots\"}}");

  const std::string db_path = vol.mount + "/app.db";
  {
    Db db(db_path);
    db.Exec("PRAGMA journal_mode = WAL");
    db.Exec("CREATE TABLE t (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL)");
  }
  WriterProcess writer(
      {SNAPSET_SQLITE_WRITER, "--db", db_path, "--name", "app-db", "--run-dir", run},
      run + "/writers/app-db.sock");
  Workload load;
  load.path = db_path;
  load.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  RequestorOptions o;
  o.config_dir = config;
  o.state_dir = dir.str() + "/state";
  o.run_dir = run;
  o.log_level = SNAPSET_LOG_ERROR;
  if (const char* g = std::getenv("SNAPSET_THAW_GUARD")) o.thaw_guard = g;
  auto r = Requestor::Open(o);
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  SetRequest req;
  req.volumes = {vol.mount};
  SetResult result = (*r)->CreateSet(req);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  load.Stop();
  BOOST_TEST_REQUIRE(result.status.ok(), result.status.ToString());

  const auto freeze = Span(result.timeline, "writer:app-db", "freeze");
  const auto thaw = Span(result.timeline, "writer:app-db", "thaw");
  BOOST_TEST_REQUIRE(freeze.first > 0);
  BOOST_TEST_REQUIRE(thaw.second > 0);
  int64_t committed_before_freeze = 0, committed_during_hold = 0, waited_during_hold = 0;
  for (const auto& c : load.commits) {
    if (c.committed_ns < freeze.first)
      committed_before_freeze = std::max(committed_before_freeze, c.seq);
    // A whole transaction inside the writer's hold: impossible while it
    // holds the write lock.
    if (c.began_ns > freeze.second && c.committed_ns < thaw.first) ++committed_during_hold;
  }
  for (int64_t t : load.waited)
    if (t > freeze.second && t < thaw.first) ++waited_during_hold;
  BOOST_TEST_MESSAGE("commits " << load.commits.size() << ", before freeze "
                                << committed_before_freeze);
  BOOST_TEST_REQUIRE(committed_before_freeze > 0);
  // The writer held the write lock: no commit while it held, and the
  // application's writes waited for the lock (not only for the frozen
  // filesystem, which a hold without the writer would give).
  BOOST_TEST(committed_during_hold == 0);
  BOOST_TEST(waited_during_hold > 0);

  // The snapshot's database, read out of its ext4 image without mounting it.
  BOOST_TEST_REQUIRE(result.snapshots.size() == 1u);
  auto exposed = (*r)->ExposeSnapshot(result.snapshots[0].snapshot_id);
  BOOST_TEST_REQUIRE(exposed.ok(), exposed.status().ToString());
  const std::string copy = dir.str() + "/restored";
  std::filesystem::create_directories(copy);
  for (const char* f : {"app.db", "app.db-wal"}) {
    CommandResult d =
        RunCommand({"debugfs", "-R", std::string("dump /") + f + " " + copy + "/" + f, *exposed},
                   std::chrono::seconds(60));
    BOOST_TEST_REQUIRE(d.exit_code == 0, d.output);
  }
  Db snap(copy + "/app.db", SQLITE_OPEN_READWRITE);
  BOOST_TEST(snap.Text("PRAGMA integrity_check") == "ok");
  const int64_t rows = std::stoll(snap.Text("SELECT count(*) FROM t"));
  const int64_t max_seq = std::stoll(snap.Text("SELECT coalesce(max(seq), 0) FROM t"));
  BOOST_TEST(rows == max_seq);  // no transaction half there: 1..max, no gap
  BOOST_TEST(max_seq >= committed_before_freeze);
  BOOST_TEST((*r)->UnexposeSnapshot(result.snapshots[0].snapshot_id).ok());
  BOOST_TEST((*r)->DeleteSet(result.set_id).ok());
}

BOOST_AUTO_TEST_CASE(the_writer_names_its_database_files_in_its_metadata) {
  TempDir dir;
  const std::string db_path = dir.str() + "/x.db";
  {
    Db db(db_path);
    db.Exec("CREATE TABLE t (a)");
  }
  const std::string run = dir.str() + "/run";
  WriterProcess writer({SNAPSET_SQLITE_WRITER, "--db", db_path, "--run-dir", run},
                       run + "/writers/sqlite-x.sock");
  CommandResult list = RunCommand({SNAPSET_CLI, "--json", "--run-dir", run, "--config-dir",
                                   dir.str() + "/none", "writers", "list"},
                                  std::chrono::seconds(30));
  BOOST_TEST_REQUIRE(list.exit_code == 0, list.output);
  BOOST_TEST(list.output.find("\"name\": \"sqlite-x\"") != std::string::npos, list.output);
  BOOST_TEST(list.output.find("\"filespec\": \"x.db\"") != std::string::npos, list.output);
  BOOST_TEST(list.output.find("\"filespec\": \"x.db-wal\"") != std::string::npos, list.output);
}

BOOST_AUTO_TEST_CASE(a_missing_database_is_refused_at_start_with_its_name) {
  CommandResult r =
      RunCommand({SNAPSET_SQLITE_WRITER, "--db", "/nonexistent/app.db"}, std::chrono::seconds(30));
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.output.find("/nonexistent/app.db") != std::string::npos, r.output);
}
