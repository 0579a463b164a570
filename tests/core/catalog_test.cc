// The catalog keeps every snapshot set the coordinator records, survives a
// restart, is shared safely by several processes, and refuses files that are
// not its own.
#define BOOST_TEST_MODULE catalog
#include <boost/test/unit_test.hpp>

#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/catalog.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset {
// Lets Boost.Test print a state in a failed comparison (found by ADL).
std::ostream& boost_test_print_type(std::ostream& os, SetState s) {
  return os << SetStateName(s);
}
}  // namespace snapset

using namespace snapset;
using snapset::test::TempDir;

namespace {

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::unique_ptr<Catalog> OpenOrDie(const std::string& dir) {
  auto c = Catalog::Open(dir);
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  return std::move(c).value();
}

SnapshotRecord Snap(const std::string& id, const std::string& volume, int64_t created_ns = 0) {
  SnapshotRecord s;
  s.snapshot_id = id;
  s.volume = volume;
  s.provider_id = "11111111-1111-4111-8111-111111111111";
  s.provider_name = "software-cow";
  s.created_ns = created_ns;
  s.volume_device = "naa.6" + id;
  return s;
}

SetRecord NewSet(const std::string& id, int64_t created_ns,
                 std::vector<SnapshotRecord> snapshots = {}) {
  SetRecord s;
  s.set_id = id;
  s.created_ns = created_ns;
  s.context = SNAPSET_ATTR_PERSISTENT;
  s.requestor_pid = 4242;
  s.snapshots = std::move(snapshots);
  return s;
}

// Begins and completes a set with one snapshot per volume, named
// "<set>-<i>", created at the set's time.
void AddComplete(Catalog& c, const std::string& id, int64_t created_ns,
                 const std::vector<std::string>& volumes) {
  std::vector<SnapshotRecord> snaps;
  for (size_t i = 0; i < volumes.size(); ++i)
    snaps.push_back(Snap(id + "-" + std::to_string(i), volumes[i], created_ns));
  BOOST_TEST_REQUIRE(c.BeginSet(NewSet(id, created_ns, snaps)).ok());
  BOOST_TEST_REQUIRE(c.CompleteSet(id, snaps, "{}").ok());
}

std::vector<std::string> SetIds(const std::vector<SetRecord>& sets) {
  std::vector<std::string> ids;
  for (const auto& s : sets) ids.push_back(s.set_id);
  return ids;
}

std::vector<std::string> SnapshotIds(const std::vector<SnapshotRecord>& snaps) {
  std::vector<std::string> ids;
  for (const auto& s : snaps) ids.push_back(s.snapshot_id);
  return ids;
}

// A second SQLite connection, as another program (or process) has.
struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using RawDb = std::unique_ptr<sqlite3, SqliteCloser>;

RawDb OpenRaw(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                           nullptr);
  RawDb owned(db);
  BOOST_TEST_REQUIRE(rc == SQLITE_OK);
  return owned;
}

void ExecRaw(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  BOOST_TEST_REQUIRE(rc == SQLITE_OK, sql << ": " << msg);
}

std::string TextRaw(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  BOOST_TEST_REQUIRE(sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK);
  std::string out;
  if (sqlite3_step(s) == SQLITE_ROW) out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

mode_t ModeOf(const std::filesystem::path& p) {
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_begun_set_reads_back_as_creating_with_its_planned_snapshots) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  SetRecord set = NewSet("set-1", 1000, {Snap("a", "/srv/db"), Snap("b", "/srv/logs")});
  set.timeline_json = R"({"events":[]})";
  BOOST_TEST_REQUIRE(c->BeginSet(set).ok());

  auto got = c->GetSet("set-1");
  BOOST_TEST_REQUIRE(got.ok(), got.status().ToString());
  BOOST_TEST(got->state == SetState::kCreating);
  BOOST_TEST(std::string(SetStateName(got->state)) == "creating");
  BOOST_TEST(got->created_ns == 1000);
  BOOST_TEST(got->context == uint32_t(SNAPSET_ATTR_PERSISTENT));
  BOOST_TEST(got->requestor_pid == 4242);
  BOOST_TEST(got->timeline_json == set.timeline_json);
  // In plan order, each filled in with its set id: enough to abort on every
  // provider after a crash.
  BOOST_TEST(SnapshotIds(got->snapshots) == (std::vector<std::string>{"a", "b"}),
             boost::test_tools::per_element());
  BOOST_TEST(got->snapshots[0].set_id == "set-1");
  BOOST_TEST(got->snapshots[1].volume == "/srv/logs");
  BOOST_TEST(got->snapshots[1].provider_name == "software-cow");
}

