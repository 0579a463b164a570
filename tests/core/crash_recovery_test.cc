// Crash recovery: the coordinator is killed (SIGKILL) between each pair of
// phases of a set's creation, and the next start must leave the catalog and
// every provider consistent: the set aborted with the reason, nothing of it
// on any provider (prepared or complete), the volumes free for a new set,
// and a held filesystem thawed.
//
// The crash comes from inside: a scripted provider with "crash_in" kills the
// process it runs in (the coordinator) right after doing its work in that
// event. Both providers keep their snapshots in a "state_dir", so the test
// can see what the dead process left on them, and so can the provider
// instance of the next start.
#define BOOST_TEST_MODULE crash_recovery
#include <boost/test/unit_test.hpp>

#include <snapset/provider.h>
#include <snapset/requestor.hpp>

#include <rapidjson/document.h>

#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "core/catalog.hpp"
#include "core/host_log.hpp"
#include "core/provider_instance.hpp"
#include "core/provider_registration.hpp"
#include "core/set_creation.hpp"
#include "tests/support/command.hpp"
#include "tests/support/loop_filesystem.hpp"
#include "tests/support/prerequisites.hpp"
#include "tests/support/temp_dir.hpp"

using namespace snapset;
using snapset::test::LoopFilesystem;
using snapset::test::TempDir;

namespace {

const std::string kPlugins = SNAPSET_TEST_PLUGIN_DIR;
const std::string kLibrary = kPlugins + "/libscripted_provider.so";

// Each crash point, with the state the set has on a provider that finished
// that event ("complete" once post_final_commit moved it out of pending).
const std::vector<std::pair<std::string, std::string>> kCrashPoints = {
    {"begin_prepare_snapshot", "preparing"},
    {"end_prepare_snapshots", "prepared"},
    {"pre_commit_snapshots", "pre-committed"},
    {"commit_snapshots", "committed"},
    {"post_commit_snapshots", "post-committed"},
    {"pre_final_commit_snapshots", "post-committed"},
    {"post_final_commit_snapshots", "complete"}};

// What a scripted provider's state file holds.
struct ProviderState {
  std::map<std::string, std::string> set_state;                 // pending set -> state
  std::map<std::string, std::vector<std::string>> pending;      // pending set -> snapshot ids
  std::map<std::string, std::string> complete;                  // snapshot id -> set id

  std::vector<std::string> CompleteOf(const std::string& set_id) const {
    std::vector<std::string> ids;
    for (const auto& [id, set] : complete)
      if (set == set_id) ids.push_back(id);
    return ids;
  }
};

ProviderState ReadState(const std::string& state_dir) {
  ProviderState out;
  std::ifstream in(state_dir + "/scripted-state.json");
  if (!in) return out;  // nothing saved yet
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(text.str().c_str());
  BOOST_TEST_REQUIRE(!doc.HasParseError(), "state file of " << state_dir << " is not JSON");
  for (const auto& p : doc["pending"].GetArray()) {
    const std::string set = p["set_id"].GetString();
    out.set_state[set] = p["state"].GetString();
    for (const auto& s : p["snapshots"].GetArray())
      out.pending[set].push_back(s["snapshot_id"].GetString());
  }
  for (const auto& s : doc["complete"].GetArray())
    out.complete[s["snapshot_id"].GetString()] = s["set_id"].GetString();
  return out;
}

// A config and state directory with persistent scripted providers.
struct World {
  TempDir dir;
  std::map<std::string, std::string> ids;  // provider name -> registration id

  std::string config() const { return dir.str() + "/config"; }
  std::string state() const { return dir.str() + "/state"; }
  std::string provider_state(const std::string& name) const {
    return dir.str() + "/provider-" + name;
  }

  World() {
    std::filesystem::create_directories(config() + "/providers.d");
    ::chmod(config().c_str(), 0755);
  }

