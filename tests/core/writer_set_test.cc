// SPDX-License-Identifier: Apache-2.0
// Writers as an application relies on them: every event in order over one
// held connection; a writer that fails, hangs, crashes or answers garbage in
// any phase fails the set with its name and the phase, and is never left
// frozen; the writer window; discovery (stale sockets, owners), express
// writers, and `writers list`'s view.
#define BOOST_TEST_MODULE writer_set
#include "core/writer_set.hpp"

#include <snapset/requestor.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/component_volumes.hpp"
#include "core/mount_table.hpp"
#include "core/set_creation.hpp"
#include "core/socket_writer.hpp"
#include "tests/support/loop_filesystem.hpp"
#include "tests/support/prerequisites.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/writer_process.hpp"

using namespace snapset;
using snapset::test::TempDir;
using snapset::test::WriterProcess;
using Clock = std::chrono::steady_clock;
namespace bdata = boost::unit_test::data;

namespace {

const std::string kTestWriter = SNAPSET_TEST_WRITER;
const std::string kPlugins = SNAPSET_TEST_PLUGIN_DIR;
const std::string kSet = "5f0c6a8e-2b1d-4c6e-9a3f-7d8e9f0a1b2c";

struct Fixture {
  TempDir dir;
  std::string run() const { return dir.str() + "/run"; }
  std::string config() const { return dir.str() + "/config"; }
  std::string log(const std::string& name) const { return dir.str() + "/" + name + ".log"; }
  std::string socket(const std::string& name) const { return run() + "/writers/" + name + ".sock"; }

  Fixture() {
    std::filesystem::create_directories(config() + "/providers.d");
    ::chmod(config().c_str(), 0755);
    ::chmod(dir.str().c_str(), 0755);
  }

  std::unique_ptr<WriterProcess> Start(const std::string& name, const std::string& fault = "",
                                       std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {kTestWriter, "--name", name,     "--run-dir",
                                     run(),       "--log",  log(name)};
    if (!fault.empty()) {
      argv.push_back("--fault");
      argv.push_back(fault);
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<WriterProcess>(argv, socket(name));
  }

  WriterSetOptions Options(int window_ms = 2000, int event_ms = 2000) const {
    WriterSetOptions o;
    o.config_dir = config();
    o.run_dir = run();
    o.window = std::chrono::milliseconds(window_ms);
    o.event_timeout = std::chrono::milliseconds(event_ms);
    return o;
  }

  // The writer's handler calls, one "<event> <set>" per line.
  std::vector<std::string> Log(const std::string& name) const {
    std::ifstream in(log(name));
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l.substr(0, l.find(' ')));
    return lines;
  }