BOOST_AUTO_TEST_CASE(a_completed_set_reads_back_with_every_field) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  SetRecord set = NewSet("set-1", 1'700'000'000'123'456'789, {Snap("planned", "/srv/db")});
  set.context = SNAPSET_ATTR_PERSISTENT | SNAPSET_ATTR_NO_WRITERS;
  BOOST_TEST_REQUIRE(c->BeginSet(set).ok());

  // The provider's properties replace the plan: other ids, every field set,
  // attributes with the top bit to prove no sign is lost on the way.
  SnapshotRecord s1;
  s1.snapshot_id = "snap-1";
  s1.set_id = "set-1";
  s1.volume = "/srv/db";
  s1.provider_id = "22222222-2222-4222-8222-222222222222";
  s1.provider_name = "iscsi-array";
  s1.created_ns = 1'700'000'000'223'456'789;
  s1.attributes = SNAPSET_ATTR_HARDWARE_ASSISTED | SNAPSET_ATTR_READ_ONLY | 0x80000000u;
  s1.exposed_as = "iqn.2024-01.example:snap-1";
  s1.snapshot_device = "/dev/sdz";
  SnapshotRecord s2 = Snap("snap-2", "/srv/logs", 1'700'000'000'323'456'789);
  s2.set_id = "";  // may be left empty: the catalog fills it in
  const std::string timeline = R"({"start_realtime_ns":1,"events":[{"step":"commit"}]})";
  BOOST_TEST_REQUIRE(c->CompleteSet("set-1", {s1, s2}, timeline).ok());

  auto got = c->GetSet("set-1");
  BOOST_TEST_REQUIRE(got.ok(), got.status().ToString());
  BOOST_TEST(got->set_id == "set-1");
  BOOST_TEST(got->state == SetState::kComplete);
  BOOST_TEST(std::string(SetStateName(got->state)) == "complete");
  BOOST_TEST(got->created_ns == 1'700'000'000'123'456'789);
  BOOST_TEST(got->context == uint32_t(SNAPSET_ATTR_PERSISTENT | SNAPSET_ATTR_NO_WRITERS));
  BOOST_TEST(got->requestor_pid == 4242);
  BOOST_TEST(got->error == "");
  BOOST_TEST(got->timeline_json == timeline);
  BOOST_TEST_REQUIRE(got->snapshots.size() == 2u);
  const SnapshotRecord& r = got->snapshots[0];
  BOOST_TEST(r.snapshot_id == s1.snapshot_id);
  BOOST_TEST(r.set_id == "set-1");
  BOOST_TEST(r.volume == s1.volume);
  BOOST_TEST(r.provider_id == s1.provider_id);
  BOOST_TEST(r.provider_name == s1.provider_name);
  BOOST_TEST(r.created_ns == s1.created_ns);
  BOOST_TEST(r.attributes == s1.attributes);
  BOOST_TEST(r.exposed_as == s1.exposed_as);
  BOOST_TEST(r.snapshot_device == s1.snapshot_device);
  BOOST_TEST(got->snapshots[1].snapshot_id == "snap-2");
  BOOST_TEST(got->snapshots[1].set_id == "set-1");

  auto one = c->GetSnapshot("snap-1");
  BOOST_TEST_REQUIRE(one.ok(), one.status().ToString());
  BOOST_TEST(one->snapshot_device == "/dev/sdz");
  BOOST_TEST(one->attributes == s1.attributes);
  BOOST_TEST(c->GetSnapshot("planned").status().IsNotFound());
}

BOOST_AUTO_TEST_CASE(a_set_begun_without_a_time_is_stamped_now) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  const auto before = std::chrono::system_clock::now().time_since_epoch();
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("set-1", 0, {Snap("a", "/srv/db")})).ok());
  auto got = c->GetSet("set-1");
  BOOST_TEST_REQUIRE(got.ok());
  BOOST_TEST(got->created_ns >= std::chrono::nanoseconds(before).count());
  // A snapshot without its own time takes its set's, so age order holds.
  BOOST_TEST(got->snapshots[0].created_ns == got->created_ns);
}

BOOST_AUTO_TEST_CASE(beginning_a_set_id_that_exists_is_already_exists_in_every_state) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("creating", 1, {Snap("c1", "/v")})).ok());
  AddComplete(*c, "complete", 2, {"/v"});
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("aborted", 3, {Snap("a1", "/v")})).ok());
  BOOST_TEST_REQUIRE(c->AbortSet("aborted", "provider veto", "{}").ok());

  for (const std::string id : {"creating", "complete", "aborted"}) {
    BOOST_TEST_CONTEXT("set " << id) {
      // New snapshot ids, so only the set id collides.
      Status st = c->BeginSet(NewSet(id, 9, {Snap(id + "-new", "/w")}));
      BOOST_TEST(st.Is(Code::kAlreadyExists), st.ToString());
      BOOST_TEST(Contains(st.message(), id));
      BOOST_TEST(c->GetSnapshot(id + "-new").status().IsNotFound());
    }
  }
  auto first = c->GetSet("creating");
  BOOST_TEST_REQUIRE(first.ok());
  BOOST_TEST(first->created_ns == 1);  // untouched by the rejected retry
}

BOOST_AUTO_TEST_CASE(a_snapshot_id_already_in_the_catalog_is_refused_and_leaves_nothing) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  AddComplete(*c, "set-1", 1, {"/v"});  // snapshot "set-1-0"
  Status st = c->BeginSet(NewSet("set-2", 2, {Snap("fresh", "/w"), Snap("set-1-0", "/w")}));
  BOOST_TEST(st.Is(Code::kAlreadyExists), st.ToString());
  BOOST_TEST(Contains(st.message(), "set-1-0"));
  BOOST_TEST(Contains(st.message(), c->path()));
  // All or nothing: neither the set row nor the first snapshot stayed.
  BOOST_TEST(c->GetSet("set-2").status().IsNotFound());
  auto all = c->ListSets(true);
  BOOST_TEST_REQUIRE(all.ok());
  BOOST_TEST(all->size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_failed_complete_leaves_the_set_creating_as_it_was) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  AddComplete(*c, "old", 1, {"/v"});  // snapshot "old-0"
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("new", 2, {Snap("planned", "/v")})).ok());
  Status st = c->CompleteSet("new", {Snap("new-0", "/v"), Snap("old-0", "/v")}, "{}");
  BOOST_TEST(st.Is(Code::kAlreadyExists), st.ToString());
  auto got = c->GetSet("new");
  BOOST_TEST_REQUIRE(got.ok());
  BOOST_TEST(got->state == SetState::kCreating);
  BOOST_TEST(SnapshotIds(got->snapshots) == std::vector<std::string>{"planned"},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(bad_records_are_invalid_arguments_and_store_nothing) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  BOOST_TEST(c->BeginSet(NewSet("", 1)).IsInvalidArgument());
  SetRecord complete = NewSet("s", 1);
  complete.state = SetState::kComplete;
  BOOST_TEST(c->BeginSet(complete).IsInvalidArgument());
  BOOST_TEST(c->BeginSet(NewSet("s", 1, {Snap("", "/v")})).IsInvalidArgument());
  SnapshotRecord foreign = Snap("x", "/v");
  foreign.set_id = "another-set";
  Status st = c->BeginSet(NewSet("s", 1, {foreign}));
  BOOST_TEST(st.IsInvalidArgument());
  BOOST_TEST(Contains(st.message(), "another-set"));
  auto all = c->ListSets(true);
  BOOST_TEST_REQUIRE(all.ok());
  BOOST_TEST(all->empty());

  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("s", 1, {Snap("x", "/v")})).ok());
  BOOST_TEST(c->CompleteSet("s", {}, "{}").IsInvalidArgument());
  BOOST_TEST(c->CompleteSet("s", {foreign}, "{}").IsInvalidArgument());
  BOOST_TEST(c->GetSet("s")->state == SetState::kCreating);
}

