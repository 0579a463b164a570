// The iSCSI provider keeps a set all or none whatever the arrays do: for
// each fault the mock array injects, at each phase of a set (prepare, group
// creation, commit, task polling, post-commit, delete), `snapset create`
// over five LUNs on two arrays either succeeds or fails as it should, with
// an error that names the array; once it has returned no LUN's writes are
// held (no fence up, a write goes through), and afterwards neither array
// holds a replica, a group, a fence or a connection the set made, and the
// catalog agrees with the arrays (`list --verify`).
//
// Both dialects of the mock array go through it: Swordfish with the built-in
// driver, and twophase (fence, then commit as a job) with the example
// driver, each with its own table, since the operations a fault is armed on
// are the dialect's own. One fixture per dialect serves every row of its
// table (faults cleared in between), so a table costs one pair of array
// start-ups.
#define BOOST_TEST_MODULE iscsi_provider_fault_test
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <functional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/iscsi/provider_fixture.hpp"

namespace snapset::test {
namespace {

using std::chrono::seconds;
using std::chrono::steady_clock;

// snapset's exit codes (tools/exit_codes.hpp, docs/cli.md).
constexpr int kOk = 0;
constexpr int kVolumeNotSupported = 6;
constexpr int kInsufficientStorage = 12;
constexpr int kUnavailable = 15;

constexpr char kTaskService[] = "/redfish/v1/TaskService";

std::string Fault(const std::string& op, const std::string& mode, const std::string& more = "") {
  return R"({"Operation":")" + op + R"(","Mode":")" + mode + "\"" +
         (more.empty() ? "" : "," + more) + "}";
}

// What the array is like before the fault is armed.
enum class Setup {
  kNone,
  // Every state-changing request runs as a task (202 + task monitor).
  kAsync,
  // The same, and array b already has a consistency group of exactly the
  // set's volumes there, which the provider uses (b allows a volume in one
  // group only): so the first task monitor the provider polls on b is the
  // commit's.
  kAsyncExistingGroup,
  // The same, and every task waits 1.5 s before its operation runs.
  kAsyncExistingGroupSlowTasks,
};

struct Row {
  const char* name;  // a twophase row has its Swordfish counterpart's name, if any
  int array;         // where the fault is armed: 0 (a) or 1 (b)
  std::vector<std::string> faults;
  Setup setup;
  int exit_code;     // kOk: the set is created
  const char* says;  // in the error message of a failed set
};

// "Group" in the phase names below is the set's temporary consistency group
// on each array, made at end_prepare. A table reads best one row a line.
// clang-format off
const std::vector<Row>& SwordfishRows() {
  static const std::vector<Row> rows = {
    // Prepare: log-in, the inventory, the groups already there. The volume
    // matcher logs in first: when that fails, a's LUNs are on no array that
    // answered, and the message says which array did not.
    {"prepare: log-in answers 500", 0,
     {Fault("Session.Create", "Error", R"("Status":500)")}, Setup::kNone,
     kVolumeNotSupported, "\"a\" (unreachable"},
    // Once: the matcher's next look (for b's own LUNs) logs in again.
    {"prepare: log-in refused once (401)", 1,
     {Fault("Session.Create", "Error", R"("Status":401)")}, Setup::kNone, kOk, ""},
    {"prepare: every log-in refused (401)", 1,
     {Fault("Session.Create", "Error", R"("Status":401,"Count":0)")}, Setup::kNone,
     kVolumeNotSupported, "check the credentials file"},
    {"prepare: group list answers 500", 0,
     {Fault("ConsistencyGroup.List", "Error", R"("Status":500)")}, Setup::kNone,
     kUnavailable, "500"},
    {"prepare: inventory busy once (503) is retried", 1,
     {Fault("Volume.List", "Error", R"("Status":503,"RetryAfterS":1,"Count":1)")}, Setup::kNone,
     kOk, ""},
    // Group creation.
    {"group: create answers 500", 0,
     {Fault("ConsistencyGroup.Create", "Error", R"("Status":500)")}, Setup::kNone,
     kUnavailable, "500"},
    {"group: create answers 507", 1,
     {Fault("ConsistencyGroup.Create", "Error", R"("Status":507)")}, Setup::kNone,
     kInsufficientStorage, "507"},
    {"group: create hangs past the request timeout", 0,
     {Fault("ConsistencyGroup.Create", "Hang")}, Setup::kNone, kUnavailable, "array a"},
    {"group: made, its reply lost", 1,
     {Fault("ConsistencyGroup.Create", "DropConnection")}, Setup::kNone, kUnavailable, "array b"},
    {"group: reply not JSON", 0,
     {Fault("ConsistencyGroup.Create", "MalformedJson")}, Setup::kNone, kUnavailable, "not JSON"},
    // Commit: the one group snapshot request per array, inside the window.
    {"commit: answers 500", 0,
     {Fault("ConsistencyGroup.CreateReplicaTarget", "Error", R"("Status":500)")}, Setup::kNone,
     kUnavailable, "500"},
    {"commit: busy (503) is not retried inside the window", 1,
     {Fault("ConsistencyGroup.CreateReplicaTarget", "Error", R"("Status":503,"RetryAfterS":1)")},
     Setup::kNone, kUnavailable, "503"},
    {"commit: replicas made, reply lost", 1,
     {Fault("ConsistencyGroup.CreateReplicaTarget", "DropConnection")}, Setup::kNone,
     kUnavailable, "array b"},
    {"commit: array breaks all-or-none (Partial)", 0,
     {Fault("ConsistencyGroup.CreateReplicaTarget", "Partial", R"("FailMembers":1)")},
     Setup::kNone, kUnavailable, "500"},
    {"commit: reply not JSON", 1,
     {Fault("ConsistencyGroup.CreateReplicaTarget", "MalformedJson")}, Setup::kNone,
     kUnavailable, "not JSON"},
    {"commit: 200 ms slow", 0,
     {Fault("ConsistencyGroup.CreateReplicaTarget", "Delay", R"("DelayMs":200)")}, Setup::kNone,
     kOk, ""},
    {"commit: a member's copy fails", 1,
     {Fault("ConsistencyGroup.CopyMember", "Error", R"("Status":500)")}, Setup::kNone,
     kUnavailable, "500"},
    // Task polling: array b answers every change with 202 + a task monitor.
    {"tasks: no fault", 1, {}, Setup::kAsync, kOk, ""},
    {"tasks: group's monitor answers 500", 1,
     {Fault("TaskMonitor.Get", "Error", R"("Status":500)")}, Setup::kAsync, kUnavailable, "500"},
    {"tasks: group's monitor poll dropped (retried outside the window)", 1,
     {Fault("TaskMonitor.Get", "DropConnection")}, Setup::kAsync, kOk, ""},
    {"tasks: monitor 300 ms slow", 1,
     {Fault("TaskMonitor.Get", "Delay", R"("DelayMs":300)")}, Setup::kAsync, kOk, ""},
    {"tasks: existing group, no fault", 1, {}, Setup::kAsyncExistingGroup, kOk, ""},
    {"tasks: commit's monitor answers 500", 1,
     {Fault("TaskMonitor.Get", "Error", R"("Status":500)")}, Setup::kAsyncExistingGroup,
     kUnavailable, "500"},
    {"tasks: commit's monitor poll dropped (no retry inside the window)", 1,
     {Fault("TaskMonitor.Get", "DropConnection")}, Setup::kAsyncExistingGroup, kUnavailable,
     "array b"},
    // The monitor's 500 comes while the task still runs (each task waits
    // 1.5 s before its operation): its replicas appear after the provider
    // gave up on the request, and its abort must still find them.
    {"tasks: commit's monitor answers 500 while the task still runs", 1,
     {Fault("TaskMonitor.Get", "Error", R"("Status":500)")}, Setup::kAsyncExistingGroupSlowTasks,
     kUnavailable, "500"},
    // Post-commit: removing the temporary group fails; the host aborts.
    {"post-commit: group delete answers 500", 0,
     {Fault("ConsistencyGroup.Delete", "Error", R"("Status":500)")}, Setup::kNone,
     kUnavailable, "500"},
    {"post-commit: group delete answers 500 on b", 1,
     {Fault("ConsistencyGroup.Delete", "Error", R"("Status":500)")}, Setup::kNone,
     kUnavailable, "500"},
  };
  return rows;
}

// The same phases on twophase arrays, the faults on that dialect's
// operations (routes_twophase.cc): log-in, the inventory (luns, then
// snapshots), groups, then the window's fence (Fence.Create, at
// hold_writes), the commit (ConsistencyGroup.Snapshot, answered 202 with a
// job) and its job's polls (Job.Get), the fence's lift (Fence.Delete) and
// the group's removal.
//
// Swordfish rows with no twophase row, and why:
// - "tasks: no fault", "tasks: group's monitor ..." and "tasks: monitor 300
//   ms slow" (Setup::kAsync): the twophase API has no asynchronous mode; its
//   groups are made synchronously, and only its commit runs as a job, which
//   every row polls and the "job:" rows fault.
// - "tasks: existing group, ..." (Setup::kAsyncExistingGroup): that setup
//   is there to make the commit's monitor the one polled; the commit's job
//   is the only job a twophase array runs, so the "job:" rows need none.
// - "tasks: commit's monitor answers 500 while the task still runs"
//   (Setup::kAsyncExistingGroupSlowTasks): the twophase jobs have no task
//   delay; its row stalls the job inside the commit with a
//   ConsistencyGroup.CopyMember delay instead.
const std::vector<Row>& TwoPhaseRows() {
  static const std::vector<Row> rows = {
    // Prepare.
    {"prepare: log-in answers 500", 0,
     {Fault("Session.Create", "Error", R"("Status":500)")}, Setup::kNone,
     kVolumeNotSupported, "\"a\" (unreachable"},
    {"prepare: log-in refused once (401)", 1,
     {Fault("Session.Create", "Error", R"("Status":401)")}, Setup::kNone, kOk, ""},
    {"prepare: every log-in refused (401)", 1,
     {Fault("Session.Create", "Error", R"("Status":401,"Count":0)")}, Setup::kNone,
     kVolumeNotSupported, "check the credentials file"},
    {"prepare: group list answers 500", 0,
     {Fault("ConsistencyGroup.List", "Error", R"("Status":500)")}, Setup::kNone,
     kUnavailable, "500"},
    {"prepare: inventory busy once (503) is retried", 1,
     {Fault("Volume.List", "Error", R"("Status":503,"RetryAfterS":1,"Count":1)")}, Setup::kNone,
     kOk, ""},
    {"prepare: snapshot list busy once (503) is retried", 0,
     {Fault("Snapshot.List", "Error", R"("Status":503,"RetryAfterS":1,"Count":1)")},
     Setup::kNone, kOk, ""},
    // Group creation.
    {"group: create answers 500", 0,
     {Fault("ConsistencyGroup.Create", "Error", R"("Status":500)")}, Setup::kNone,
     kUnavailable, "500"},
    {"group: create answers 507", 1,
     {Fault("ConsistencyGroup.Create", "Error", R"("Status":507)")}, Setup::kNone,
     kInsufficientStorage, "507"},
    {"group: create hangs past the request timeout", 0,
     {Fault("ConsistencyGroup.Create", "Hang")}, Setup::kNone, kUnavailable, "array a"},
    {"group: made, its reply lost", 1,
     {Fault("ConsistencyGroup.Create", "DropConnection")}, Setup::kNone, kUnavailable, "array b"},
    {"group: reply not JSON", 0,
     {Fault("ConsistencyGroup.Create", "MalformedJson")}, Setup::kNone, kUnavailable,
     "not a JSON object"},
    // The fence, at the window's start (hold_writes): no twophase array
    // takes a set's snapshot without it.
    {"fence: create answers 500", 0,
     {Fault("Fence.Create", "Error", R"("Status":500)")}, Setup::kNone, kUnavailable, "500"},
    {"fence: create busy (503) is not retried inside the window", 1,
     {Fault("Fence.Create", "Error", R"("Status":503,"RetryAfterS":1)")}, Setup::kNone,
     kUnavailable, "503"},
    {"fence: create hangs past the request timeout", 0,
     {Fault("Fence.Create", "Hang")}, Setup::kNone, kUnavailable, "array a"},
    // The fence is up and holds b's writes, but the provider never learnt
    // its id: it must still be lifted when the set fails.
    {"fence: made, its reply lost", 1,
     {Fault("Fence.Create", "DropConnection")}, Setup::kNone, kUnavailable, "array b"},
    {"fence: reply not JSON", 0,
     {Fault("Fence.Create", "MalformedJson")}, Setup::kNone, kUnavailable, "not a JSON object"},
    {"fence: 200 ms slow", 1,
     {Fault("Fence.Create", "Delay", R"("DelayMs":200)")}, Setup::kNone, kOk, ""},
    // Commit: the one POST per array inside the window, under the fence.
    // A commit refused at the door leaves the fence up: the abort lifts it.
    {"commit: answers 500", 0,
     {Fault("ConsistencyGroup.Snapshot", "Error", R"("Status":500)")}, Setup::kNone,
     kUnavailable, "500"},
    {"commit: busy (503) is not retried inside the window", 1,
     {Fault("ConsistencyGroup.Snapshot", "Error", R"("Status":503,"RetryAfterS":1)")},
     Setup::kNone, kUnavailable, "503"},
    // The job runs and makes the replicas; the provider never learns its id.
    {"commit: replicas made, reply lost", 1,
     {Fault("ConsistencyGroup.Snapshot", "DropConnection")}, Setup::kNone,
     kUnavailable, "array b"},
    {"commit: array breaks all-or-none (Partial)", 0,
     {Fault("ConsistencyGroup.Snapshot", "Partial", R"("FailMembers":1)")},
     Setup::kNone, kUnavailable, "500"},
    {"commit: reply not JSON", 1,
     {Fault("ConsistencyGroup.Snapshot", "MalformedJson")}, Setup::kNone,
     kUnavailable, "not a JSON object"},
    {"commit: 200 ms slow", 0,
     {Fault("ConsistencyGroup.Snapshot", "Delay", R"("DelayMs":200)")}, Setup::kNone,
     kOk, ""},
    {"commit: a member's copy fails", 1,
     {Fault("ConsistencyGroup.CopyMember", "Error", R"("Status":500)")}, Setup::kNone,
     kUnavailable, "500"},
    // The commit's job, polled inside the window.
    {"job: commit's poll answers 500", 1,
     {Fault("Job.Get", "Error", R"("Status":500)")}, Setup::kNone, kUnavailable, "500"},
    {"job: commit's poll dropped (no retry inside the window)", 1,
     {Fault("Job.Get", "DropConnection")}, Setup::kNone, kUnavailable, "array b"},
    {"job: commit's poll not JSON", 0,
     {Fault("Job.Get", "MalformedJson")}, Setup::kNone, kUnavailable, "not a JSON object"},
    {"job: poll 300 ms slow", 1,
     {Fault("Job.Get", "Delay", R"("DelayMs":300)")}, Setup::kNone, kOk, ""},
    // The poll's 500 comes while the job still runs (its first member's copy
    // stalls 1.5 s): its replicas appear after the provider gave up on it,
    // and the abort must still find them.
    {"job: commit's poll answers 500 while the job still runs", 1,
     {Fault("ConsistencyGroup.CopyMember", "Delay", R"("DelayMs":1500)"),
      Fault("Job.Get", "Error", R"("Status":500)")}, Setup::kNone, kUnavailable, "500"},
    // Post-commit.
    {"post-commit: group delete answers 500", 0,
     {Fault("ConsistencyGroup.Delete", "Error", R"("Status":500)")}, Setup::kNone,
     kUnavailable, "500"},
    {"post-commit: group delete answers 500 on b", 1,
     {Fault("ConsistencyGroup.Delete", "Error", R"("Status":500)")}, Setup::kNone,
     kUnavailable, "500"},
    // release_writes: the commit has ended the fence already, so lifting
    // it is a 404 the driver takes for done; a 500 there fails the set
    // (the host's rule for a release that fails), which is then undone.
    {"release: fence lift answers 500", 1,
     {Fault("Fence.Delete", "Error", R"("Status":500)")}, Setup::kNone, kUnavailable,
     "releasing writes"},
  };
  return rows;
}
// clang-format on

// Nothing a set made is left on either array, and the catalog agrees.
void ExpectNothingLeft(ProviderFixture& f) {
  f.ExpectNothingLeft();
  CommandResult verify = f.Cli({"list", "--verify"});
  BOOST_TEST(verify.exit_code == 0, verify.output);
}

// Removes whatever a row left behind, through REST, once its checks have
// failed: so that one broken row does not fail every row after it.
void Scrub(ProviderFixture& f) {
  // /mock/state names objects by their Redfish paths; the twophase API by
  // prefixed ids ("snap-N", "cg-N", "fence-N").
  const bool twophase = f.twophase();
  for (int i = 0; i < 2; ++i) {
    rapidjson::Document state = f.State(i);
    for (const auto& fence : state["Fences"].GetArray()) {
      f.Rest(i, "DELETE", std::string("/api/v2/fences/") + fence["Id"].GetString());
    }
    for (const auto& v : state["Volumes"].GetArray()) {
      if (v["SourceId"].IsNull()) continue;
      f.Rest(i, "DELETE",
             twophase ? std::string("/api/v2/snapshots/snap-") + v["Id"].GetString()
                      : v["@odata.id"].GetString());
    }
    for (const auto& g : state["ConsistencyGroups"].GetArray()) {
      f.Rest(i, "DELETE",
             twophase ? std::string("/api/v2/consistency-groups/cg-") + g["Id"].GetString()
                      : g["@odata.id"].GetString());
    }
  }
}

void SetAsync(ProviderFixture& f, int i, bool on, int task_delay_ms = 0) {
  HttpResponse r =
      f.Rest(i, "PATCH", kTaskService,
             std::string(R"({"Oem":{"Snapset":{"AsyncOperations":)") + (on ? "true" : "false") +
                 R"(,"TaskDelayMs":)" + std::to_string(task_delay_ms) + "}}}");
  BOOST_TEST_REQUIRE(r.status == 200, r.body);
}

// A consistency group of array i's LUNs that is not the provider's: made
// (synchronously) before the array turns asynchronous. Returns its path.
std::string MakeGroup(ProviderFixture& f, int i) {
  std::string volumes;
  for (const ArrayLun& lun : f.luns()) {
    if (lun.array != i) continue;
    volumes += std::string(volumes.empty() ? "" : ",") + R"({"@odata.id":")" + lun.path + "\"}";
  }
  HttpResponse r = f.Rest(i, "POST", "/redfish/v1/Storage/array/ConsistencyGroups",
                          R"({"Name":"app-group","Volumes":[)" + volumes + "]}");
  BOOST_TEST_REQUIRE(r.status == 201, r.body);
  return r.Json()["@odata.id"].GetString();
}