  // Waits until the writer's log has `event` (the library aborts on its own
  // thread, after the connection closes).
  bool WaitFor(const std::string& name, const std::string& event,
               std::chrono::milliseconds within = std::chrono::seconds(5)) const {
    const auto end = Clock::now() + within;
    while (Clock::now() < end) {
      for (const auto& e : Log(name))
        if (e == event) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  void AddProvider(const std::string& name) {
    dir.Write(
        "config/providers.d/" + name + ".json",
        "{\"id\": \"" + NewUuid() + "\", \"name\": \"" + name +
            "\", \"type\": \"software\", \"library\": \"" + kPlugins +
            "/libscripted_provider.so\", \"config\": {\"supports\": [\"name-prefix:cow:\"]}}");
  }

  std::unique_ptr<Requestor> Open() const {
    RequestorOptions o;
    o.config_dir = config();
    o.state_dir = dir.str() + "/state";
    o.run_dir = run();
    o.log_level = SNAPSET_LOG_ERROR;
    if (const char* g = std::getenv("SNAPSET_THAW_GUARD")) o.thaw_guard = g;
    auto r = Requestor::Open(o);
    BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
    return std::move(*r);
  }
};

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Drives `set` through the events up to and including `last`; returns the
// first failure (or OK).
Status DriveTo(WriterSet& set, const std::string& last) {
  const std::vector<std::pair<std::string, std::function<Status()>>> steps = {
      {"prepare-backup", [&] { return set.PrepareBackup(kSet, {"cow:a"}, {}); }},
      {"prepare-snapshot", [&] { return set.PrepareSnapshot(); }},
      {"freeze", [&] { return set.Freeze(); }},
      {"thaw", [&] { return set.Thaw(); }},
      {"post-snapshot", [&] { return set.PostSnapshot(); }},
  };
  for (const auto& [name, step] : steps) {
    Status s = step();
    if (!s.ok() || name == last) return s;
  }
  return Status::Ok();
}

const std::vector<std::string> kPhases = {"identify", "prepare-backup", "prepare-snapshot",
                                          "freeze",   "thaw",           "post-snapshot"};
const std::vector<std::string> kFaults = {"error", "hang", "crash", "malformed"};

}  // namespace

BOOST_AUTO_TEST_CASE(a_writer_gets_every_event_in_order_on_one_connection) {
  Fixture f;
  auto w = f.Start("app");
  auto timeline = std::make_shared<Timeline>();
  auto set = WriterSet::Discover(f.Options(), timeline);
  BOOST_TEST_REQUIRE(set.ok(), set.status().ToString());
  BOOST_TEST_REQUIRE((*set)->metadata().size() == 1u);
  BOOST_TEST((*set)->metadata()[0].second.instance == "test instance of app");
  Status s = DriveTo(**set, "post-snapshot");
  BOOST_TEST_REQUIRE(s.ok(), s.ToString());
  const std::vector<std::string> expected = {"identify", "prepare-backup", "prepare-snapshot",
                                             "freeze",   "thaw",           "post-snapshot"};
  BOOST_TEST(f.Log("app") == expected, boost::test_tools::per_element());
  auto records = (*set)->Records();
  BOOST_TEST_REQUIRE(records.size() == 1u);
  BOOST_TEST(records[0].state == "waiting-for-backup-complete");
  BOOST_TEST(Contains(records[0].backup_blob_json, "thawed " + kSet), records[0].backup_blob_json);
  BOOST_TEST(Contains(records[0].metadata_json, "\"name\":\"app\""));
  // Closing the connection after post-snapshot is normal: no abort.
  set->reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (const auto& e : f.Log("app")) BOOST_TEST(e != "abort");
}

// Every phase x {error, hang, crash, malformed}: the failing step names the
// writer and the phase, and the writer is never left frozen.
BOOST_DATA_TEST_CASE(a_failing_writer_fails_the_set_naming_itself_and_the_phase,
                     bdata::make(kPhases) * bdata::make(kFaults), phase, fault) {
  Fixture f;
  auto w = f.Start("app", phase + ":" + fault);
  const auto started = Clock::now();
  auto set = WriterSet::Discover(f.Options(1000, 1000), nullptr);
  Status s = set.ok() ? DriveTo(**set, phase) : set.status();
  const auto took = Clock::now() - started;
  BOOST_TEST_REQUIRE(!s.ok(), "the set went on past a writer broken at " + phase);
  BOOST_TEST(Contains(s.message(), "writer app"), s.ToString());
  BOOST_TEST((s.code() == Code::kWriterFailed || s.code() == Code::kWriterTimeout), s.ToString());
  BOOST_TEST(Contains(s.message(), phase), s.ToString());
  if (fault == "hang") BOOST_TEST((s.code() == Code::kWriterTimeout), s.ToString());
  // Bounded by the event's deadline (1 s; thaw gets at least 5 s), with a
  // margin for a loaded host.
  BOOST_TEST((took < std::chrono::seconds(phase == "thaw" ? 9 : 4)));
  if (set.ok()) (*set)->Abort();
  // A writer that froze and was not thawed was told to abort (or aborted
  // itself when its connection closed). A hung or crashed handler cannot be.
  // A writer whose handler failed is told to abort (a hung or crashed
  // handler cannot be; the garbage writer is not the library).
  if (fault == "error" && phase != "identify") BOOST_TEST(f.WaitFor("app", "abort"));
  if (fault == "crash") {
    for (int i = 0; i < 200 && w->Alive(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    BOOST_TEST(!w->Alive());
  }
}

BOOST_AUTO_TEST_CASE(a_writer_that_overruns_the_window_is_failed_with_a_timeout) {
  Fixture f;
  auto w = f.Start("slow", "freeze:slow=1500");
  auto set = WriterSet::Discover(f.Options(500, 2000), nullptr);
  BOOST_TEST_REQUIRE(set.ok(), set.status().ToString());
  const auto started = Clock::now();
  Status s = DriveTo(**set, "freeze");
  BOOST_TEST((s.code() == Code::kWriterTimeout), s.ToString());
  BOOST_TEST(Contains(s.message(), "freeze"), s.ToString());
  BOOST_TEST((Clock::now() - started < std::chrono::milliseconds(1400)));
  (*set)->Abort();
  // Its freeze finished after the coordinator left: the library aborts it.
  BOOST_TEST(f.WaitFor("slow", "abort"));
}

BOOST_AUTO_TEST_CASE(a_writer_whose_coordinator_dies_while_frozen_aborts_itself) {
  Fixture f;
  auto w = f.Start("app");
  const pid_t child = ::fork();
  if (child == 0) {
    auto set = WriterSet::Discover(f.Options(), nullptr);
    if (!set.ok() || !DriveTo(**set, "freeze").ok()) ::_exit(1);
    ::kill(::getpid(), SIGKILL);  // no abort, no destructor
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  BOOST_TEST_REQUIRE(WIFSIGNALED(status), "the coordinator child did not get as far as freeze");
  BOOST_TEST(f.WaitFor("app", "abort"));
}

BOOST_AUTO_TEST_CASE(a_frozen_writer_never_thawed_thaws_itself_after_its_window) {
  Fixture f;
  auto w = f.Start("app");
  auto set = WriterSet::Discover(f.Options(300, 2000), nullptr);
  BOOST_TEST_REQUIRE(set.ok(), set.status().ToString());
  BOOST_TEST_REQUIRE(DriveTo(**set, "freeze").ok());
  // The coordinator stays connected but never thaws (a hung coordinator).
  BOOST_TEST(f.WaitFor("app", "abort", std::chrono::seconds(3)));
  Status s = (*set)->Thaw();
  BOOST_TEST(!s.ok());
  BOOST_TEST(Contains(s.message(), "failed-at-freeze"), s.ToString());
  BOOST_TEST(Contains(s.message(), "timeout"), s.ToString());
}

BOOST_AUTO_TEST_CASE(events_out_of_order_are_refused_by_the_writer_library) {
  Fixture f;
  auto w = f.Start("app");
  auto conn =
      SocketWriter::Connect("app", f.socket("app"), {}, Clock::now() + std::chrono::seconds(2));
  BOOST_TEST_REQUIRE(conn.ok(), conn.status().ToString());
  writer_protocol::Request q;
  q.event = writer::Event::kFreeze;
  q.set_id = kSet;
  auto r = (*conn)->Call(q, Clock::now() + std::chrono::seconds(2));
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(!r->ok);
  BOOST_TEST(Contains(r->message, "freeze came in state stable"), r->message);
  for (const auto& e : f.Log("app")) BOOST_TEST(e != "freeze");  // the handler never ran
}

BOOST_AUTO_TEST_CASE(a_second_set_is_refused_while_a_writer_is_in_one) {
  Fixture f;
  auto w = f.Start("app");
  auto one = WriterSet::Discover(f.Options(), nullptr);
  BOOST_TEST_REQUIRE(one.ok());
  BOOST_TEST_REQUIRE(DriveTo(**one, "freeze").ok());
  auto two = WriterSet::Discover(f.Options(), nullptr);
  BOOST_TEST_REQUIRE(two.ok());
  Status s = (*two)->PrepareBackup("6f0c6a8e-2b1d-4c6e-9a3f-7d8e9f0a1b2c", {"cow:a"}, {});
  BOOST_TEST(!s.ok());
  BOOST_TEST(Contains(s.message(), "in another set"), s.ToString());
  BOOST_TEST((*one)->Thaw().ok());
}

BOOST_AUTO_TEST_CASE(a_stale_socket_of_a_dead_writer_is_skipped) {
  Fixture f;
  {
    auto w = f.Start("gone");
    w->Kill();  // SIGKILL: the socket file stays
  }
  BOOST_TEST_REQUIRE(std::filesystem::exists(f.socket("gone")));
  auto timeline = std::make_shared<Timeline>();
  auto set = WriterSet::Discover(f.Options(), timeline);
  BOOST_TEST_REQUIRE(set.ok(), set.status().ToString());
  BOOST_TEST((*set)->empty());
  bool noted = false;
  for (const auto& e : timeline->data().events)
    if (e.lane == "writer:gone" && e.step == "skipped") noted = Contains(e.detail, "not running");
  BOOST_TEST(noted);
}

BOOST_AUTO_TEST_CASE(a_writer_of_a_user_not_allowed_is_skipped_and_an_allowed_one_joins) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("needs root to start a writer as another user");
    BOOST_TEST(std::getenv("CI") == nullptr, "CI runs as root");
    return;
  }
  Fixture f;
  std::filesystem::create_directories(f.run() + "/writers");
  ::chmod(f.run().c_str(), 0755);
  ::chmod((f.run() + "/writers").c_str(), 01777);
  ::chmod(f.dir.str().c_str(), 0777);  // the writer's log
  auto w = f.Start("other", "", {"--uid", "65534"});
  auto timeline = std::make_shared<Timeline>();
  auto set = WriterSet::Discover(f.Options(), timeline);
  BOOST_TEST_REQUIRE(set.ok(), set.status().ToString());
  BOOST_TEST((*set)->empty());
  bool noted = false;
  for (const auto& e : timeline->data().events)
    if (e.lane == "writer:other" && e.step == "skipped") noted = Contains(e.detail, "uid 65534");
  BOOST_TEST(noted);

  f.dir.Write("config/writers.json", "{\"allowed_users\": [65534]}");
  auto allowed = WriterSet::Discover(f.Options(), nullptr);
  BOOST_TEST_REQUIRE(allowed.ok(), allowed.status().ToString());
  BOOST_TEST(!(*allowed)->empty());
}

BOOST_AUTO_TEST_CASE(writers_json_with_an_unknown_user_is_a_config_error_naming_it) {
  Fixture f;
  f.dir.Write("config/writers.json", "{\"allowed_users\": [\"no-such-user-here\"]}");
  auto set = WriterSet::Discover(f.Options(), nullptr);
  BOOST_TEST_REQUIRE(!set.ok());
  BOOST_TEST((set.status().code() == Code::kConfig));
  BOOST_TEST(Contains(set.status().message(), "no-such-user-here"), set.status().ToString());
}

BOOST_AUTO_TEST_CASE(an_express_writer_runs_its_commands_and_is_thawed_on_abort) {
  Fixture f;
  const std::string out = f.dir.str() + "/express.out";
  f.dir.Write("bin/record", "#!/bin/sh\necho \"$1 $SNAPSET_SET_ID\" >> " + out + "\n");
  ::chmod((f.dir.str() + "/bin/record").c_str(), 0755);
  ::chmod((f.dir.str() + "/bin").c_str(), 0755);
  const std::string rec = f.dir.str() + "/bin/record";
  f.dir.Write("config/writers.d/app.json",
              R"({"metadata": {"name": "app", "instance": "one",
                  "components": [{"logical_path": "data",
                                  "files": [{"path": "/srv/app", "recursive": true}]}]},
                  "commands": {"freeze": [")" +
                  rec + R"(", "freeze"],
                               "thaw": [")" +
                  rec + R"(", "thaw"],
                               "abort": [")" +
                  rec + R"(", "abort"]}})");
  ::chmod((f.config() + "/writers.d").c_str(), 0755);
  auto set = WriterSet::Discover(f.Options(), nullptr);
  BOOST_TEST_REQUIRE(set.ok(), set.status().ToString());
  BOOST_TEST_REQUIRE((*set)->metadata().size() == 1u);
  BOOST_TEST((*set)->metadata()[0].second.components[0].files[0].path == "/srv/app");
  BOOST_TEST_REQUIRE(DriveTo(**set, "freeze").ok());
  (*set)->Abort();
  std::ifstream in(out);
  std::stringstream got;
  got << in.rdbuf();
  BOOST_TEST(got.str() == "freeze " + kSet + "\nthaw " + kSet + "\nabort " + kSet + "\n");
}

BOOST_AUTO_TEST_CASE(a_bad_express_writer_is_an_error_naming_the_file_and_field) {
  Fixture f;
  f.dir.Write("config/writers.d/bad.json",
              R"({"metadata": {"name": "bad", "restore_method": "pray"}})");
  ::chmod((f.config() + "/writers.d").c_str(), 0755);
  auto set = WriterSet::Discover(f.Options(), nullptr);
  BOOST_TEST_REQUIRE(!set.ok());
  BOOST_TEST(Contains(set.status().message(), "bad.json"), set.status().ToString());
  BOOST_TEST(Contains(set.status().message(), "restore_method"), set.status().ToString());
}

BOOST_AUTO_TEST_CASE(writers_list_shows_each_writer_its_state_and_last_error) {
  Fixture f;
  auto good = f.Start("good");
  auto bad = f.Start("bad", "thaw:inconsistent");
  {
    auto set = WriterSet::Discover(f.Options(), nullptr);
    BOOST_TEST_REQUIRE(set.ok());
    BOOST_TEST(!DriveTo(**set, "thaw").ok());
    // Listed while "good" is still in the set.
    auto during = ListWriters(f.Options());
    BOOST_TEST_REQUIRE(during.ok(), during.status().ToString());
    BOOST_TEST_REQUIRE(during->size() == 2u);
    BOOST_TEST((*during)[0].name == "bad");
    BOOST_TEST((*during)[0].state == "failed-at-thaw");
    BOOST_TEST((*during)[0].failure == "inconsistent-snapshot");
    BOOST_TEST(Contains((*during)[0].last_error, "lost its hold"));
    BOOST_TEST((*during)[1].state == "waiting-for-post-snapshot");
    BOOST_TEST((*during)[1].set_id == kSet);
    BOOST_TEST_REQUIRE((*during)[1].metadata.has_value());
    (*set)->Abort();
  }
  good->Kill();
  auto after = ListWriters(f.Options());
  BOOST_TEST_REQUIRE(after.ok());
  BOOST_TEST((*after)[1].state == "unreachable");
  BOOST_TEST(Contains((*after)[1].last_error, "not running"));
}

// The set as a whole: writers around the commit window, and a writer's
// failure rolls the set back on every provider.
BOOST_AUTO_TEST_CASE(a_set_freezes_writers_around_the_commit_and_records_them) {
  Fixture f;
  f.AddProvider("sw");
  auto w = f.Start("app");
  auto r = f.Open();
  SetRequest req;
  req.volumes = {"cow:a", "cow:b"};
  SetResult result = r->CreateSet(req);
  BOOST_TEST_REQUIRE(result.status.ok(), result.status.ToString());
  int64_t freeze_end = -1, commit_begin = -1, commit_end = -1, thaw_begin = -1;
  for (const auto& e : result.timeline.events) {
    if (e.lane == "writer:app" && e.step == "freeze" && e.kind == TimelineKind::kEnd)
      freeze_end = e.t_ns;
    if (e.lane == "writer:app" && e.step == "thaw" && e.kind == TimelineKind::kBegin)
      thaw_begin = e.t_ns;
    if (e.step == "commit_snapshots" && e.kind == TimelineKind::kBegin && commit_begin < 0)
      commit_begin = e.t_ns;
    if (e.step == "commit_snapshots" && e.kind == TimelineKind::kEnd) commit_end = e.t_ns;
  }
  BOOST_TEST_REQUIRE(freeze_end > 0);
  BOOST_TEST(freeze_end < commit_begin);
  BOOST_TEST(commit_end < thaw_begin);
  // The catalog keeps the writer's metadata and the documents it returned.
  auto set = r->GetSet(result.set_id);
  BOOST_TEST_REQUIRE(set.ok());
  BOOST_TEST_REQUIRE(set->writers.size() == 1u);
  BOOST_TEST(set->writers[0].name == "app");
  BOOST_TEST(set->writers[0].state == "waiting-for-backup-complete");
  BOOST_TEST(set->writers[0].backup_blob["label"] == "thawed " + result.set_id);
  BOOST_TEST(Contains(set->writers[0].metadata_json, "test instance of app"));
  const std::vector<std::string> expected = {"identify", "prepare-backup", "prepare-snapshot",
                                             "freeze",   "thaw",           "post-snapshot"};
  BOOST_TEST(f.Log("app") == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_writer_failing_at_thaw_rolls_the_set_back_on_every_provider) {
  Fixture f;
  f.AddProvider("sw");
  auto w = f.Start("app", "thaw:inconsistent");
  auto r = f.Open();
  SetRequest req;
  req.volumes = {"cow:a"};
  SetResult result = r->CreateSet(req);
  BOOST_TEST_REQUIRE(!result.status.ok());
  BOOST_TEST((result.status.code() == Code::kWriterFailed));
  BOOST_TEST(Contains(result.status.message(), "writer app failed thaw (inconsistent-snapshot"),
             result.status.ToString());
  BOOST_TEST(result.snapshots.empty());
  auto set = r->GetSet(result.set_id);
  BOOST_TEST_REQUIRE(set.ok());
  BOOST_TEST(set->state == "aborted");
  auto findings = r->Verify();
  BOOST_TEST_REQUIRE(findings.ok());
  BOOST_TEST(findings->empty());
  BOOST_TEST(f.WaitFor("app", "abort"));
}

BOOST_AUTO_TEST_CASE(a_writer_window_above_60_s_is_refused_before_anything_starts) {
  Fixture f;
  f.AddProvider("sw");
  auto w = f.Start("app");
  auto r = f.Open();
  SetRequest req;
  req.volumes = {"cow:a"};
  req.writer_window = std::chrono::seconds(61);
  SetResult result = r->CreateSet(req);
  BOOST_TEST((result.status.code() == Code::kInvalidArgument));
  BOOST_TEST(Contains(result.status.message(), "writer window"), result.status.ToString());
  BOOST_TEST(f.Log("app").empty());
}

// Planning from metadata: selecting components, and the volumes of their files.
namespace {

std::pair<std::string, writer::Metadata> WriterWith(const std::string& name,
                                                    std::vector<writer::Component> comps) {
  writer::Metadata m;
  m.name = name;
  m.components = std::move(comps);
  return {name, m};
}

writer::Component Comp(const std::string& path, std::vector<writer::FileGroup> db,
                       std::vector<writer::FileGroup> logs = {}) {
  writer::Component c;
  c.logical_path = path;
  c.database_files = std::move(db);
  c.log_files = std::move(logs);
  return c;
}

const char kMounts[] =
    "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
    "30 22 7:1 / /srv/db rw - ext4 /dev/loop1 rw\n"
    "31 22 7:2 / /srv/log rw - xfs /dev/loop2 rw\n"
    "32 30 7:3 / /srv/db/archive rw - ext4 /dev/loop3 rw\n"
    "33 30 0:40 / /srv/db/tmp rw - tmpfs tmpfs rw\n";

}  // namespace

BOOST_AUTO_TEST_CASE(components_are_selected_by_writer_by_path_and_by_writer_and_path) {
  const std::vector<std::pair<std::string, writer::Metadata>> writers = {
      WriterWith("pg", {Comp("main", {{"/srv/db", "*", true}}), Comp("logs", {{"/srv/log"}})}),
      WriterWith("lite", {Comp("main", {{"/srv/db/app.db"}})})};
  auto all = SelectComponents(writers, {"pg"}, {});
  BOOST_TEST_REQUIRE(all.ok());
  BOOST_TEST(all->size() == 2u);
  auto one = SelectComponents(writers, {}, {"logs"});
  BOOST_TEST_REQUIRE(one.ok());
  BOOST_TEST((*one)[0].writer == "pg");
  auto ambiguous = SelectComponents(writers, {}, {"main"});
  BOOST_TEST(!ambiguous.ok());
  BOOST_TEST(Contains(ambiguous.status().message(), "--component pg:main"),
             ambiguous.status().ToString());
  auto qualified = SelectComponents(writers, {}, {"lite:main"});
  BOOST_TEST_REQUIRE(qualified.ok(), qualified.status().ToString());
  BOOST_TEST((*qualified)[0].writer == "lite");
  auto missing = SelectComponents(writers, {"mysql"}, {});
  BOOST_TEST(missing.status().IsNotFound());
  BOOST_TEST(Contains(missing.status().message(), "pg (components main, logs)"),
             missing.status().ToString());
}

BOOST_AUTO_TEST_CASE(a_component_takes_the_filesystems_of_its_files_and_below_a_recursive_group) {
  const MountTable mounts = MountTable::Parse(kMounts);
  const std::vector<std::pair<std::string, writer::Metadata>> writers = {WriterWith(
      "pg", {Comp("main", {{"/srv/db", "*", true}}, {{"/srv/log/pg_wal", "*", false}})})};
  auto files = ComponentFiles(writers, {{"pg", "main"}}, mounts);
  BOOST_TEST_REQUIRE(files.ok(), files.status().ToString());
  std::vector<std::string> points;
  for (const auto& f : *files) points.push_back(f.mount_point);
  // tmpfs below the recursive path is no volume.
  BOOST_TEST(points == (std::vector<std::string>{"/srv/db", "/srv/db/archive", "/srv/log"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_set_by_component_takes_its_volumes_and_one_missing_a_file_is_refused) {
  if (!snapset::test::LoopFilesystemsAvailable()) return;
  auto a = snapset::test::LoopFilesystem::Create(64 << 20);
  auto b = snapset::test::LoopFilesystem::Create(64 << 20);
  BOOST_TEST_REQUIRE(a.ok(), a.status().ToString());
  BOOST_TEST_REQUIRE(b.ok(), b.status().ToString());
  const std::string da = (*a)->mount_point(), db = (*b)->mount_point();
  Fixture f;
  f.dir.Write("config/providers.d/any.json", "{\"id\": \"" + NewUuid() +
                                                 "\", \"name\": \"any\", \"type\": \"software\", "
                                                 "\"library\": \"" +
                                                 kPlugins +
                                                 "/libscripted_provider.so\", \"config\": "
                                                 "{\"supports\": [\"*\"]}}");
  const std::string out = f.dir.str() + "/express.out";
  f.dir.Write("bin/record", "#!/bin/sh\necho \"$1\" >> " + out + "\n");
  ::chmod((f.dir.str() + "/bin/record").c_str(), 0755);
  ::chmod((f.dir.str() + "/bin").c_str(), 0755);
  const std::string rec = f.dir.str() + "/bin/record";
  f.dir.Write("config/writers.d/app.json",
              R"({"metadata": {"name": "app", "components": [
                   {"logical_path": "data", "database_files": [{"path": ")" +
                  da + R"(/db"}],
                                            "log_files": [{"path": ")" +
                  db + R"(/wal"}]}]},
                  "commands": {"prepare-backup": [")" +
                  rec + R"(", "prepare-backup"]}})");
  ::chmod((f.config() + "/writers.d").c_str(), 0755);
  auto r = f.Open();

  SetRequest by_component;
  by_component.components = {"data"};
  auto plan = r->PlanSet(by_component);
  BOOST_TEST_REQUIRE(plan.ok(), plan.status().ToString());
  BOOST_TEST_REQUIRE(plan->size() == 2u);
  BOOST_TEST((*plan)[0].volume == da);
  BOOST_TEST((*plan)[1].volume == db);
  SetResult made = r->CreateSet(by_component);
  BOOST_TEST_REQUIRE(made.status.ok(), made.status.ToString());
  BOOST_TEST(made.snapshots.size() == 2u);

  SetRequest short_one;
  short_one.volumes = {da};
  short_one.writers = {"app"};
  SetResult refused = r->CreateSet(short_one);
  BOOST_TEST_REQUIRE(!refused.status.ok());
  BOOST_TEST((refused.status.code() == Code::kInvalidArgument), refused.status.ToString());
  BOOST_TEST(Contains(refused.status.message(), "file " + db + "/wal/*"),
             refused.status.ToString());
  BOOST_TEST(Contains(refused.status.message(), "on volume " + db), refused.status.ToString());
  // Refused at planning: nothing recorded, the writer heard nothing of it.
  auto sets = r->ListSets(true);
  BOOST_TEST_REQUIRE(sets.ok());
  BOOST_TEST(sets->size() == 1u);
  std::ifstream in(out);
  int prepared = 0;
  for (std::string l; std::getline(in, l);) prepared += l == "prepare-backup";
  BOOST_TEST(prepared == 1);
}

BOOST_AUTO_TEST_CASE(backup_complete_reaches_the_sets_writers_and_a_failure_names_the_writer) {
  Fixture f;
  f.AddProvider("sw");
  auto good = f.Start("good");
  auto bad = f.Start("bad", "backup-complete:error");
  auto r = f.Open();
  SetRequest req;
  req.volumes = {"cow:a"};
  SetResult result = r->CreateSet(req);
  BOOST_TEST_REQUIRE(result.status.ok(), result.status.ToString());
  auto waiting = ListWriters(f.Options());
  BOOST_TEST_REQUIRE(waiting.ok());
  for (const auto& w : *waiting) BOOST_TEST(w.state == "waiting-for-backup-complete");
  Status s = r->BackupComplete(result.set_id);
  BOOST_TEST(!s.ok());
  BOOST_TEST(Contains(s.message(), "writer bad failed backup-complete"), s.ToString());
  // The good one was told all the same.
  BOOST_TEST(f.WaitFor("good", "backup-complete"));
  auto after = ListWriters(f.Options());
  BOOST_TEST_REQUIRE(after.ok());
  BOOST_TEST((*after)[0].state == "failed-at-backup-complete");
  BOOST_TEST((*after)[1].state == "stable");
  // Not for a set that is not complete.
  BOOST_TEST(r->BackupComplete(NewUuid()).IsNotFound());
}