// Every state of a set x each of the two ending events.
// Every state of a set x each of the three ending events.
BOOST_AUTO_TEST_CASE(complete_and_abort_follow_the_set_state_machine) {
  enum class Start { kMissing, kCreating, kComplete, kAborted, kAbortIncomplete };
  enum class Event { kComplete, kAbort, kAbortIncomplete };
  struct Case {
    Start start;
    Event event;
    Code expected;
    SetState after;  // when the set exists
  };
  const Case cases[] = {
      {Start::kMissing, Event::kComplete, Code::kNotFound, SetState::kCreating},
      {Start::kMissing, Event::kAbort, Code::kNotFound, SetState::kCreating},
      {Start::kMissing, Event::kAbortIncomplete, Code::kNotFound, SetState::kCreating},
      {Start::kCreating, Event::kComplete, Code::kOk, SetState::kComplete},
      {Start::kCreating, Event::kAbort, Code::kOk, SetState::kAborted},
      {Start::kCreating, Event::kAbortIncomplete, Code::kOk, SetState::kAbortIncomplete},
      {Start::kComplete, Event::kComplete, Code::kBadState, SetState::kComplete},
      {Start::kComplete, Event::kAbort, Code::kBadState, SetState::kComplete},
      {Start::kComplete, Event::kAbortIncomplete, Code::kBadState, SetState::kComplete},
      {Start::kAborted, Event::kComplete, Code::kBadState, SetState::kAborted},
      {Start::kAborted, Event::kAbort, Code::kOk, SetState::kAborted},  // idempotent
      // An abort that ended cannot become incomplete again.
      {Start::kAborted, Event::kAbortIncomplete, Code::kBadState, SetState::kAborted},
      {Start::kAbortIncomplete, Event::kComplete, Code::kBadState, SetState::kAbortIncomplete},
      {Start::kAbortIncomplete, Event::kAbort, Code::kOk, SetState::kAborted},  // a retry worked
      {Start::kAbortIncomplete, Event::kAbortIncomplete, Code::kOk,
       SetState::kAbortIncomplete},  // a retry failed again
  };
  const std::vector<LeftoverRecord> left = {{"p-id", "array", "replica snapset-s on a1"}};
  int n = 0;
  for (const Case& k : cases) {
    BOOST_TEST_CONTEXT("case " << n++) {
      TempDir dir;
      auto c = OpenOrDie(dir.str());
      const std::string id = "set";
      if (k.start != Start::kMissing)
        BOOST_TEST_REQUIRE(c->BeginSet(NewSet(id, 1, {Snap("p", "/v")})).ok());
      if (k.start == Start::kComplete)
        BOOST_TEST_REQUIRE(c->CompleteSet(id, {Snap("s", "/v")}, "{}").ok());
      if (k.start == Start::kAborted) BOOST_TEST_REQUIRE(c->AbortSet(id, "why", "{}").ok());
      if (k.start == Start::kAbortIncomplete)
        BOOST_TEST_REQUIRE(c->RecordAbortIncomplete(id, "why", left, "{}").ok());

      Status st = k.event == Event::kComplete ? c->CompleteSet(id, {Snap("s2", "/v")}, "{}")
                  : k.event == Event::kAbort  ? c->AbortSet(id, "again", "{}")
                                              : c->RecordAbortIncomplete(id, "again", left, "{}");
      BOOST_TEST(int(st.code()) == int(k.expected), st.ToString());
      if (!st.ok()) {
        BOOST_TEST(Contains(st.message(), id));
        BOOST_TEST(Contains(st.message(), c->path()));
      }
      if (k.start != Start::kMissing) {
        auto got = c->GetSet(id);
        BOOST_TEST_REQUIRE(got.ok());
        BOOST_TEST(got->state == k.after);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(an_incomplete_abort_keeps_the_plan_and_what_remains_until_it_is_retried) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("set-1", 1, {Snap("a", "/v"), Snap("b", "/w")})).ok());
  const std::vector<LeftoverRecord> left = {
      {"id-1", "array", "array a1: replica snapset-a is still there: 503"},
      {"id-2", "software-cow", "snapset-cowd at /run/x.sock did not answer"}};
  BOOST_TEST_REQUIRE(c->RecordAbortIncomplete("set-1", "commit failed", left, R"({"n":1})").ok());
  BOOST_TEST(!c->RecordAbortIncomplete("set-1", "x", {}, "").ok());  // needs a leftover

  auto got = c->GetSet("set-1");
  BOOST_TEST_REQUIRE(got.ok());
  BOOST_TEST(std::string(SetStateName(got->state)) == "abort-incomplete");
  BOOST_TEST(got->error == "commit failed");
  BOOST_TEST(SnapshotIds(got->snapshots) == (std::vector<std::string>{"a", "b"}),
             boost::test_tools::per_element());
  BOOST_TEST_REQUIRE(got->leftovers.size() == 2u);
  BOOST_TEST(got->leftovers[0].provider_id == "id-1");
  BOOST_TEST(got->leftovers[0].provider_name == "array");
  BOOST_TEST(got->leftovers[1].detail == "snapset-cowd at /run/x.sock did not answer");
  // Its snapshots are no user's: not listed, not managed.
  BOOST_TEST(c->GetSnapshot("a").status().IsNotFound());
  BOOST_TEST(c->DeleteSnapshot("a").IsBadState());
  BOOST_TEST(SetIds(*c->ListSets()).empty());

  // A retry that fails on one provider only replaces the leftovers.
  BOOST_TEST_REQUIRE(c->RecordAbortIncomplete("set-1", "retry", {left[1]}, "").ok());
  got = c->GetSet("set-1");
  BOOST_TEST(got->error == "commit failed");
  BOOST_TEST(got->timeline_json == R"({"n":1})");
  BOOST_TEST_REQUIRE(got->leftovers.size() == 1u);
  BOOST_TEST(got->leftovers[0].provider_name == "software-cow");

  // The retry that works ends it.
  BOOST_TEST_REQUIRE(c->AbortSet("set-1", "", "").ok());
  got = c->GetSet("set-1");
  BOOST_TEST(got->state == SetState::kAborted);
  BOOST_TEST(got->error == "commit failed");
  BOOST_TEST(got->snapshots.empty());
  BOOST_TEST(got->leftovers.empty());
}

BOOST_AUTO_TEST_CASE(aborting_drops_the_snapshots_but_keeps_the_reason_and_timeline) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("set-1", 1, {Snap("a", "/v"), Snap("b", "/w")})).ok());
  const std::string timeline = R"({"events":[{"step":"commit_snapshots","detail":"timeout"}]})";
  BOOST_TEST_REQUIRE(c->AbortSet("set-1", "hold-writes-timeout: 10 s passed", timeline).ok());

  auto got = c->GetSet("set-1");
  BOOST_TEST_REQUIRE(got.ok());
  BOOST_TEST(got->state == SetState::kAborted);
  BOOST_TEST(std::string(SetStateName(got->state)) == "aborted");
  BOOST_TEST(got->error == "hold-writes-timeout: 10 s passed");
  BOOST_TEST(got->timeline_json == timeline);
  BOOST_TEST(got->snapshots.empty());
  BOOST_TEST(c->GetSnapshot("a").status().IsNotFound());
  auto on_v = c->SnapshotsOfVolume("/v");
  BOOST_TEST_REQUIRE(on_v.ok());
  BOOST_TEST(on_v->empty());
  // The ids are free again for a retry under a new set id.
  BOOST_TEST(c->BeginSet(NewSet("set-2", 2, {Snap("a", "/v")})).ok());
}