  // Registers (or re-registers, keeping its id) a scripted provider whose
  // snapshots live in provider_state(name). `extra` adds config members.
  void SetProvider(const std::string& name, const std::string& type, const std::string& supports,
                   const std::string& extra = "") {
    if (!ids.count(name)) ids[name] = NewUuid();
    const std::string config = R"({"supports": [")" + supports + R"("], "state_dir": ")" +
                               provider_state(name) + "\"" + extra + "}";
    dir.Write("config/providers.d/" + name + ".json",
              snapset::test::Registration(ids[name], name, type, kLibrary, config));
  }

  std::unique_ptr<Requestor> Open() const {
    RequestorOptions o;
    o.config_dir = config();
    o.state_dir = state();
    o.log_level = SNAPSET_LOG_ERROR;
    if (const char* g = std::getenv("SNAPSET_THAW_GUARD")) o.thaw_guard = g;
    auto r = Requestor::Open(o);
    BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
    return std::move(*r);
  }

  std::string CliLog() const {
    std::ifstream in(dir.str() + "/cli.log");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
};

// Waits up to `timeout` for `pid` to end; false if it still runs.
bool WaitFor(pid_t pid, std::chrono::milliseconds timeout, int* status) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;  // not our child any more: nothing to wait for
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Starts the snapset CLI as a user runs it; its output goes to cli.log.
pid_t StartCli(const World& w, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {SNAPSET_CLI, "--config-dir", w.config(), "--state-dir",
                                   w.state()};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string log = w.dir.str() + "/cli.log";
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> raw;
    for (auto& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    ::execv(SNAPSET_CLI, raw.data());
    ::_exit(127);
  }
  BOOST_TEST_REQUIRE(pid > 0);
  return pid;
}

// The one set the killed coordinator left "creating", as the catalog holds
// it before any recovery: read without a Requestor, whose Open recovers.
SetRecord InterruptedSet(const World& w) {
  auto catalog = Catalog::Open(w.state());
  BOOST_TEST_REQUIRE(catalog.ok(), catalog.status().ToString());
  auto creating = (*catalog)->ListUnfinished();
  BOOST_TEST_REQUIRE(creating.ok(), creating.status().ToString());
  BOOST_TEST_REQUIRE(creating->size() == 1u, "the killed run left no set \"creating\"");
  return creating->front();
}

bool SawEvent(const TimelineData& t, const std::string& lane, const std::string& step) {
  for (const auto& e : t.events)
    if (e.lane == lane && e.step == step && e.kind == TimelineKind::kBegin) return true;
  return false;
}

// Nothing on any provider that the catalog does not know, and the reverse.
void ExpectConsistent(Requestor& r) {
  auto findings = r.Verify();
  BOOST_TEST_REQUIRE(findings.ok(), findings.status().ToString());
  for (const auto& f : *findings)
    BOOST_TEST_MESSAGE("difference: " << f.snapshot_id << " on " << f.provider << ": "
                                      << f.problem);
  BOOST_TEST(findings->empty());
}

// What every recovery must leave: the set aborted with the crash as its
// reason, no complete set, nothing of the set on any provider.
void ExpectRecovered(const World& w, Requestor& r, const std::string& set_id) {
  auto all = r.ListSets(true);
  BOOST_TEST_REQUIRE(all.ok(), all.status().ToString());
  BOOST_TEST_REQUIRE(all->size() == 1u);
  const SetEntry& set = all->front();
  BOOST_TEST(set.set_id == set_id);
  BOOST_TEST(set.state == "aborted");
  BOOST_TEST(set.snapshots.empty());
  // Recovery went to each provider of the plan, and everything succeeded:
  // the reason is the crash alone, with no provider failure appended.
  BOOST_TEST(set.error ==
                 "the coordinator stopped while creating this set; aborted at the next start",
             set.error);
  for (const auto& [name, id] : w.ids)
    BOOST_TEST(SawEvent(set.timeline, "provider:" + name, "abort_snapshots"), name);
  auto complete = r.ListSets(false);
  BOOST_TEST_REQUIRE(complete.ok());
  BOOST_TEST(complete->empty());
  ExpectConsistent(r);
  // Verify sees complete snapshots only; the state files show the pending
  // ones too.
  for (const auto& [name, id] : w.ids) {
    ProviderState s = ReadState(w.provider_state(name));
    BOOST_TEST(s.pending.empty(), name << " still has prepared snapshots");
    BOOST_TEST(s.complete.empty(), name << " still has complete snapshots");
  }
}

Volume CowVolume(const std::string& name) {
  Volume v;
  v.kind = VolumeKind::kCow;
  v.name = v.device_path = name;
  return v;
}

}  // namespace

