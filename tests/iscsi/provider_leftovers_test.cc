// SPDX-License-Identifier: Apache-2.0
// Nothing left on an array, over both dialects, when things go wrong after
// the array started working for a set:
//   - a group snapshot request still running when the set aborts (a 6 s
//     stall in a 2 s window), with a user's group of exactly the set's
//     volumes on the array: no replica appears after the abort;
//   - an abort that fails (the array refuses to delete the set's group):
//     the set is "abort-incomplete" with what remains and where, every
//     later command retries, and once the array is mended nothing is left;
//   - `snapset create` killed (SIGKILL) inside the window, then the first
//     recovery failing as well: the same;
//   - `snapset create` killed at random moments over the software-cow
//     provider: nothing stays in snapset-cowd;
//   - orphans (a set the catalog lost, a group of no set): listed by
//     `list --verify`, shown by `snapset orphans`, removed by
//     `snapset orphans --remove`, with the user's own objects untouched.
#define BOOST_TEST_MODULE iscsi_provider_leftovers_test
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/catalog.hpp"
#include "tests/iscsi/provider_fixture.hpp"
#include "tests/support/spawn.hpp"

namespace snapset::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

// What differs between the two array APIs for these tests.
struct Dialect {
  std::string name;
  std::string snapshot_operation;  // the fault-injection name of the commit
};

const Dialect kSwordfish{"swordfish", "ConsistencyGroup.CreateReplicaTarget"};
const Dialect kTwoPhase{"twophase", "ConsistencyGroup.Snapshot"};

std::string Fault(const std::string& op, const std::string& mode, const std::string& more) {
  return R"({"Operation":")" + op + R"(","Mode":")" + mode + "\"," + more + "}";
}

// The URLs of array a's LUNs.
std::vector<std::string> UrlsOnA(const ProviderFixture& f) {
  std::vector<std::string> urls;
  for (const ArrayLun& lun : f.luns())
    if (lun.array == 0) urls.push_back(lun.url);
  return urls;
}

// A consistency group of the user's, of every LUN of array i, named `name`.
// Returns the REST path that deletes it.
std::string MakeGroup(ProviderFixture& f, const Dialect& d, int i, const std::string& name) {
  std::string members;
  for (const ArrayLun& lun : f.luns()) {
    if (lun.array != i) continue;
    if (!members.empty()) members += ",";
    members +=
        d.name == "twophase" ? "\"" + lun.path + "\"" : R"({"@odata.id":")" + lun.path + "\"}";
  }
  if (d.name == "twophase") {
    HttpResponse r = f.Rest(i, "POST", "/api/v2/consistency-groups",
                            R"({"label":")" + name + R"(","luns":[)" + members + "]}");
    BOOST_TEST_REQUIRE(r.status == 201, r.body);
    return "/api/v2/consistency-groups/" + std::string(r.Json()["id"].GetString());
  }
  HttpResponse r = f.Rest(i, "POST", "/redfish/v1/Storage/array/ConsistencyGroups",
                          R"({"Name":")" + name + R"(","Volumes":[)" + members + "]}");
  BOOST_TEST_REQUIRE(r.status == 201, r.body);
  return r.Json()["@odata.id"].GetString();
}

// Names of array i's groups.
std::vector<std::string> GroupNames(ProviderFixture& f, int i) {
  std::vector<std::string> names;
  for (const auto& g : f.State(i)["ConsistencyGroups"].GetArray())
    names.push_back(g["Name"].GetString());
  return names;
}

// Polls until array i has a group named for a set (the set is prepared),
// or fails the test after 30 s.
void WaitForTemporaryGroup(ProviderFixture& f, int i) {
  const auto give_up = steady_clock::now() + seconds(30);
  for (;;) {
    for (const std::string& n : GroupNames(f, i))
      if (n.rfind("snapset-", 0) == 0) return;
    BOOST_TEST_REQUIRE((steady_clock::now() < give_up), "no temporary group appeared");
    std::this_thread::sleep_for(milliseconds(20));
  }
}

// `snapset --json show SET`: its "set" object as a document.
rapidjson::Document ShowSet(const ProviderFixture& f, const std::string& set_id) {
  return f.Json({"show", set_id});
}