BOOST_AUTO_TEST_CASE(a_second_abort_keeps_the_first_reason_and_the_newer_timeline) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("set-1", 1, {Snap("a", "/v")})).ok());
  BOOST_TEST_REQUIRE(c->AbortSet("set-1", "writer-failed: db", R"({"n":1})").ok());
  BOOST_TEST_REQUIRE(c->AbortSet("set-1", "aborted by recovery", R"({"n":2})").ok());
  auto got = c->GetSet("set-1");
  BOOST_TEST_REQUIRE(got.ok());
  BOOST_TEST(got->error == "writer-failed: db");
  BOOST_TEST(got->timeline_json == R"({"n":2})");
  // An empty timeline does not erase the one recorded.
  BOOST_TEST_REQUIRE(c->AbortSet("set-1", "", "").ok());
  BOOST_TEST(c->GetSet("set-1")->timeline_json == R"({"n":2})");
}

BOOST_AUTO_TEST_CASE(list_sets_shows_complete_sets_newest_first_or_every_set_when_asked) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  AddComplete(*c, "old", 100, {"/v"});
  AddComplete(*c, "new", 300, {"/v", "/w"});
  AddComplete(*c, "tie-b", 200, {"/v"});
  AddComplete(*c, "tie-a", 200, {"/v"});  // same time: set id decides
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("running", 400, {Snap("r", "/v")})).ok());
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("failed", 50, {Snap("f", "/v")})).ok());
  BOOST_TEST_REQUIRE(c->AbortSet("failed", "veto", "{}").ok());

  auto complete = c->ListSets();
  BOOST_TEST_REQUIRE(complete.ok());
  BOOST_TEST(SetIds(*complete) == (std::vector<std::string>{"new", "tie-a", "tie-b", "old"}),
             boost::test_tools::per_element());
  BOOST_TEST((*complete)[0].snapshots.size() == 2u);  // each set carries its snapshots

  auto all = c->ListSets(true);
  BOOST_TEST_REQUIRE(all.ok());
  BOOST_TEST(SetIds(*all) ==
                 (std::vector<std::string>{"running", "new", "tie-a", "tie-b", "old", "failed"}),
             boost::test_tools::per_element());
  BOOST_TEST((*all)[0].snapshots.size() == 1u);  // a creating set shows its plan
  BOOST_TEST((*all)[5].error == "veto");
}

BOOST_AUTO_TEST_CASE(
    list_unfinished_returns_the_sets_left_creating_or_abort_incomplete_oldest_first) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("late", 300, {Snap("l1", "/v"), Snap("l2", "/w")})).ok());
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("early", 100, {Snap("e1", "/v")})).ok());
  AddComplete(*c, "done", 200, {"/v"});
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("failed", 150, {Snap("f1", "/v")})).ok());
  BOOST_TEST_REQUIRE(c->AbortSet("failed", "veto", "{}").ok());
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("stuck", 120, {Snap("s1", "/v")})).ok());
  BOOST_TEST_REQUIRE(c->RecordAbortIncomplete("stuck", "veto", {{"i", "p", "d"}}, "{}").ok());

  auto creating = c->ListUnfinished();
  BOOST_TEST_REQUIRE(creating.ok());
  BOOST_TEST(SetIds(*creating) == (std::vector<std::string>{"early", "stuck", "late"}),
             boost::test_tools::per_element());
  // What recovery needs to abort each planned snapshot on its provider.
  const SnapshotRecord& s = (*creating)[2].snapshots.at(1);
  BOOST_TEST(s.snapshot_id == "l2");
  BOOST_TEST(s.volume == "/w");
  BOOST_TEST(s.provider_id == "11111111-1111-4111-8111-111111111111");
  BOOST_TEST((*creating)[2].requestor_pid == 4242);
}