// Runs a dialect's table: each row's faults armed, `snapset create` over
// the five LUNs, then what the user relies on checked.
void EveryFaultAtEveryPhase(const std::string& dialect, const std::vector<Row>& rows) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixtureOptions o;
  o.dialect = dialect;
  // A hung request fails the set by this, not by curl's default.
  o.config_a = R"("timeouts_ms": {"request": 3000})";
  o.config_b = R"("timeouts_ms": {"request": 3000})";
  // The existing-group rows need the provider to snapshot through the
  // user's group on b, so that the commit's task is the first it polls:
  // b puts a volume in one group only, which makes it use that group.
  o.extra_b = {"--exclusive-groups"};
  ProviderFixture f(o);
  const std::vector<std::string> urls = f.Urls();  // 3 LUNs on a, 2 on b
  std::vector<std::string> create = {"--json", "create"};
  create.insert(create.end(), urls.begin(), urls.end());

  for (const Row& row : rows) {
    BOOST_TEST_CONTEXT("row \"" << row.name << "\" (fault on array " << (row.array ? "b" : "a")
                                << ")") {
      std::string group;
      const bool slow = row.setup == Setup::kAsyncExistingGroupSlowTasks;
      if (row.setup == Setup::kAsyncExistingGroup || slow) group = MakeGroup(f, row.array);
      if (row.setup != Setup::kNone) SetAsync(f, row.array, true, slow ? 1500 : 0);
      for (const std::string& fault : row.faults) f.Fault(row.array, fault);

      const auto start = steady_clock::now();
      CommandResult r = f.Cli(create);
      const auto took = steady_clock::now() - start;
      BOOST_TEST_MESSAGE(
          row.name << ": exit " << r.exit_code << " in "
                   << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
      // Every failure is bounded: the request timeout, the window, the abort.
      BOOST_TEST((took < seconds(40)), "create took too long");
      BOOST_TEST(r.exit_code == row.exit_code, r.output);
      // Once create has returned, no LUN's writes are held any more: no
      // fence is up (a fence the set failed under is lifted, not left to
      // time out), and a write goes through.
      for (int i = 0; i < 2; ++i) BOOST_TEST(f.Fences(i) == 0, "array " << i << " keeps a fence");
      f.ExpectEveryLunWritable();
      rapidjson::Document doc = JsonOfOutput(r.output);
      if (r.exit_code == kOk && row.exit_code != kOk) {
        // Not what the row expects; the next rows still need a clean slate.
        CommandResult deleted = f.Cli({"delete", "--set", Field(doc, "set_id")});
        BOOST_TEST(deleted.exit_code == 0, deleted.output);
      } else if (row.exit_code == kOk) {
        BOOST_TEST(doc["snapshots"].Size() == urls.size(), r.output);
        CommandResult verify = f.Cli({"list", "--verify"});
        BOOST_TEST(verify.exit_code == 0, verify.output);
        CommandResult deleted = f.Cli({"delete", "--set", Field(doc, "set_id")});
        BOOST_TEST(deleted.exit_code == 0, deleted.output);
      } else {
        const std::string message = Field(doc["error"], "message");
        BOOST_TEST_MESSAGE("  says: " << message);
        BOOST_TEST(message.find(row.says) != std::string::npos, message);
        // It names the array that failed ("array b", "array \"b\"", or "b"
        // among the arrays the volume matcher looked at).
        const std::string name = row.array ? "b" : "a";
        BOOST_TEST(std::regex_search(message, std::regex("array " + name + "\\b|\"" + name + "\"")),
                   message);
        // The catalog keeps no trace of the failed set's snapshots.
        BOOST_TEST(doc["snapshots"].Size() == 0u);
        // Every provider undid its part.
        for (const auto& abort : doc["aborts"].GetArray()) {
          BOOST_TEST(Field(abort, "outcome") == "ok", r.output);
        }
      }

      f.ClearFaults(0);
      f.ClearFaults(1);
      if (row.setup != Setup::kNone) SetAsync(f, row.array, false);
      // A task still running on the array ends before the count: what it
      // leaves, the abort should have found.
      if (slow) std::this_thread::sleep_for(std::chrono::seconds(3));
      if (!group.empty()) {
        HttpResponse gone = f.Rest(row.array, "DELETE", group);
        BOOST_TEST(gone.status == 204, gone.body);
      }
      ExpectNothingLeft(f);
      Scrub(f);
    }
  }
}