void ExpectAbortIncompleteOnA(const ProviderFixture& f, const std::string& set_id) {
  rapidjson::Document shown = ShowSet(f, set_id);
  const rapidjson::Value& set = shown["set"];
  BOOST_TEST(Field(set, "state") == "abort-incomplete");
  BOOST_TEST_REQUIRE(set["leftovers"].Size() == 1u);
  const std::string detail = Field(set["leftovers"][0], "detail");
  // What remains and where: the array, and the object it could not remove.
  BOOST_TEST(detail.find("array a") != std::string::npos, detail);
  BOOST_TEST(detail.find("group snapset-" + set_id) != std::string::npos, detail);
  BOOST_TEST(Field(set["leftovers"][0], "provider") == "iscsi");
}

void LateCommitOnAUsersGroupLeavesNoReplica(const Dialect& d) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixtureOptions o;
  o.dialect = d.name;
  ProviderFixture f(o);
  const std::string users = MakeGroup(f, d, 0, "app-group");
  // The commit request reaches the array 6 s late, in a 2 s window.
  f.Fault(0, Fault(d.snapshot_operation, "Delay", R"("DelayMs":6000)"));
  std::vector<std::string> args = {"create", "--window-ms", "2000"};
  for (const std::string& url : UrlsOnA(f)) args.push_back(url);
  const auto start = steady_clock::now();
  CommandResult r = f.Cli(args);
  BOOST_TEST(r.exit_code != 0, r.output);
  BOOST_TEST(r.output.find("nothing was kept") != std::string::npos, r.output);
  // Past the stalled request, with a margin: it has run on the array.
  std::this_thread::sleep_until(start + seconds(9));
  BOOST_TEST(f.Snapshots(0) == 0, "a replica appeared after the abort");
  BOOST_TEST(GroupNames(f, 0) == std::vector<std::string>{"app-group"},
             boost::test_tools::per_element());
  CommandResult verify = f.Cli({"list", "--verify"});
  BOOST_TEST(verify.exit_code == 0, verify.output);
  HttpResponse gone = f.Rest(0, "DELETE", users);
  BOOST_TEST(gone.status == 204, gone.body);
  f.ExpectNothingLeft();
}

void FailedAbortIsRecordedAndRetried(const Dialect& d) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixtureOptions o;
  o.dialect = d.name;
  ProviderFixture f(o);
  // The commit fails, and so does every removal of a group: the set's
  // temporary group stays.
  f.Fault(0, Fault(d.snapshot_operation, "Error", R"("Status":500)"));
  f.Fault(0, Fault("ConsistencyGroup.Delete", "Error", R"("Status":503,"Count":0)"));
  std::vector<std::string> args = {"--json", "create"};
  for (const std::string& url : f.Urls()) args.push_back(url);
  CommandResult r = f.Cli(args);
  BOOST_TEST(r.exit_code != 0, r.output);
  rapidjson::Document doc = JsonOfOutput(r.output);
  const std::string set_id = Field(doc, "set_id");
  bool incomplete = false;
  for (const auto& abort : doc["aborts"].GetArray()) incomplete |= Field(abort, "outcome") != "ok";
  BOOST_TEST(incomplete, r.output);
  ExpectAbortIncompleteOnA(f, set_id);

  // Still failing: every command retries, warns, and changes nothing.
  CommandResult listed = f.Cli({"list"});
  BOOST_TEST(listed.exit_code == 0, listed.output);
  BOOST_TEST(
      listed.output.find("abort of set " + set_id + " is still incomplete") != std::string::npos,
      listed.output);
  ExpectAbortIncompleteOnA(f, set_id);
  // The text form says the same.
  CommandResult shown = f.Cli({"show", set_id});
  BOOST_TEST(shown.output.find("abort-incomplete") != std::string::npos, shown.output);
  BOOST_TEST(shown.output.find("on provider iscsi: ") != std::string::npos, shown.output);
  // --verify shows what the set still owns, and that it is not an orphan.
  rapidjson::Document verify = JsonOfOutput(f.Cli({"--json", "list", "--verify"}).output);
  BOOST_TEST_REQUIRE(verify["differences"].Size() == 1u);
  const rapidjson::Value& finding = verify["differences"][0];
  BOOST_TEST(Field(finding, "kind") == "group");
  BOOST_TEST(Field(finding, "name") == "snapset-" + set_id);
  BOOST_TEST(Field(finding, "location") == "array a");
  BOOST_TEST(!finding["orphan"].GetBool());
  // Nor can it be deleted before its abort is done.
  CommandResult deleted = f.Cli({"delete", "--set", set_id});
  BOOST_TEST(deleted.exit_code == 8, deleted.output);

  // The array is mended: the next command finishes the abort.
  f.ClearFaults(0);
  CommandResult again = f.Cli({"list"});
  BOOST_TEST(again.exit_code == 0, again.output);
  BOOST_TEST(Field(ShowSet(f, set_id)["set"], "state") == "aborted");
  f.ExpectNothingLeft();
  BOOST_TEST(f.Cli({"list", "--verify"}).exit_code == 0);
}