BOOST_AUTO_TEST_CASE(snapshots_of_a_volume_are_oldest_first_from_complete_sets_only) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  AddComplete(*c, "s3", 300, {"/v"});
  AddComplete(*c, "s1", 100, {"/w", "/v"});
  AddComplete(*c, "s2", 200, {"/w"});
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("creating", 50, {Snap("c", "/v")})).ok());
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("aborted", 60, {Snap("a", "/v")})).ok());
  BOOST_TEST_REQUIRE(c->AbortSet("aborted", "veto", "{}").ok());

  auto v = c->SnapshotsOfVolume("/v");
  BOOST_TEST_REQUIRE(v.ok());
  BOOST_TEST(SnapshotIds(*v) == (std::vector<std::string>{"s1-1", "s3-0"}),
             boost::test_tools::per_element());
  auto w = c->SnapshotsOfVolume("/w");
  BOOST_TEST_REQUIRE(w.ok());
  BOOST_TEST(SnapshotIds(*w) == (std::vector<std::string>{"s1-0", "s2-0"}),
             boost::test_tools::per_element());
  auto none = c->SnapshotsOfVolume("/nowhere");
  BOOST_TEST_REQUIRE(none.ok());
  BOOST_TEST(none->empty());
}

BOOST_AUTO_TEST_CASE(deleting_snapshots_keeps_their_set_until_the_last_one_goes) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  AddComplete(*c, "set", 1, {"/v", "/w"});
  BOOST_TEST_REQUIRE(c->DeleteSnapshot("set-0").ok());
  auto got = c->GetSet("set");
  BOOST_TEST_REQUIRE(got.ok());
  BOOST_TEST(SnapshotIds(got->snapshots) == std::vector<std::string>{"set-1"},
             boost::test_tools::per_element());
  BOOST_TEST(c->GetSnapshot("set-0").status().IsNotFound());

  BOOST_TEST_REQUIRE(c->DeleteSnapshot("set-1").ok());
  BOOST_TEST(c->GetSet("set").status().IsNotFound());
  auto all = c->ListSets(true);
  BOOST_TEST_REQUIRE(all.ok());
  BOOST_TEST(all->empty());
}

BOOST_AUTO_TEST_CASE(deleting_an_unknown_snapshot_or_one_of_a_set_in_progress_is_refused) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  Status st = c->DeleteSnapshot("nope");
  BOOST_TEST(st.IsNotFound(), st.ToString());
  BOOST_TEST(Contains(st.message(), "nope"));

  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("running", 1, {Snap("p", "/v")})).ok());
  st = c->DeleteSnapshot("p");
  BOOST_TEST(st.IsBadState(), st.ToString());
  BOOST_TEST(Contains(st.message(), "running"));
  BOOST_TEST(c->GetSet("running")->snapshots.size() == 1u);
}

BOOST_AUTO_TEST_CASE(delete_set_removes_a_set_and_its_snapshots_in_any_state) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  AddComplete(*c, "complete", 1, {"/v", "/w"});
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("creating", 2, {Snap("c", "/v")})).ok());
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("aborted", 3, {Snap("a", "/v")})).ok());
  BOOST_TEST_REQUIRE(c->AbortSet("aborted", "veto", "{}").ok());

  for (const std::string id : {"complete", "creating", "aborted"}) {
    BOOST_TEST_CONTEXT("set " << id) {
      BOOST_TEST(c->DeleteSet(id).ok());
      BOOST_TEST(c->GetSet(id).status().IsNotFound());
      Status again = c->DeleteSet(id);
      BOOST_TEST(again.IsNotFound());
      BOOST_TEST(Contains(again.message(), id));
    }
  }
  BOOST_TEST(c->GetSnapshot("complete-0").status().IsNotFound());
  BOOST_TEST(c->SnapshotsOfVolume("/v")->empty());
  // The snapshot ids are free again: no orphan rows were left.
  BOOST_TEST(c->BeginSet(NewSet("reuse", 4, {Snap("complete-0", "/v"), Snap("c", "/v")})).ok());
}

BOOST_AUTO_TEST_CASE(set_exposed_records_and_clears_where_a_snapshot_is_exposed) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  AddComplete(*c, "set", 1, {"/v"});
  BOOST_TEST_REQUIRE(c->SetExposed("set-0", "/run/snapset/expose/set-0").ok());
  BOOST_TEST(c->GetSnapshot("set-0")->exposed_as == "/run/snapset/expose/set-0");
  BOOST_TEST(c->GetSet("set")->snapshots[0].exposed_as == "/run/snapset/expose/set-0");
  BOOST_TEST_REQUIRE(c->SetExposed("set-0", "").ok());
  BOOST_TEST(c->GetSnapshot("set-0")->exposed_as == "");

  BOOST_TEST(c->SetExposed("nope", "/x").IsNotFound());
  BOOST_TEST_REQUIRE(c->BeginSet(NewSet("running", 2, {Snap("p", "/v")})).ok());
  BOOST_TEST(c->SetExposed("p", "/x").IsBadState());
}