// The SDK keeps each set's state in memory, per instance. A provider whose
// snapshots outlive the process must still get the abort of a set that an
// instance of an earlier process prepared; two instances over one state_dir
// stand for the two processes.
BOOST_AUTO_TEST_CASE(an_abort_reaches_a_provider_whose_earlier_instance_prepared_the_set) {
  TempDir dir;
  ProviderRegistration reg;
  reg.file = dir.str() + "/providers.d/p.json";
  reg.id = NewUuid();
  reg.name = "p";
  reg.type = ProviderType::kSoftware;
  reg.library = kLibrary;
  reg.config_json = R"({"supports": ["*"], "state_dir": ")" + dir.str() + "/p\"}";
  HostLog log(nullptr);
  {
    auto first = ProviderInstance::Load(reg, &log);
    BOOST_TEST_REQUIRE(first.ok(), first.status().ToString());
    auto& p = *first;
    BOOST_TEST(p->BeginPrepareSnapshot("prepared", "a", CowVolume("cow:a"), 0).ok());
    BOOST_TEST(p->BeginPrepareSnapshot("prepared", "b", CowVolume("cow:b"), 0).ok());
    BOOST_TEST(p->EndPrepareSnapshots("prepared").ok());
    BOOST_TEST(p->BeginPrepareSnapshot("done", "c", CowVolume("cow:c"), 0).ok());
    BOOST_TEST(p->EndPrepareSnapshots("done").ok());
    BOOST_TEST(p->PreCommitSnapshots("done").ok());
    BOOST_TEST(p->CommitSnapshots("done").ok());
    BOOST_TEST(p->PostCommitSnapshots("done").ok());
    BOOST_TEST(p->PostFinalCommitSnapshots("done").ok());
  }
  ProviderState saved = ReadState(dir.str() + "/p");
  BOOST_TEST(saved.set_state["prepared"] == "prepared");
  BOOST_TEST(saved.pending["prepared"].size() == 2u);
  BOOST_TEST(saved.CompleteOf("done") == std::vector<std::string>{"c"});

  auto second = ProviderInstance::Load(reg, &log);
  BOOST_TEST_REQUIRE(second.ok(), second.status().ToString());
  auto& p = *second;
  auto listed = p->ListSnapshots();
  BOOST_TEST_REQUIRE(listed.ok());
  BOOST_TEST_REQUIRE(listed->size() == 1u);  // complete ones only
  BOOST_TEST(listed->front().snapshot_id == "c");

  // Unseen by this instance, yet it reaches the provider, which undoes it.
  BOOST_TEST(p->AbortSnapshots("prepared").ok());
  BOOST_TEST(ReadState(dir.str() + "/p").pending.empty());
  BOOST_TEST(p->AbortSnapshots("prepared").ok());     // idempotent
  BOOST_TEST(p->AbortSnapshots("never-seen").ok());   // nothing to undo: OK
  // Aborted stays aborted, also for a set first heard of in the abort.
  BOOST_TEST(p->BeginPrepareSnapshot("never-seen", "d", CowVolume("cow:d"), 0).IsBadState());

  // Complete on the provider: abort is refused, as within one process; the
  // snapshots go by delete_snapshot.
  Status s = p->AbortSnapshots("done");
  BOOST_TEST(s.IsBadState(), s.ToString());
  BOOST_TEST(p->ListSnapshots()->size() == 1u);
  BOOST_TEST(p->DeleteSnapshot("c").ok());
  BOOST_TEST(ReadState(dir.str() + "/p").complete.empty());

  // The refused abort left the set unknown to the SDK, not aborted: a retry
  // reaches the provider again, which now has nothing of it.
  BOOST_TEST(p->AbortSnapshots("done").ok());
}