void KilledInTheWindowWithAFailingRecovery(const Dialect& d) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixtureOptions o;
  o.dialect = d.name;
  ProviderFixture f(o);
  // The commit request stalls 4 s: the kill lands while it is on its way,
  // and it makes its replicas after the process is gone.
  f.Fault(0, Fault(d.snapshot_operation, "Delay", R"("DelayMs":4000)"));
  std::vector<std::string> args = {"create", "--window-ms", "3000"};
  for (const std::string& url : f.Urls()) args.push_back(url);
  const pid_t pid = SpawnQuietly(f.CliArgv(args));
  BOOST_TEST_REQUIRE(pid > 0);
  WaitForTemporaryGroup(f, 0);
  std::this_thread::sleep_for(milliseconds(800));  // into the window
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);

  // The first recovery cannot remove the group.
  f.Fault(0, Fault("ConsistencyGroup.Delete", "Error", R"("Status":503,"Count":0)"));
  rapidjson::Document listed = JsonOfOutput(f.Cli({"--json", "list"}).output);
  BOOST_TEST(listed["snapshots"].Size() == 0u);
  CommandResult verify = f.Cli({"--json", "list", "--verify"});
  BOOST_TEST(verify.exit_code == 8, verify.output);  // differences
  rapidjson::Document all = JsonOfOutput(verify.output);
  std::string set_id;
  for (const auto& finding : all["differences"].GetArray())
    if (Field(finding, "kind") == "group") set_id = Field(finding, "set_id");
  BOOST_TEST_REQUIRE(!set_id.empty(), "no group of the killed set is reported");
  ExpectAbortIncompleteOnA(f, set_id);
  BOOST_TEST(Field(ShowSet(f, set_id)["set"], "error").find("coordinator stopped") !=
             std::string::npos);

  // The stalled request ran meanwhile (its group was still there). Then the
  // array is mended: the next command removes the group and the replicas.
  std::this_thread::sleep_for(seconds(5));
  f.ClearFaults(0);
  CommandResult again = f.Cli({"list"});
  BOOST_TEST(again.exit_code == 0, again.output);
  BOOST_TEST(Field(ShowSet(f, set_id)["set"], "state") == "aborted");
  f.ExpectNothingLeft();
  BOOST_TEST(f.State(0)["Fences"].Size() == 0u);
  BOOST_TEST(f.Cli({"list", "--verify"}).exit_code == 0);
}