BOOST_AUTO_TEST_CASE(every_fault_at_every_phase_leaves_the_set_all_or_none) {
  EveryFaultAtEveryPhase("swordfish", SwordfishRows());
}

// The same over twophase arrays through the example driver: a set under a
// fence on each array, whatever fails, leaves no replica, group or fence,
// and no LUN's writes held.
BOOST_AUTO_TEST_CASE(the_same_over_twophase_arrays_with_fences) {
  EveryFaultAtEveryPhase("twophase", TwoPhaseRows());
}

// A delete the array refuses keeps the snapshot in the catalog (a user must
// still find it, to try again); once the array answers, it goes.
// `delete_operation`: the dialect's snapshot delete.
void AFailedDeleteKeepsTheCatalogEntry(const std::string& dialect,
                                       const std::string& delete_operation) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixtureOptions o;
  o.dialect = dialect;
  ProviderFixture f(o);
  rapidjson::Document made = f.Create(f.Urls());
  const std::string set_id = Field(made, "set_id");
  BOOST_TEST_REQUIRE(made["snapshots"].Size() == 5u);

  f.Fault(1, Fault(delete_operation, "Error", R"("Status":500,"Count":0)"));
  CommandResult failed = f.Cli({"delete", "--set", set_id});
  BOOST_TEST(failed.exit_code == kUnavailable, failed.output);
  BOOST_TEST(failed.output.find("500") != std::string::npos, failed.output);
  // b's two snapshots are still on the array, and every snapshot still on
  // an array is still in the catalog.
  BOOST_TEST(f.Snapshots(1) == 2);
  rapidjson::Document listed = f.Json({"list", "--set", set_id});
  BOOST_TEST(static_cast<int>(listed["snapshots"].Size()) == f.Snapshots(0) + f.Snapshots(1));
  CommandResult verify = f.Cli({"list", "--verify"});
  BOOST_TEST(verify.exit_code == 0, verify.output);

  f.ClearFaults(1);
  CommandResult deleted = f.Cli({"delete", "--set", set_id});
  BOOST_TEST(deleted.exit_code == 0, deleted.output);
  ExpectNothingLeft(f);
}

BOOST_AUTO_TEST_CASE(a_failed_delete_keeps_the_catalog_entry_until_it_succeeds) {
  AFailedDeleteKeepsTheCatalogEntry("swordfish", "Volume.RemoveReplicaRelationship");
}

BOOST_AUTO_TEST_CASE(the_same_over_twophase_arrays) {
  AFailedDeleteKeepsTheCatalogEntry("twophase", "Snapshot.Delete");
}

}  // namespace
}  // namespace snapset::test