BOOST_AUTO_TEST_CASE(a_coordinator_killed_between_phases_is_recovered_at_the_next_start) {
  for (const auto& [event, state_after] : kCrashPoints) {
    BOOST_TEST_CONTEXT("killed in " << event) {
      World w;
      // "hw" dies in `event`, after a delay in it that lets "sw" finish the
      // same event first: the dead process leaves both with the set.
      const std::string crash =
          R"(, "crash_in": ")" + event + R"(", "delay_ms": {")" + event + R"(": 300})";
      w.SetProvider("hw", "hardware", "name-prefix:cow:a", crash);
      w.SetProvider("sw", "software", "name-prefix:cow:b");
      const std::vector<std::string> volumes = {"cow:a1", "cow:a2", "cow:b1"};
      const std::string set_id = NewUuid();

      std::vector<std::string> args = {"create", "--set-id", set_id};
      args.insert(args.end(), volumes.begin(), volumes.end());
      pid_t cli = StartCli(w, args);
      int status = 0;
      if (!WaitFor(cli, std::chrono::seconds(60), &status)) {
        ::kill(cli, SIGKILL);
        ::waitpid(cli, &status, 0);
        BOOST_FAIL("the coordinator did not die in " << event << "; it printed:\n" << w.CliLog());
      }
      BOOST_TEST_REQUIRE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL),
                         "the coordinator was not killed (wait status " << status
                                                                        << "); it printed:\n"
                                                                        << w.CliLog());

      // What the dead process left: the set "creating" in the catalog, and
      // on the providers prepared or complete snapshots of it.
      SetRecord interrupted = InterruptedSet(w);
      BOOST_TEST(interrupted.set_id == set_id);
      BOOST_TEST(interrupted.snapshots.size() == volumes.size());
      ProviderState hw = ReadState(w.provider_state("hw"));
      ProviderState sw = ReadState(w.provider_state("sw"));
      if (state_after == "complete") {
        BOOST_TEST(hw.CompleteOf(set_id).size() == 2u);
        BOOST_TEST(sw.CompleteOf(set_id).size() == 1u);
        BOOST_TEST(hw.pending.empty());
      } else {
        BOOST_TEST(hw.set_state[set_id] == state_after);
        // begin_prepare_snapshot runs per volume: it died after the first.
        BOOST_TEST(hw.pending[set_id].size() == (event == "begin_prepare_snapshot" ? 1u : 2u));
        BOOST_TEST(sw.pending[set_id].size() == 1u);
        BOOST_TEST(hw.complete.empty());
      }

      // The next start.
      {
        auto r = w.Open();
        ExpectRecovered(w, *r, set_id);
      }

      // The volume locks died with the process: the same volumes make a new
      // set, once the provider no longer kills its host.
      w.SetProvider("hw", "hardware", "name-prefix:cow:a");
      auto r = w.Open();
      SetRequest req;
      req.volumes = volumes;
      SetResult again = r->CreateSet(req);
      BOOST_TEST_REQUIRE(again.status.ok(), again.status.ToString());
      BOOST_TEST(again.snapshots.size() == volumes.size());
      auto sets = r->ListSets(true);
      BOOST_TEST_REQUIRE(sets.ok());
      BOOST_TEST(sets->size() == 2u);  // the aborted one and the new one: recovered once
      ExpectConsistent(*r);
      BOOST_TEST(ReadState(w.provider_state("hw")).CompleteOf(again.set_id).size() == 2u);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_coordinator_killed_in_commit_on_ext4_is_thawed_and_recovered) {
  if (!test::LoopFilesystemsAvailable()) return;
  auto fs = LoopFilesystem::Create(64ull << 20);
  BOOST_TEST_REQUIRE(fs.ok(), fs.status().ToString());
  const std::string mnt = (*fs)->mount_point();
  test::Unfreeze unfreeze(mnt);  // destroyed before the filesystem: never left frozen

  World w;
  w.SetProvider("fs", "software", "kind:filesystem", R"(, "crash_in": "commit_snapshots")");
  w.SetProvider("cow", "hardware", "name-prefix:cow:");
  const std::string set_id = NewUuid();
  pid_t cli = StartCli(w, {"create", "--set-id", set_id, mnt, "cow:b1"});
  int status = 0;
  if (!WaitFor(cli, std::chrono::seconds(60), &status)) {
    unfreeze.Now();
    ::kill(cli, SIGKILL);
    ::waitpid(cli, &status, 0);
    BOOST_FAIL("the coordinator did not die in commit_snapshots; it printed:\n" << w.CliLog());
  }
  BOOST_TEST_REQUIRE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL),
                     "the coordinator was not killed (wait status " << status
                                                                    << "); it printed:\n"
                                                                    << w.CliLog());

  // It died with the filesystem frozen; the thaw guard, not the commit
  // window's deadline (10 s away), must have thawed it: a write goes
  // through at once.
  const std::string probe_file = mnt + "/written-after-the-crash";
  pid_t probe = ::fork();
  if (probe == 0) {
    int fd = ::open(probe_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    bool ok = fd >= 0 && ::write(fd, "x", 1) == 1 && ::fsync(fd) == 0;
    ::_exit(ok ? 0 : 1);
  }
  BOOST_TEST_REQUIRE(probe > 0);
  int probe_status = 0;
  const bool wrote = WaitFor(probe, std::chrono::seconds(3), &probe_status);
  if (!wrote) {
    unfreeze.Now();
    ::waitpid(probe, &probe_status, 0);
  }
  BOOST_TEST_REQUIRE(wrote, "the filesystem stayed frozen after the coordinator was killed");
  BOOST_TEST((WIFEXITED(probe_status) && WEXITSTATUS(probe_status) == 0));
  BOOST_TEST(!test::IsFrozen(mnt));

  ProviderState before = ReadState(w.provider_state("fs"));
  BOOST_TEST(before.set_state[set_id] == "committed");
  {
    auto r = w.Open();
    ExpectRecovered(w, *r, set_id);
  }

  w.SetProvider("fs", "software", "kind:filesystem");
  auto r = w.Open();
  SetRequest req;
  req.volumes = {mnt, "cow:b1"};
  SetResult again = r->CreateSet(req);
  BOOST_TEST_REQUIRE(again.status.ok(), again.status.ToString());
  ExpectConsistent(*r);
  BOOST_TEST(!test::IsFrozen(mnt));
}