void OrphansAreListedAndRemoved(const Dialect& d) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixtureOptions o;
  o.dialect = d.name;
  ProviderFixture f(o);
  const std::string users = MakeGroup(f, d, 1, "app-group");
  // A set the catalog then loses (a catalog restored from an old backup),
  // one of its snapshots exposed; and a group named for a set nobody has.
  rapidjson::Document made = f.Create(UrlsOnA(f));
  const std::string set_id = Field(made, "set_id");
  const std::string exposed = Field(made["snapshots"][0], "snapshot_id");
  CommandResult expose = f.Cli({"expose", exposed});
  BOOST_TEST_REQUIRE(expose.exit_code == 0, expose.output);
  {
    auto catalog = Catalog::Open(f.state_dir());
    BOOST_TEST_REQUIRE(catalog.ok(), catalog.status().ToString());
    BOOST_TEST_REQUIRE((*catalog)->DeleteSet(set_id).ok());
  }
  const std::string stray = "0d2f6d3e-5c1b-4a8e-9f00-7b6c1d2e3f4a";
  MakeGroup(f, d, 1, "snapset-" + stray);

  const size_t expected = UrlsOnA(f).size() + 2;  // replicas, the exposure, the group
  CommandResult verify = f.Cli({"--json", "list", "--verify"});
  BOOST_TEST(verify.exit_code == 8, verify.output);
  rapidjson::Document found = JsonOfOutput(verify.output);
  BOOST_TEST(found["differences"].Size() == expected, verify.output);
  for (const auto& finding : found["differences"].GetArray())
    BOOST_TEST(finding["orphan"].GetBool(), verify.output);

  // The dry run lists them and removes nothing.
  CommandResult dry = f.Cli({"orphans"});
  BOOST_TEST(dry.exit_code == 0, dry.output);
  BOOST_TEST(dry.output.find("Dry run: nothing was removed") != std::string::npos, dry.output);
  BOOST_TEST(dry.output.find("exposure snapset-" + exposed) != std::string::npos, dry.output);
  BOOST_TEST(dry.output.find("group snapset-" + stray) != std::string::npos, dry.output);
  BOOST_TEST(f.Snapshots(0) == int(UrlsOnA(f).size()));
  BOOST_TEST(f.ExtraConnections(0) == 1);

  rapidjson::Document removed = f.Json({"orphans", "--remove"});
  BOOST_TEST(!removed["dry_run"].GetBool());
  BOOST_TEST(removed["orphans"].Size() == expected);
  for (const auto& orphan : removed["orphans"].GetArray())
    BOOST_TEST(orphan["removed"].GetBool(), Field(orphan, "name") << Field(orphan, "error"));
  BOOST_TEST(f.Snapshots(0) == 0);
  BOOST_TEST(f.ExtraConnections(0) == 0);
  BOOST_TEST(GroupNames(f, 1) == std::vector<std::string>{"app-group"},
             boost::test_tools::per_element());
  BOOST_TEST(f.Cli({"list", "--verify"}).exit_code == 0);
  CommandResult none = f.Cli({"orphans"});
  BOOST_TEST(none.output.find("No orphans") != std::string::npos, none.output);
  HttpResponse gone = f.Rest(1, "DELETE", users);
  BOOST_TEST(gone.status == 204, gone.body);
  f.ExpectNothingLeft();
}

// An array that puts a volume in one group only refuses the provider's own
// group when the user has one: the provider takes the user's group of
// exactly the set's volumes, and leaves it as it was.
void UsersGroupOnAnArrayOfExclusiveGroups(const Dialect& d) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixtureOptions o;
  o.dialect = d.name;
  o.extra_a = {"--exclusive-groups"};
  ProviderFixture f(o);
  const std::string users = MakeGroup(f, d, 0, "app-group");
  rapidjson::Document made = f.Create(UrlsOnA(f));
  BOOST_TEST(made["snapshots"].Size() == UrlsOnA(f).size());
  BOOST_TEST(GroupNames(f, 0) == std::vector<std::string>{"app-group"},
             boost::test_tools::per_element());
  BOOST_TEST(f.Cli({"list", "--verify"}).exit_code == 0);
  // Without a group of exactly these volumes, the refusal is the error.
  std::vector<std::string> two = UrlsOnA(f);
  two.pop_back();
  std::vector<std::string> args = {"create"};
  args.insert(args.end(), two.begin(), two.end());
  CommandResult r = f.Cli(args);
  BOOST_TEST(r.exit_code == 8, r.output);  // bad state
  BOOST_TEST(r.output.find("array a") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("app-group") != std::string::npos, r.output);
  CommandResult deleted = f.Cli({"delete", "--set", Field(made, "set_id")});
  BOOST_TEST(deleted.exit_code == 0, deleted.output);
  HttpResponse gone = f.Rest(0, "DELETE", users);
  BOOST_TEST(gone.status == 204, gone.body);
  f.ExpectNothingLeft();
}