BOOST_AUTO_TEST_CASE(everything_survives_closing_and_reopening_the_catalog) {
  TempDir dir;
  std::string path;
  {
    auto c = OpenOrDie(dir.str());
    path = c->path();
    AddComplete(*c, "complete", 100, {"/v", "/w"});
    BOOST_TEST_REQUIRE(c->SetExposed("complete-1", "/dev/sdq").ok());
    BOOST_TEST_REQUIRE(c->BeginSet(NewSet("creating", 200, {Snap("p", "/v")})).ok());
    BOOST_TEST_REQUIRE(c->BeginSet(NewSet("aborted", 300, {Snap("a", "/v")})).ok());
    BOOST_TEST_REQUIRE(c->AbortSet("aborted", "veto: no space", R"({"x":1})").ok());
  }
  BOOST_TEST(path == (dir.path() / "catalog.db").string());

  auto c = OpenOrDie(dir.str());
  auto all = c->ListSets(true);
  BOOST_TEST_REQUIRE(all.ok());
  BOOST_TEST(SetIds(*all) == (std::vector<std::string>{"aborted", "creating", "complete"}),
             boost::test_tools::per_element());
  BOOST_TEST((*all)[0].error == "veto: no space");
  BOOST_TEST((*all)[0].timeline_json == R"({"x":1})");
  BOOST_TEST((*all)[1].state == SetState::kCreating);
  BOOST_TEST(SnapshotIds((*all)[2].snapshots) ==
                 (std::vector<std::string>{"complete-0", "complete-1"}),
             boost::test_tools::per_element());
  BOOST_TEST((*all)[2].snapshots[1].exposed_as == "/dev/sdq");
  BOOST_TEST((*all)[2].snapshots[1].volume_device == "naa.6complete-1");

  // WAL is a property of the file, seen by any other connection to it.
  RawDb raw = OpenRaw(path);
  BOOST_TEST(TextRaw(raw.get(), "PRAGMA journal_mode") == "wal");
  BOOST_TEST(TextRaw(raw.get(), "PRAGMA user_version") == "5");
}

BOOST_AUTO_TEST_CASE(two_catalogs_on_one_file_see_each_others_commits) {
  TempDir dir;
  auto a = OpenOrDie(dir.str());
  auto b = OpenOrDie(dir.str());
  BOOST_TEST_REQUIRE(a->BeginSet(NewSet("set", 1, {Snap("p", "/v")})).ok());
  auto seen = b->GetSet("set");
  BOOST_TEST_REQUIRE(seen.ok(), seen.status().ToString());
  BOOST_TEST(seen->state == SetState::kCreating);

  BOOST_TEST_REQUIRE(b->CompleteSet("set", {Snap("s", "/v")}, "{}").ok());
  BOOST_TEST(a->GetSet("set")->state == SetState::kComplete);
  // The loser of a race on one set id learns it from the other's commit.
  BOOST_TEST(a->BeginSet(NewSet("set", 2)).Is(Code::kAlreadyExists));

  BOOST_TEST_REQUIRE(a->DeleteSnapshot("s").ok());
  BOOST_TEST(b->GetSet("set").status().IsNotFound());
}

BOOST_AUTO_TEST_CASE(calls_from_many_threads_on_one_catalog_all_land) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  constexpr int kThreads = 8, kPerThread = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        std::vector<SnapshotRecord> snaps = {Snap(id + "-s", "/v", i + 1)};
        if (!c->BeginSet(NewSet(id, i + 1, snaps)).ok()) ++failures;
        if (!c->CompleteSet(id, snaps, "{}").ok()) ++failures;
        if (!c->ListSets().ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(c->ListSets()->size() == size_t(kThreads * kPerThread));
  BOOST_TEST(c->SnapshotsOfVolume("/v")->size() == size_t(kThreads * kPerThread));
}

BOOST_AUTO_TEST_CASE(a_writer_waits_for_another_process_lock_then_succeeds) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  RawDb other = OpenRaw(c->path());
  ExecRaw(other.get(), "BEGIN IMMEDIATE");  // holds the write lock
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ExecRaw(other.get(), "COMMIT");
  });
  Status st = c->BeginSet(NewSet("set", 1, {Snap("p", "/v")}));
  release.join();
  BOOST_TEST(st.ok(), st.ToString());
  BOOST_TEST(c->GetSet("set").ok());
}

// Waits out the full 5-second busy timeout.
BOOST_AUTO_TEST_CASE(a_lock_held_past_the_busy_timeout_is_unavailable_and_changes_nothing) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  RawDb other = OpenRaw(c->path());
  ExecRaw(other.get(), "BEGIN IMMEDIATE");
  Status st = c->BeginSet(NewSet("set", 1, {Snap("p", "/v")}));
  BOOST_TEST(st.Is(Code::kUnavailable), st.ToString());
  BOOST_TEST(Contains(st.message(), c->path()));
  BOOST_TEST(Contains(st.message(), "begin set set"));
  // Readers are not blocked by a writer in WAL mode.
  BOOST_TEST(c->GetSet("set").status().IsNotFound());
  ExecRaw(other.get(), "ROLLBACK");
  BOOST_TEST(c->BeginSet(NewSet("set", 1, {Snap("p", "/v")})).ok());
}

BOOST_AUTO_TEST_CASE(a_file_that_is_not_a_database_is_refused_by_name_and_left_untouched) {
  TempDir dir;
  std::string junk;
  for (int i = 0; i < 200; ++i) junk += "these are my notes, not a database\n";
  const std::string path = dir.Write("catalog.db", junk);
  auto c = Catalog::Open(dir.str());
  BOOST_TEST_REQUIRE(!c.ok());
  BOOST_TEST(c.status().Is(Code::kInternal), c.status().ToString());
  BOOST_TEST(Contains(c.status().message(), path));
  BOOST_TEST(Contains(c.status().message(), "not a SQLite database"));
  BOOST_TEST(Contains(c.status().message(), "move it aside"));
  BOOST_TEST(ReadFile(path) == junk);
}

BOOST_AUTO_TEST_CASE(a_sqlite_database_of_another_program_is_refused_and_left_untouched) {
  TempDir dir;
  const std::string path = (dir.path() / "catalog.db").string();
  {
    RawDb raw = OpenRaw(path);
    ExecRaw(raw.get(), "CREATE TABLE customers (name TEXT); INSERT INTO customers VALUES ('x')");
  }
  auto c = Catalog::Open(dir.str());
  BOOST_TEST_REQUIRE(!c.ok());
  BOOST_TEST(c.status().Is(Code::kInternal), c.status().ToString());
  BOOST_TEST(Contains(c.status().message(), path));
  BOOST_TEST(Contains(c.status().message(), "not a snapset catalog"));
  RawDb raw = OpenRaw(path);
  BOOST_TEST(TextRaw(raw.get(), "PRAGMA journal_mode") == "delete");  // not switched to WAL
  BOOST_TEST(TextRaw(raw.get(), "SELECT name FROM customers") == "x");
}