// An abort that fails leaves the set "abort-incomplete" with its plan and
// what the provider said, never "aborted"; every later start retries it on
// the provider that failed, until nothing is left.
BOOST_AUTO_TEST_CASE(a_failed_abort_is_recorded_and_retried_by_later_commands_until_it_works) {
  World w;
  const std::string fail_abort =
      R"(, "fail": {"commit_snapshots": "unavailable", "abort_snapshots": "unavailable"})";
  w.SetProvider("hw", "hardware", "name-prefix:cow:a", fail_abort);
  w.SetProvider("sw", "software", "name-prefix:cow:b");
  const std::string set_id = NewUuid();
  {
    auto r = w.Open();
    SetRequest req;
    req.volumes = {"cow:a1", "cow:b1"};
    req.set_id = set_id;
    SetResult result = r->CreateSet(req);
    BOOST_TEST_REQUIRE(!result.status.ok());
    BOOST_TEST(result.status.Is(Code::kUnavailable), result.status.ToString());
    auto set = r->GetSet(set_id);
    BOOST_TEST_REQUIRE(set.ok());
    BOOST_TEST(set->state == "abort-incomplete");
    BOOST_TEST_REQUIRE(set->leftovers.size() == 1u);
    BOOST_TEST(set->leftovers[0].provider == "hw");
    BOOST_TEST(set->leftovers[0].provider_id == w.ids.at("hw"));
    BOOST_TEST(set->leftovers[0].detail.find("unavailable") != std::string::npos,
               set->leftovers[0].detail);
    BOOST_TEST(set->snapshots.size() == 2u);  // the plan, for the retry
    // Deleting it would forget what remains: refused, saying why.
    Status del = r->DeleteSet(set_id);
    BOOST_TEST(del.IsBadState(), del.ToString());
    BOOST_TEST(del.message().find("abort-incomplete") != std::string::npos, del.message());
    // What the failed abort left is on the provider, and Verify says whose.
    BOOST_TEST(ReadState(w.provider_state("hw")).pending.count(set_id) == 1u);
    BOOST_TEST(ReadState(w.provider_state("sw")).pending.empty());
  }

  // Still failing: the next start retries, and the set stays incomplete.
  {
    auto r = w.Open();
    BOOST_TEST(r->GetSet(set_id)->state == "abort-incomplete");
    BOOST_TEST(ReadState(w.provider_state("hw")).pending.count(set_id) == 1u);
  }

  // The provider is mended: the next start finishes the abort.
  w.SetProvider("hw", "hardware", "name-prefix:cow:a");
  auto r = w.Open();
  auto set = r->GetSet(set_id);
  BOOST_TEST_REQUIRE(set.ok());
  BOOST_TEST(set->state == "aborted");
  BOOST_TEST(set->leftovers.empty());
  BOOST_TEST(set->snapshots.empty());
  // The cause stays the first failure, not the retry.
  BOOST_TEST(set->error.find("commit_snapshots") != std::string::npos, set->error);
  BOOST_TEST(ReadState(w.provider_state("hw")).pending.empty());
  ExpectConsistent(*r);
  BOOST_TEST(r->DeleteSet(set_id).ok());
}

