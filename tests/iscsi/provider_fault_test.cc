// The iSCSI provider keeps a set all or none whatever the arrays do: for
// each fault the mock array injects, at each phase of a set (prepare, group
// creation, commit, task polling, post-commit, delete), `snapset create`
// over five LUNs on two arrays either succeeds or fails as it should, and
// afterwards neither array holds a replica, a group or a connection the set
// made, and the catalog agrees with the arrays (`list --verify`).
//
// One fixture serves every row (faults cleared in between), so the table
// costs one pair of array start-ups.
#define BOOST_TEST_MODULE iscsi_provider_fault_test
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <functional>
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

std::string Field(const rapidjson::Value& v, const char* key) {
  return v.IsObject() && v.HasMember(key) && v[key].IsString() ? v[key].GetString() : "";
}

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
  // set's volumes there, which the provider uses instead of making one: so
  // the first task monitor the provider polls on b is the commit's.
  kAsyncExistingGroup,
  // The same, and every task waits 1.5 s before its operation runs.
  kAsyncExistingGroupSlowTasks,
};

struct Row {
  const char* name;
  int array;  // where the fault is armed: 0 (a) or 1 (b)
  std::vector<std::string> faults;
  Setup setup;
  int exit_code;     // kOk: the set is created
  const char* says;  // in the error message of a failed set
};

// "Group" in the phase names below is the set's temporary consistency group
// on each array, made at end_prepare. A table reads best one row a line.
// clang-format off
const std::vector<Row>& Rows() {
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
  for (int i = 0; i < 2; ++i) {
    rapidjson::Document state = f.State(i);
    for (const auto& v : state["Volumes"].GetArray()) {
      if (!v["SourceId"].IsNull()) f.Rest(i, "DELETE", v["@odata.id"].GetString());
    }
    for (const auto& g : state["ConsistencyGroups"].GetArray()) {
      f.Rest(i, "DELETE", g["@odata.id"].GetString());
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

BOOST_AUTO_TEST_CASE(every_fault_at_every_phase_leaves_the_set_all_or_none) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixtureOptions o;
  // A hung request fails the set by this, not by curl's default.
  o.config_a = R"("timeouts_ms": {"request": 3000})";
  o.config_b = R"("timeouts_ms": {"request": 3000})";
  ProviderFixture f(o);
  const std::vector<std::string> urls = f.Urls();  // 3 LUNs on a, 2 on b
  std::vector<std::string> create = {"--json", "create"};
  create.insert(create.end(), urls.begin(), urls.end());

  for (const Row& row : Rows()) {
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
        BOOST_TEST(message.find(row.says) != std::string::npos, message);
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

// A delete the array refuses keeps the snapshot in the catalog (a user must
// still find it, to try again); once the array answers, it goes.
BOOST_AUTO_TEST_CASE(a_failed_delete_keeps_the_catalog_entry_until_it_succeeds) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixture f;
  rapidjson::Document made = f.Create(f.Urls());
  const std::string set_id = Field(made, "set_id");
  BOOST_TEST_REQUIRE(made["snapshots"].Size() == 5u);

  f.Fault(1, Fault("Volume.RemoveReplicaRelationship", "Error", R"("Status":500,"Count":0)"));
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

}  // namespace
}  // namespace snapset::test