BOOST_AUTO_TEST_CASE(a_catalog_of_another_schema_version_is_refused_with_what_to_do) {
  TempDir dir;
  std::string path;
  {
    auto c = OpenOrDie(dir.str());
    path = c->path();
    AddComplete(*c, "set", 1, {"/v"});
  }
  {
    RawDb raw = OpenRaw(path);
    ExecRaw(raw.get(), "PRAGMA user_version = 6");
  }
  auto c = Catalog::Open(dir.str());
  BOOST_TEST_REQUIRE(!c.ok());
  BOOST_TEST(c.status().Is(Code::kInternal), c.status().ToString());
  BOOST_TEST(Contains(c.status().message(), path));
  BOOST_TEST(Contains(c.status().message(), "schema version 6"));
  BOOST_TEST(Contains(c.status().message(), "snapset release that wrote it"));
}

// What snapset wrote before abort-incomplete existed.
constexpr char kSchema1[] = R"sql(
CREATE TABLE sets (
  set_id        TEXT PRIMARY KEY NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('creating', 'complete', 'aborted')),
  created_ns    INTEGER NOT NULL,
  context       INTEGER NOT NULL,
  requestor_pid INTEGER NOT NULL,
  error         TEXT NOT NULL,
  timeline_json TEXT NOT NULL
);
CREATE INDEX sets_by_state ON sets (state, created_ns);
CREATE TABLE snapshots (
  snapshot_id     TEXT PRIMARY KEY NOT NULL,
  set_id          TEXT NOT NULL REFERENCES sets (set_id) ON DELETE CASCADE,
  ordinal         INTEGER NOT NULL,
  volume          TEXT NOT NULL,
  provider_id     TEXT NOT NULL,
  provider_name   TEXT NOT NULL,
  created_ns      INTEGER NOT NULL,
  attributes      INTEGER NOT NULL,
  exposed_as      TEXT NOT NULL,
  snapshot_device TEXT NOT NULL,
  UNIQUE (set_id, ordinal)
);
CREATE INDEX snapshots_by_volume ON snapshots (volume, created_ns);
PRAGMA application_id = 1397641299;
PRAGMA user_version = 1;
INSERT INTO sets VALUES ('done', 'complete', 100, 0, 1, '', '{}');
INSERT INTO sets VALUES ('running', 'creating', 200, 0, 1, '', '{}');
INSERT INTO snapshots VALUES ('d1', 'done', 0, '/v', 'pid', 'p', 100, 0, '/dev/sdq', '');
INSERT INTO snapshots VALUES ('r1', 'running', 0, '/v', 'pid', 'p', 200, 0, '', '');
)sql";

BOOST_AUTO_TEST_CASE(a_schema_1_catalog_is_migrated_in_place_with_every_set_kept) {
  TempDir dir;
  const std::string path = (dir.path() / "catalog.db").string();
  {
    RawDb raw = OpenRaw(path);
    ExecRaw(raw.get(), kSchema1);
  }
  auto c = OpenOrDie(dir.str());
  auto all = c->ListSets(true);
  BOOST_TEST_REQUIRE(all.ok());
  BOOST_TEST(SetIds(*all) == (std::vector<std::string>{"running", "done"}),
             boost::test_tools::per_element());
  BOOST_TEST((*all)[1].snapshots.at(0).exposed_as == "/dev/sdq");
  BOOST_TEST((*all)[0].snapshots.at(0).snapshot_id == "r1");
  // The new state is accepted, and the snapshots still follow their set.
  BOOST_TEST_REQUIRE(c->RecordAbortIncomplete("running", "x", {{"i", "p", "d"}}, "{}").ok());
  BOOST_TEST_REQUIRE(c->DeleteSet("done").ok());
  BOOST_TEST(c->GetSnapshot("d1").status().IsNotFound());
  RawDb raw = OpenRaw(path);
  BOOST_TEST(TextRaw(raw.get(), "PRAGMA user_version") == "5");
  BOOST_TEST(TextRaw(raw.get(), "SELECT count(*) FROM snapshots") == "1");
  BOOST_TEST(TextRaw(raw.get(), "PRAGMA foreign_key_check") == "");
}

BOOST_AUTO_TEST_CASE(a_complete_set_keeps_its_writers_metadata_and_backup_blobs_in_order) {
  TempDir dir;
  auto c = OpenOrDie(dir.str());
  SetRecord set;
  set.set_id = "s";
  set.snapshots = {{"a", "", "/v", "p", "prov", 0, 0, "", ""}};
  BOOST_TEST_REQUIRE(c->BeginSet(set).ok());
  const std::vector<WriterRecord> writers = {
      {"pg", "process", "waiting-for-backup-complete", R"({"name":"postgresql"})",
       R"({"backup_label":"START WAL LOCATION: 0/2000028"})"},
      {"hooks", "hook", "waiting-for-backup-complete", "", ""}};
  BOOST_TEST_REQUIRE(c->CompleteSet("s", set.snapshots, "{}", writers).ok());
  auto got = c->GetSet("s");
  BOOST_TEST_REQUIRE(got.ok());
  BOOST_TEST_REQUIRE(got->writers.size() == 2u);
  BOOST_TEST(got->writers[0].name == "pg");
  BOOST_TEST(got->writers[0].backup_blob_json == writers[0].backup_blob_json);
  BOOST_TEST(got->writers[0].metadata_json == writers[0].metadata_json);
  BOOST_TEST(got->writers[1].kind == "hook");
  BOOST_TEST(got->writers[1].backup_blob_json == "{}");
  // Deleting the set deletes its writers.
  BOOST_TEST_REQUIRE(c->DeleteSet("s").ok());
  RawDb raw = OpenRaw(c->path());
  BOOST_TEST(TextRaw(raw.get(), "SELECT count(*) FROM set_writers") == "0");
}