// The same after a crash: the first start's recovery fails on one provider,
// and records so; a later one finishes.
BOOST_AUTO_TEST_CASE(a_crashed_set_whose_recovery_fails_stays_abort_incomplete_until_it_works) {
  World w;
  w.SetProvider("hw", "hardware", "name-prefix:cow:a", R"(, "crash_in": "commit_snapshots")");
  w.SetProvider("sw", "software", "name-prefix:cow:b");
  const std::string set_id = NewUuid();
  pid_t cli = StartCli(w, {"create", "--set-id", set_id, "cow:a1", "cow:b1"});
  int status = 0;
  BOOST_TEST_REQUIRE(WaitFor(cli, std::chrono::seconds(60), &status), w.CliLog());
  BOOST_TEST_REQUIRE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL), w.CliLog());

  w.SetProvider(
      "hw", "hardware", "name-prefix:cow:a",
      R"(, "fail": {"abort_snapshots": "unavailable", "delete_snapshot": "unavailable"})");
  {
    auto r = w.Open();
    auto set = r->GetSet(set_id);
    BOOST_TEST_REQUIRE(set.ok());
    BOOST_TEST(set->state == "abort-incomplete");
    BOOST_TEST_REQUIRE(set->leftovers.size() == 1u);
    BOOST_TEST(set->leftovers[0].provider == "hw");
    BOOST_TEST(set->error.find("coordinator stopped") != std::string::npos, set->error);
    // "sw" was undone on the first try; only "hw" is retried.
    BOOST_TEST(ReadState(w.provider_state("sw")).pending.empty());
    BOOST_TEST(ReadState(w.provider_state("sw")).complete.empty());
  }
  w.SetProvider("hw", "hardware", "name-prefix:cow:a");
  auto r = w.Open();
  BOOST_TEST(r->GetSet(set_id)->state == "aborted");
  ProviderState hw = ReadState(w.provider_state("hw"));
  BOOST_TEST(hw.pending.empty());
  BOOST_TEST(hw.complete.empty());
  ExpectConsistent(*r);
}