// The software-cow provider under the same kill: a set over an array LUN
// and cow:db, killed at random moments (inside its write-gate hold among
// them), leaves no snapshot in snapset-cowd that no catalog entry names.
void CowCreateKilledAtAnyMomentLeavesNothingInTheDaemon() {
  if (!ProviderFixtureAvailable(/*cow=*/true)) return;
  ProviderFixtureOptions o;
  o.cow = true;
  ProviderFixture f(o);
  const unsigned seed = std::random_device{}();
  BOOST_TEST_MESSAGE("seed " << seed);
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 10; ++trial) {
    BOOST_TEST_CONTEXT("seed " << seed << ", trial " << trial) {
      const pid_t pid = SpawnQuietly(f.CliArgv({"create", f.luns()[0].url, "cow:db"}));
      BOOST_TEST_REQUIRE(pid > 0);
      std::this_thread::sleep_for(milliseconds(rng() % 150));
      ::kill(pid, SIGKILL);
      int status = 0;
      ::waitpid(pid, &status, 0);
      // The next command recovers; then every snapshot in the daemon and on
      // the array is one of a complete set, and the reverse.
      CommandResult verify = f.Cli({"list", "--verify"});
      BOOST_TEST(verify.exit_code == 0, verify.output);
    }
  }
  rapidjson::Document listed = f.Json({"list"});
  for (const auto& s : listed["snapshots"].GetArray()) {
    CommandResult r = f.Cli({"delete", s["snapshot_id"].GetString()});
    BOOST_TEST(r.exit_code == 0, r.output);
  }
  BOOST_TEST(f.Cli({"list", "--verify"}).exit_code == 0);
  f.ExpectNothingLeft();
}

}  // namespace

BOOST_AUTO_TEST_CASE(software_cow_create_killed_at_any_moment_leaves_nothing_in_the_daemon) {
  CowCreateKilledAtAnyMomentLeavesNothingInTheDaemon();
}

BOOST_AUTO_TEST_CASE(a_late_commit_on_a_users_group_leaves_no_replica_swordfish) {
  LateCommitOnAUsersGroupLeavesNoReplica(kSwordfish);
}
BOOST_AUTO_TEST_CASE(a_late_commit_on_a_users_group_leaves_no_replica_twophase) {
  LateCommitOnAUsersGroupLeavesNoReplica(kTwoPhase);
}
BOOST_AUTO_TEST_CASE(a_failed_abort_is_recorded_and_retried_swordfish) {
  FailedAbortIsRecordedAndRetried(kSwordfish);
}
BOOST_AUTO_TEST_CASE(a_failed_abort_is_recorded_and_retried_twophase) {
  FailedAbortIsRecordedAndRetried(kTwoPhase);
}
BOOST_AUTO_TEST_CASE(killed_in_the_window_with_a_failing_recovery_swordfish) {
  KilledInTheWindowWithAFailingRecovery(kSwordfish);
}
BOOST_AUTO_TEST_CASE(killed_in_the_window_with_a_failing_recovery_twophase) {
  KilledInTheWindowWithAFailingRecovery(kTwoPhase);
}
BOOST_AUTO_TEST_CASE(a_users_group_is_used_where_a_volume_may_be_in_one_group_swordfish) {
  UsersGroupOnAnArrayOfExclusiveGroups(kSwordfish);
}
BOOST_AUTO_TEST_CASE(a_users_group_is_used_where_a_volume_may_be_in_one_group_twophase) {
  UsersGroupOnAnArrayOfExclusiveGroups(kTwoPhase);
}
BOOST_AUTO_TEST_CASE(orphans_are_listed_and_removed_swordfish) {
  OrphansAreListedAndRemoved(kSwordfish);
}
BOOST_AUTO_TEST_CASE(orphans_are_listed_and_removed_twophase) {
  OrphansAreListedAndRemoved(kTwoPhase);
}

}  // namespace snapset::test