BOOST_AUTO_TEST_CASE(a_schema_2_catalog_gains_the_writers_table_with_every_set_kept) {
  TempDir dir;
  std::string path;
  {
    auto c = OpenOrDie(dir.str());
    path = c->path();
    AddComplete(*c, "set", 1, {"/v"});
  }
  {
    RawDb raw = OpenRaw(path);
    ExecRaw(raw.get(),
            "DROP TABLE set_writers; ALTER TABLE snapshots DROP COLUMN volume_device; "
            "ALTER TABLE snapshots DROP COLUMN lost_reason; "
            "ALTER TABLE snapshots DROP COLUMN lost_ns; PRAGMA user_version = 2");
  }
  auto c = OpenOrDie(dir.str());
  auto set = c->GetSet("set");
  BOOST_TEST_REQUIRE(set.ok(), set.status().ToString());
  BOOST_TEST(set->writers.empty());
  RawDb raw = OpenRaw(path);
  BOOST_TEST(TextRaw(raw.get(), "PRAGMA user_version") == "5");
}

BOOST_AUTO_TEST_CASE(a_schema_3_catalog_gains_each_snapshots_device_unknown_for_the_old_ones) {
  TempDir dir;
  std::string path;
  {
    auto c = OpenOrDie(dir.str());
    path = c->path();
    AddComplete(*c, "set", 1, {"/v"});
  }
  {
    RawDb raw = OpenRaw(path);
    ExecRaw(raw.get(),
            "ALTER TABLE snapshots DROP COLUMN volume_device; ALTER TABLE snapshots DROP COLUMN "
            "lost_reason; ALTER TABLE snapshots DROP COLUMN lost_ns; PRAGMA user_version = 3");
  }
  auto c = OpenOrDie(dir.str());
  auto set = c->GetSet("set");
  BOOST_TEST_REQUIRE(set.ok(), set.status().ToString());
  BOOST_TEST_REQUIRE(set->snapshots.size() == 1u);
  BOOST_TEST(set->snapshots[0].volume == "/v");
  BOOST_TEST(set->snapshots[0].volume_device == "");
  AddComplete(*c, "next", 2, {"/v"});
  auto next = c->GetSet("next");
  BOOST_TEST_REQUIRE(next.ok(), next.status().ToString());
  BOOST_TEST(next->snapshots[0].volume_device == "naa.6next-0");
  RawDb raw = OpenRaw(path);
  BOOST_TEST(TextRaw(raw.get(), "PRAGMA user_version") == "5");
}

BOOST_AUTO_TEST_CASE(a_schema_4_catalog_gains_lost_snapshots_and_the_first_reason_stays) {
  TempDir dir;
  std::string path;
  {
    auto c = OpenOrDie(dir.str());
    path = c->path();
    AddComplete(*c, "set", 1, {"/v", "/w"});
  }
  {
    RawDb raw = OpenRaw(path);
    ExecRaw(raw.get(),
            "ALTER TABLE snapshots DROP COLUMN lost_reason; ALTER TABLE snapshots DROP COLUMN "
            "lost_ns; PRAGMA user_version = 4");
  }
  auto c = OpenOrDie(dir.str());
  auto set = c->GetSet("set");
  BOOST_TEST_REQUIRE(set.ok(), set.status().ToString());
  BOOST_TEST_REQUIRE(set->snapshots.size() == 2u);
  for (const auto& s : set->snapshots) BOOST_TEST((s.lost_reason.empty() && s.lost_ns == 0));
  const std::string id = set->snapshots[0].snapshot_id;
  BOOST_TEST_REQUIRE(c->MarkLost(id, "deleted by overflow").ok());
  BOOST_TEST_REQUIRE(c->MarkLost(id, "not listed").ok());  // a later look says less
  BOOST_TEST(c->MarkLost("no-such-snapshot", "x").ok());
  auto lost = c->GetSnapshot(id);
  BOOST_TEST_REQUIRE(lost.ok(), lost.status().ToString());
  BOOST_TEST(lost->lost_reason == "deleted by overflow");
  BOOST_TEST(lost->lost_ns > 0);
  auto other = c->GetSnapshot(set->snapshots[1].snapshot_id);
  BOOST_TEST_REQUIRE(other.ok());
  BOOST_TEST(other->lost_ns == 0);
  RawDb raw = OpenRaw(path);
  BOOST_TEST(TextRaw(raw.get(), "PRAGMA user_version") == "5");
}

BOOST_AUTO_TEST_CASE(a_missing_state_directory_is_created_private_to_its_owner) {
  TempDir dir;
  const auto state = dir.path() / "var" / "lib" / "snapset";
  const mode_t old_umask = ::umask(0);  // a permissive umask must not widen it
  auto c = Catalog::Open(state.string() + "/");
  ::umask(old_umask);
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST(ModeOf(state) == mode_t(0700));
  BOOST_TEST((*c)->path() == (state / "catalog.db").string());
  BOOST_TEST(std::filesystem::exists(state / "catalog.db"));
}

BOOST_AUTO_TEST_CASE(an_existing_state_directory_keeps_the_mode_its_administrator_chose) {
  TempDir dir;
  const auto state = dir.path() / "state";
  std::filesystem::create_directory(state);
  ::chmod(state.c_str(), 0750);
  auto c = Catalog::Open(state.string());
  BOOST_TEST_REQUIRE(c.ok(), c.status().ToString());
  BOOST_TEST(ModeOf(state) == mode_t(0750));
}

BOOST_AUTO_TEST_CASE(a_state_directory_that_is_a_file_is_refused_by_name) {
  TempDir dir;
  const std::string file = dir.Write("state", "x");
  auto c = Catalog::Open(file);
  BOOST_TEST_REQUIRE(!c.ok());
  BOOST_TEST(c.status().Is(Code::kUnavailable), c.status().ToString());
  BOOST_TEST(Contains(c.status().message(), file));
}