// Orphans: a provider's objects and snapshots that no catalog entry
// explains are found, listed in a dry run, and removed; what an in-progress
// or abort-incomplete set owns is left alone.
BOOST_AUTO_TEST_CASE(orphans_are_found_listed_in_a_dry_run_and_removed) {
  World w;
  const std::string dead = NewUuid();
  w.SetProvider("hw", "hardware", "name-prefix:cow:a",
                R"(, "objects": [{"kind": "group", "name": "snapset-)" + dead +
                    R"(", "location": "array x", "set_id": ")" + dead + R"("},
                    {"kind": "exposure", "name": "snapset-s9", "location": "array x",
                     "snapshot_id": "s9"}])");
  auto r = w.Open();
  SetRequest req;
  req.volumes = {"cow:a1"};
  SetResult made = r->CreateSet(req);
  BOOST_TEST_REQUIRE(made.status.ok(), made.status.ToString());

  auto findings = r->Verify();
  BOOST_TEST_REQUIRE(findings.ok(), findings.status().ToString());
  BOOST_TEST_REQUIRE(findings->size() == 2u);
  for (const auto& f : *findings) {
    BOOST_TEST(f.orphan);
    BOOST_TEST(f.provider == "hw");
    BOOST_TEST(f.location == "array x");
  }

  auto dry = r->RemoveOrphans(true);
  BOOST_TEST_REQUIRE(dry.ok(), dry.status().ToString());
  BOOST_TEST(dry->size() == 2u);
  BOOST_TEST(r->Verify()->size() == 2u);  // a dry run removes nothing

  auto removed = r->RemoveOrphans(false);
  BOOST_TEST_REQUIRE(removed.ok(), removed.status().ToString());
  BOOST_TEST_REQUIRE(removed->size() == 2u);
  for (const auto& o : *removed) BOOST_TEST(o.status.ok(), o.status.ToString());
  BOOST_TEST(r->Verify()->empty());
  // The user's set is untouched.
  BOOST_TEST(r->GetSet(made.set_id)->state == "complete");
  BOOST_TEST(ReadState(w.provider_state("hw")).CompleteOf(made.set_id).size() == 1u);
}

// A provider can lose snapshots on its own (a software provider's overflow,
// an array's retention): RefreshLost records them lost with the provider's
// reason, once; a provider that cannot list changes nothing and is named.
BOOST_AUTO_TEST_CASE(snapshots_a_provider_lost_or_cannot_read_are_recorded_lost_once) {
  World w;
  w.SetProvider("gone", "hardware", "name-prefix:cow:a");
  w.SetProvider("bad", "software", "name-prefix:cow:b");
  w.SetProvider("mute", "software", "name-prefix:cow:c");
  std::map<std::string, std::string> snapshot_of;  // volume -> snapshot id
  {
    auto r = w.Open();
    for (const char* v : {"cow:a1", "cow:b1", "cow:c1"}) {
      SetRequest req;
      req.volumes = {v};
      SetResult made = r->CreateSet(req);
      BOOST_TEST_REQUIRE(made.status.ok(), made.status.ToString());
      snapshot_of[v] = made.snapshots.at(0).snapshot_id;
    }
    auto nothing = r->RefreshLost();
    BOOST_TEST_REQUIRE(nothing.ok(), nothing.status().ToString());
    BOOST_TEST(nothing->newly_lost.empty());
    BOOST_TEST(nothing->unanswered.empty());
  }
  w.SetProvider("gone", "hardware", "name-prefix:cow:a", R"(, "lost": true)");
  w.SetProvider("bad", "software", "name-prefix:cow:b",
                R"(, "invalid_reason": "the diff area failed")");
  w.SetProvider("mute", "software", "name-prefix:cow:c",
                R"(, "fail": {"list_snapshots": "unavailable"})");
  auto r = w.Open();
  auto refreshed = r->RefreshLost();
  BOOST_TEST_REQUIRE(refreshed.ok(), refreshed.status().ToString());
  std::map<std::string, std::string> reason_of;
  for (const auto& s : refreshed->newly_lost) reason_of[s.snapshot_id] = s.lost_reason;
  BOOST_TEST_REQUIRE(reason_of.size() == 2u);
  BOOST_TEST(reason_of[snapshot_of["cow:a1"]] ==
             "provider gone: no snapshot " + snapshot_of["cow:a1"]);
  BOOST_TEST(reason_of[snapshot_of["cow:b1"]] == "provider bad: the diff area failed");
  BOOST_TEST_REQUIRE(refreshed->unanswered.size() == 1u);
  BOOST_TEST(refreshed->unanswered[0].first == "mute");
  for (const char* v : {"cow:a1", "cow:b1"}) {
    auto s = r->GetSnapshot(snapshot_of[v]);
    BOOST_TEST_REQUIRE(s.ok());
    BOOST_TEST(s->lost_ns > 0);
    BOOST_TEST(s->lost_reason == reason_of[snapshot_of[v]]);
  }
  BOOST_TEST(r->GetSnapshot(snapshot_of["cow:c1"])->lost_ns == 0);
  // Once recorded, not again; and Verify still says what it sees.
  auto again = r->RefreshLost();
  BOOST_TEST_REQUIRE(again.ok());
  BOOST_TEST(again->newly_lost.empty());
  auto findings = r->Verify();
  BOOST_TEST_REQUIRE(findings.ok(), findings.status().ToString());
  std::map<std::string, std::string> problem_of;
  for (const auto& f : *findings) problem_of[f.snapshot_id] = f.problem;
  BOOST_TEST(problem_of[snapshot_of["cow:b1"]] ==
             "on the provider, but it cannot be read: the diff area failed");
  BOOST_TEST(problem_of[snapshot_of["cow:a1"]].find("recorded lost") != std::string::npos);
}

// `snapset list` asks providers first; one that hangs must not hang it.
BOOST_AUTO_TEST_CASE(a_provider_that_hangs_while_listing_costs_the_refresh_its_bound_only) {
  World w;
  w.SetProvider("slow", "software", "name-prefix:cow:a");
  std::string id;
  {
    auto r = w.Open();
    SetRequest req;
    req.volumes = {"cow:a1"};
    SetResult made = r->CreateSet(req);
    BOOST_TEST_REQUIRE(made.status.ok(), made.status.ToString());
    id = made.snapshots.at(0).snapshot_id;
  }
  w.SetProvider("slow", "software", "name-prefix:cow:a",
                R"(, "delay_ms": {"list_snapshots": 60000})");
  auto r = w.Open();
  const auto start = std::chrono::steady_clock::now();
  auto refreshed = r->RefreshLost();
  const auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST_REQUIRE(refreshed.ok(), refreshed.status().ToString());
  BOOST_TEST(took < std::chrono::seconds(15));  // bound 5 s, with a margin
  BOOST_TEST_REQUIRE(refreshed->unanswered.size() == 1u);
  BOOST_TEST(refreshed->unanswered[0].first == "slow");
  BOOST_TEST(refreshed->unanswered[0].second.find("did not answer within 5 s") != std::string::npos,
             refreshed->unanswered[0].second);
  BOOST_TEST(refreshed->newly_lost.empty());
  BOOST_TEST(r->GetSnapshot(id)->lost_ns == 0);
}
