// Fault injection, the /mock routes and the array's refusals (401 / 403 /
// 429 / 503), against the real binary over real HTTP and real iSCSI.
#define BOOST_TEST_MODULE mock_array_fault
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/mock-array/connections.hpp"
#include "tests/mock-array/iscsi_lun.hpp"
#include "tests/mock-array/mock_array_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";
constexpr char kGroups[] = "/redfish/v1/Storage/array/ConsistencyGroups";
constexpr char kSessions[] = "/redfish/v1/SessionService/Sessions";
constexpr char kFaults[] = "/mock/faults";
constexpr char kSnapshotBody[] = R"({"ReplicaType":"Snapshot"})";

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

std::string GroupSnapshot(const std::string& group) {
  return group + "/Actions/ConsistencyGroup.CreateReplicaTarget";
}

// One array per test in its own state directory, stopped whatever happens.
struct Array {
  explicit Array(const std::vector<std::string>& extra = {}) {
    if (!MockArrayAvailable()) return;
    process = std::make_unique<MockArrayProcess>(state_dir(), extra);
    token = process->Login();
  }
  bool ok() const { return process != nullptr; }
  std::string state_dir() const { return dir.str() + "/state"; }
  HttpResponse Get(const std::string& path) const {
    return Http("GET", process->Url(path), "", token);
  }
  HttpResponse Post(const std::string& path, const std::string& body) const {
    return Http("POST", process->Url(path), body, token);
  }
  HttpResponse Delete(const std::string& path) const {
    return Http("DELETE", process->Url(path), "", token);
  }
  // A request that may fail below HTTP: status 0 and transport_error then.
  HttpResponse Try(const std::string& method, const std::string& path, const std::string& body,
                   long timeout_ms) const {
    HttpOptions options;
    options.timeout_ms = timeout_ms;
    options.throw_on_transport_error = false;
    return Http(method, process->Url(path), body, token, options);
  }
  HttpResponse CreateVolume(const std::string& name, uint64_t bytes = 1 << 20) const {
    return Post(kVolumes,
                R"({"Name":")" + name + R"(","CapacityBytes":)" + std::to_string(bytes) + "}");
  }
  std::string VolumePath(const std::string& name) const {
    HttpResponse r = CreateVolume(name);
    BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
    return r.Json()["@odata.id"].GetString();
  }
  // A group of new volumes named `members`; returns its path.
  std::string CreateGroup(const std::string& name, const std::vector<std::string>& members) const {
    std::string list;
    for (const std::string& m : members) {
      list += (list.empty() ? "" : ",") + std::string(R"({"@odata.id":")") + VolumePath(m) + "\"}";
    }
    HttpResponse r = Post(kGroups, R"({"Name":")" + name + R"(","Volumes":[)" + list + "]}");
    BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
    return r.Json()["@odata.id"].GetString();
  }
  // Arms a fault; fails the test unless it is accepted. Returns its Id.
  std::string Arm(const std::string& body) const {
    HttpResponse r = Post(kFaults, body);
    BOOST_REQUIRE_MESSAGE(r.status == 201, body << ": " << r.body);
    return r.Json()["Id"].GetString();
  }
  rapidjson::Document State() const {
    HttpResponse r = Get("/mock/state");
    BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
    return r.Json();
  }
  int FaultCount() const { return Get(kFaults).Json()["Members@odata.count"].GetInt(); }

  TempDir dir;
  std::unique_ptr<MockArrayProcess> process;
  std::string token;
};

// How a test reaches a volume over iSCSI: a connection of its own to the
// test initiator, and the iscsi://PORTAL/IQN/LUN it answers with.
std::string IscsiUrl(const MockArrayProcess& array, const std::string& token,
                     const std::string& volume_path) {
  ConnectionRequest request;
  request.volumes = {volume_path};
  return Connect(array, token, request).urls.at(0);
}

// The volume rows of GET /mock/state, by name.
std::map<std::string, const rapidjson::Value*> ByName(const rapidjson::Document& state) {
  std::map<std::string, const rapidjson::Value*> out;
  for (const auto& v : state["Volumes"].GetArray()) out[v["Name"].GetString()] = &v;
  return out;
}

int Snapshots(const rapidjson::Document& state) {
  int n = 0;
  for (const auto& v : state["Volumes"].GetArray()) n += v["SourceId"].IsNull() ? 0 : 1;
  return n;
}

BOOST_AUTO_TEST_CASE(an_error_fault_answers_its_status_count_times_then_the_operation_works) {
  Array array;
  if (!array.ok()) return;
  const std::string id =
      array.Arm(R"({"Operation":"Volume.Create","Mode":"Error","Status":409,"Count":2})");
  HttpResponse listed = array.Get(std::string(kFaults) + "/" + id);
  BOOST_TEST(listed.status == 200);
  BOOST_TEST(listed.Json()["Remaining"].GetInt() == 2);
  HttpResponse first = array.CreateVolume("v");
  BOOST_TEST(first.status == 409);
  BOOST_TEST(first.ErrorCode() == "Base.1.8.ResourceInUse");
  BOOST_TEST(array.Get(std::string(kFaults) + "/" + id).Json()["Remaining"].GetInt() == 1);
  BOOST_TEST(array.CreateVolume("v").status == 409);
  // Spent: gone from the list, and the operation works again.
  BOOST_TEST(array.FaultCount() == 0);
  BOOST_TEST(array.Get(std::string(kFaults) + "/" + id).status == 404);
  BOOST_TEST(array.CreateVolume("v").status == 201);

  array.Arm(R"({"Operation":"Volume.Get","Mode":"Error","Status":404})");
  HttpResponse missing = array.Get(std::string(kVolumes) + "/1");
  BOOST_TEST(missing.status == 404);
  BOOST_TEST(missing.ErrorCode() == "Base.1.8.ResourceNotFound");
  BOOST_TEST(array.Get(std::string(kVolumes) + "/1").status == 200);

  array.Arm(R"({"Operation":"Volume.List","Mode":"Error"})");  // Status 500 by default
  HttpResponse failed = array.Get(kVolumes);
  BOOST_TEST(failed.status == 500);
  BOOST_TEST(!failed.ErrorCode().empty());
  BOOST_TEST(failed.headers.count("retry-after") == 0u);
  BOOST_TEST(array.Get(kVolumes).status == 200);
}

BOOST_AUTO_TEST_CASE(error_faults_with_429_and_503_carry_retry_after) {
  Array array;
  if (!array.ok()) return;
  array.Arm(R"({"Operation":"Volume.Create","Mode":"Error","Status":429})");
  HttpResponse busy = array.CreateVolume("v");
  BOOST_TEST(busy.status == 429);
  BOOST_TEST(busy.headers["retry-after"] == "1");
  BOOST_TEST(busy.ErrorCode() == "Base.1.8.ServiceTemporarilyUnavailable");
  array.Arm(R"({"Operation":"Session.Create","Mode":"Error","Status":503,"RetryAfterS":7})");
  HttpResponse down =
      Http("POST", array.process->Url(kSessions), R"({"UserName":"admin","Password":"admin"})");
  BOOST_TEST(down.status == 503);
  BOOST_TEST(down.headers["retry-after"] == "7");
  BOOST_TEST(array.CreateVolume("v").status == 201);
}

BOOST_AUTO_TEST_CASE(a_fault_with_count_0_fires_until_deleted) {
  Array array;
  if (!array.ok()) return;
  const std::string id =
      array.Arm(R"({"Operation":"Volume.List","Mode":"Error","Status":500,"Count":0})");
  for (int i = 0; i < 4; ++i) BOOST_TEST(array.Get(kVolumes).status == 500, "try " << i);
  rapidjson::Document listed = array.Get(kFaults).Json();
  BOOST_REQUIRE_EQUAL(listed["Members@odata.count"].GetInt(), 1);
  BOOST_TEST(listed["Members"][0]["Count"].GetInt() == 0);
  BOOST_TEST(listed["Members"][0]["Remaining"].IsNull());
  BOOST_TEST(array.Delete(std::string(kFaults) + "/" + id).status == 204);
  BOOST_TEST(array.Get(kVolumes).status == 200);
  BOOST_TEST(array.Delete(std::string(kFaults) + "/" + id).status == 404);
  BOOST_TEST(array.Delete(std::string(kFaults) + "/nope").status == 404);
}

BOOST_AUTO_TEST_CASE(a_delay_fault_delays_then_runs_the_operation) {
  Array array;
  if (!array.ok()) return;
  array.Arm(R"({"Operation":"Volume.Create","Mode":"Delay","DelayMs":700})");
  const auto start = Clock::now();
  HttpResponse r = array.CreateVolume("slow");
  BOOST_TEST(MsSince(start) >= 700);
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  BOOST_TEST(array.Get(r.Json()["@odata.id"].GetString()).status == 200);
}

BOOST_AUTO_TEST_CASE(a_hang_never_answers_blocks_no_one_else_and_ends_with_the_fault) {
  Array array;
  if (!array.ok()) return;
  const std::string volume = array.VolumePath("v");
  array.Arm(R"({"Operation":"Volume.Get","Mode":"Hang","Count":0})");
  // A client that gives up after 1 s gets no answer at all.
  const auto start = Clock::now();
  HttpResponse gave_up = array.Try("GET", volume, "", 1000);
  BOOST_TEST(gave_up.status == 0);
  BOOST_TEST(!gave_up.transport_error.empty());
  BOOST_TEST(MsSince(start) >= 900);
  // A patient client hangs too, while the array serves everyone else.
  HttpResponse patient;
  std::thread waiter([&] { patient = array.Try("GET", volume, "", 30000); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  BOOST_TEST(array.Get(kVolumes).status == 200);
  BOOST_TEST(array.CreateVolume("other").status == 201);
  BOOST_TEST(array.Get("/mock/state").status == 200);
  // Deleting the faults ends the hang: the connection closes, unanswered.
  const auto released = Clock::now();
  BOOST_TEST(array.Delete(kFaults).status == 204);
  waiter.join();
  BOOST_TEST(MsSince(released) < 10000);
  BOOST_TEST(patient.status == 0, patient.body);
  BOOST_TEST(!patient.transport_error.empty());
  BOOST_TEST(array.Get(volume).status == 200);
}

BOOST_AUTO_TEST_CASE(malformed_json_fault_answers_200_with_a_body_that_is_not_json) {
  Array array;
  if (!array.ok()) return;
  array.Arm(R"({"Operation":"Volume.Create","Mode":"MalformedJson"})");
  HttpResponse r = array.CreateVolume("v");
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.headers["content-type"] == "application/json");
  BOOST_TEST(!r.body.empty());
  BOOST_TEST(r.Json().HasParseError(), r.body);
  // Nothing ran.
  BOOST_TEST(array.State()["Volumes"].Size() == 0u);
  BOOST_TEST(array.CreateVolume("v").status == 201);
}

BOOST_AUTO_TEST_CASE(drop_connection_runs_the_operation_but_loses_the_reply) {
  Array array;
  if (!array.ok()) return;
  array.Arm(R"({"Operation":"Volume.Create","Mode":"DropConnection"})");
  HttpResponse r = array.Try("POST", kVolumes, R"({"Name":"lost","CapacityBytes":1048576})", 10000);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(!r.transport_error.empty());
  // Yet the volume was created, as on an array whose reply got lost.
  rapidjson::Document state = array.State();
  BOOST_REQUIRE_EQUAL(state["Volumes"].Size(), 1u);
  BOOST_TEST(state["Volumes"][0]["Name"].GetString() == std::string("lost"));
  BOOST_TEST(state["Volumes"][0]["State"].GetString() == std::string("ready"));
  const std::string path = state["Volumes"][0]["@odata.id"].GetString();
  BOOST_TEST(array.Get(path).status == 200);
  // A reply without a body is cut all the same.
  array.Arm(R"({"Operation":"Volume.Delete","Mode":"DropConnection"})");
  BOOST_TEST(array.Try("DELETE", path, "", 10000).status == 0);
  BOOST_TEST(array.Get(path).status == 404);
}

BOOST_AUTO_TEST_CASE(partial_group_snapshot_leaves_the_first_snapshots_and_names_them) {
  Array array;
  if (!array.ok()) return;
  const std::string group = array.CreateGroup("g", {"a", "b", "c"});
  // Partial applies to the group snapshot only.
  BOOST_TEST(array.Post(kFaults, R"({"Operation":"Volume.Create","Mode":"Partial"})").status ==
             400);
  array.Arm(R"({"Operation":"ConsistencyGroup.CreateReplicaTarget","Mode":"Partial"})");
  HttpResponse r = array.Post(GroupSnapshot(group), kSnapshotBody);
  BOOST_TEST(r.status == 500);
  rapidjson::Document body = r.Json();
  BOOST_REQUIRE(!body.HasParseError());
  const std::string message = body["error"]["message"].GetString();
  BOOST_TEST(message.find("member(s) c ") != std::string::npos, message);
  BOOST_TEST(message.find("a-snap-1") != std::string::npos, message);
  BOOST_TEST(message.find("b-snap-1") != std::string::npos, message);
  BOOST_TEST(body["error"]["@Message.ExtendedInfo"].Size() == 3u);
  const auto& created = body["error"]["Oem"]["Snapset"]["CreatedSnapshots"];
  BOOST_TEST(created.Size() == 2u);
  BOOST_TEST(body["error"]["Oem"]["Snapset"]["FailedMembers"].Size() == 1u);
  // The two snapshots are there, ready; none of c.
  rapidjson::Document state = array.State();
  auto rows = ByName(state);
  BOOST_TEST(Snapshots(state) == 2);
  for (const char* name : {"a-snap-1", "b-snap-1"}) {
    BOOST_REQUIRE_MESSAGE(rows.count(name) == 1, name);
    BOOST_TEST(std::string((*rows[name])["State"].GetString()) == "ready");
  }
  BOOST_TEST(rows.count("c-snap-1") == 0u);
  for (const auto& path : created.GetArray()) BOOST_TEST(array.Get(path.GetString()).status == 200);

  // More failing members than the group has: every one fails, none is made.
  array.Arm(
      R"({"Operation":"ConsistencyGroup.CreateReplicaTarget","Mode":"Partial","FailMembers":5})");
  HttpResponse all = array.Post(GroupSnapshot(group), kSnapshotBody);
  BOOST_TEST(all.status == 500);
  BOOST_TEST(all.Json()["error"]["Oem"]["Snapset"]["FailedMembers"].Size() == 3u);
  BOOST_TEST(Snapshots(array.State()) == 2);
  // Spent: the next group snapshot is whole.
  HttpResponse whole = array.Post(GroupSnapshot(group), kSnapshotBody);
  BOOST_TEST(whole.status == 201, whole.body);
  BOOST_TEST(Snapshots(array.State()) == 5);
}

BOOST_AUTO_TEST_CASE(a_copy_member_fault_stalls_or_fails_the_group_snapshot_as_a_whole) {
  Array array;
  if (!array.ok()) return;
  const std::string group = array.CreateGroup("g", {"a", "b", "c"});
  array.Arm(R"({"Operation":"ConsistencyGroup.CopyMember","Mode":"Delay","DelayMs":400,)"
            R"("Count":2})");
  const auto start = Clock::now();
  HttpResponse slow = array.Post(GroupSnapshot(group), kSnapshotBody);
  BOOST_TEST(MsSince(start) >= 800);
  BOOST_REQUIRE_MESSAGE(slow.status == 201, slow.body);
  BOOST_TEST(slow.Json()["Members@odata.count"].GetInt() == 3);
  // An error before the second member's copy: all or none, with the
  // fault's status.
  array.Arm(R"({"Operation":"ConsistencyGroup.CopyMember","Mode":"Delay","DelayMs":1})");
  array.Arm(R"({"Operation":"ConsistencyGroup.CopyMember","Mode":"Error","Status":503,)"
            R"("RetryAfterS":2})");
  HttpResponse failed = array.Post(GroupSnapshot(group), kSnapshotBody);
  BOOST_TEST(failed.status == 503);
  BOOST_TEST(failed.headers["retry-after"] == "2");
  rapidjson::Document state = array.State();
  BOOST_TEST(Snapshots(state) == 3);
  BOOST_TEST(state["Volumes"].Size() == 6u);
  // CopyMember takes Error, Delay and Hang only.
  BOOST_TEST(
      array.Post(kFaults, R"({"Operation":"ConsistencyGroup.CopyMember","Mode":"MalformedJson"})")
          .status == 400);
}

BOOST_AUTO_TEST_CASE(target_offline_leaves_reads_unanswered_until_the_fault_is_deleted) {
  Array array;
  if (!array.ok()) return;
  const std::string volume = array.VolumePath("v");
  const std::string url = IscsiUrl(*array.process, array.token, volume);
  LunLogin login;
  login.timeout_s = 2;
  auto lun = std::make_unique<Lun>(url, login);
  BOOST_REQUIRE(lun->Write(0, Pattern("online ", 4096), 512) == SCSI_STATUS_GOOD);
  // Count does not apply: offline until deleted.
  BOOST_TEST(
      array.Post(kFaults, R"({"Operation":"iSCSI","Mode":"TargetOffline","Count":1})").status ==
      400);
  array.Arm(R"({"Operation":"iSCSI","Mode":"TargetOffline"})");
  BOOST_TEST(array.State()["Iscsi"]["TargetsOffline"].GetBool());
  std::vector<unsigned char> data;
  const auto start = Clock::now();
  BOOST_TEST(lun->TryRead(0, 4096, 512, &data) != SCSI_STATUS_GOOD);
  BOOST_TEST(MsSince(start) >= 1500);  // no answer, so the initiator timed out
  // REST still works while the targets are offline.
  BOOST_TEST(array.Get(volume).status == 200);
  BOOST_TEST(array.Delete(kFaults).status == 204);
  BOOST_TEST(!array.State()["Iscsi"]["TargetsOffline"].GetBool());
  lun.reset();
  Lun again(url, login);
  BOOST_TEST(again.Read(0, 4096, 512) == Pattern("online ", 4096));
}

BOOST_AUTO_TEST_CASE(a_connection_made_while_targets_are_offline_is_offline_too) {
  Array array;
  if (!array.ok()) return;
  const std::string volume = array.VolumePath("v");
  array.Arm(R"({"Operation":"iSCSI","Mode":"TargetOffline"})");
  const std::string url = IscsiUrl(*array.process, array.token, volume);
  LunLogin login;
  login.timeout_s = 2;
  std::string error;
  std::unique_ptr<Lun> lun = Lun::TryConnect(url, login, &error);
  std::vector<unsigned char> data;
  const bool answered = lun != nullptr && lun->TryRead(0, 512, 512, &data) == SCSI_STATUS_GOOD;
  BOOST_TEST(!answered, "a LUN mapped while the array's targets are offline answered");
  if (lun) lun->Drop();
  BOOST_TEST(array.Delete(kFaults).status == 204);
  Lun again(url, login);
  BOOST_TEST(again.Read(0, 512, 512) == std::vector<unsigned char>(512, 0));
}

BOOST_AUTO_TEST_CASE(target_offline_with_a_duration_comes_back_by_itself) {
  Array array;
  if (!array.ok()) return;
  const std::string volume = array.VolumePath("v");
  array.Arm(R"({"Operation":"iSCSI","Mode":"TargetOffline","DurationMs":800})");
  BOOST_TEST(array.FaultCount() == 1);
  BOOST_TEST(array.State()["Iscsi"]["TargetsOffline"].GetBool());
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (array.FaultCount() != 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  BOOST_TEST(array.FaultCount() == 0);
  BOOST_TEST(!array.State()["Iscsi"]["TargetsOffline"].GetBool());
  LunLogin login;
  login.timeout_s = 2;
  Lun lun(IscsiUrl(*array.process, array.token, volume), login);
  BOOST_TEST(lun.Read(0, 512, 512) == std::vector<unsigned char>(512, 0));
}

BOOST_AUTO_TEST_CASE(mock_routes_need_a_token_and_an_administrator) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  const std::string users = dir.Write("users.json", R"({"Users":[
      {"UserName":"root","Password":"r","RoleId":"Administrator"},
      {"UserName":"op","Password":"o","RoleId":"Operator"},
      {"UserName":"ro","Password":"q","RoleId":"ReadOnly"}]})");
  chmod(users.c_str(), 0600);
  MockArrayProcess array(dir.str() + "/state", {"--users", users});
  auto login = [&](const std::string& user, const std::string& password) {
    HttpResponse r = Http("POST", array.Url(kSessions),
                          R"({"UserName":")" + user + R"(","Password":")" + password + "\"}");
    BOOST_REQUIRE_EQUAL(r.status, 201);
    return r.headers["x-auth-token"];
  };
  const std::string admin = login("root", "r"), op = login("op", "o"), ro = login("ro", "q");
  const std::string fault = R"({"Operation":"Volume.List","Mode":"Delay","DelayMs":1})";
  struct Call {
    const char* method;
    const char* path;
    std::string body;
  };
  const Call calls[] = {{"GET", "/mock/faults", ""},    {"POST", "/mock/faults", fault},
                        {"DELETE", "/mock/faults", ""}, {"DELETE", "/mock/faults/1", ""},
                        {"GET", "/mock/state", ""},     {"POST", "/mock/reset", ""}};
  for (const Call& c : calls) {
    HttpResponse none = Http(c.method, array.Url(c.path), c.body, "");
    BOOST_TEST(none.status == 401, c.method << " " << c.path);
    BOOST_TEST(none.ErrorCode() == "Base.1.8.NoValidSession");
    for (const std::string& token : {op, ro}) {
      HttpResponse refused = Http(c.method, array.Url(c.path), c.body, token);
      BOOST_TEST(refused.status == 403, c.method << " " << c.path);
      BOOST_TEST(refused.ErrorCode() == "Base.1.8.InsufficientPrivilege");
    }
  }
  BOOST_TEST(Http("GET", array.Url(kFaults), "", admin).status == 200);
  HttpResponse armed = Http("POST", array.Url(kFaults), fault, admin);
  BOOST_TEST(armed.status == 201);
  BOOST_TEST(armed.headers["location"] ==
             "/mock/faults/" + std::string(armed.Json()["Id"].GetString()));
  BOOST_TEST(Http("DELETE", array.Url(kFaults), "", admin).status == 204);
  BOOST_TEST(Http("POST", array.Url("/mock/reset"), "", admin).status == 204);
  // ReadOnly reads and nothing more; an Operator changes volumes.
  const std::string volume = R"({"Name":"v","CapacityBytes":1048576})";
  BOOST_TEST(Http("GET", array.Url(kVolumes), "", ro).status == 200);
  BOOST_TEST(Http("POST", array.Url(kVolumes), volume, ro).status == 403);
  BOOST_TEST(Http("POST", array.Url(kVolumes), volume, op).status == 201);
}

struct BadFault {
  const char* body;
  const char* property;  // RelatedProperties[0], "" when none
};

BOOST_AUTO_TEST_CASE(bad_fault_bodies_are_400_naming_the_property) {
  Array array;
  if (!array.ok()) return;
  const BadFault cases[] = {
      {"not json", ""},
      {"[1]", ""},
      {R"({"Mode":"Error"})", "#/Operation"},
      {R"({"Operation":"Volume.Create"})", "#/Mode"},
      {R"({"Operation":7,"Mode":"Error"})", "#/Operation"},
      {R"({"Operation":"Volume.Nope","Mode":"Error"})", "#/Operation"},
      {R"({"Operation":"Volume.Create","Mode":"Explode"})", "#/Mode"},
      {R"({"Operation":"Volume.Create","Mode":"Error","Status":200})", "#/Status"},
      {R"({"Operation":"Volume.Create","Mode":"Error","Status":600})", "#/Status"},
      {R"({"Operation":"Volume.Create","Mode":"Error","Status":"500"})", "#/Status"},
      {R"({"Operation":"Volume.Create","Mode":"Error","Status":500,"RetryAfterS":3})",
       "#/RetryAfterS"},
      {R"({"Operation":"Volume.Create","Mode":"Error","Count":-1})", "#/Count"},
      {R"({"Operation":"Volume.Create","Mode":"Error","Count":1.5})", "#/Count"},
      {R"({"Operation":"Volume.Create","Mode":"Delay"})", "#/DelayMs"},
      {R"({"Operation":"Volume.Create","Mode":"Delay","DelayMs":0})", "#/DelayMs"},
      {R"({"Operation":"Volume.Create","Mode":"Delay","DelayMs":10,"Status":500})", "#/Status"},
      {R"({"Operation":"Volume.Create","Mode":"Hang","Colour":"red"})", "#/Colour"},
      {R"({"Operation":"Volume.Create","Mode":"TargetOffline"})", "#/Mode"},
      {R"({"Operation":"iSCSI","Mode":"Error"})", "#/Mode"},
      {R"({"Operation":"iSCSI","Mode":"TargetOffline","DurationMs":-5})", "#/DurationMs"},
      {R"({"Operation":"ConsistencyGroup.CreateReplicaTarget","Mode":"Partial",)"
       R"("FailMembers":0})",
       "#/FailMembers"},
  };
  for (const BadFault& c : cases) {
    HttpResponse r = array.Post(kFaults, c.body);
    BOOST_TEST(r.status == 400, c.body);
    BOOST_TEST(r.RelatedProperty() == c.property, c.body << ": " << r.body);
    BOOST_TEST(!r.ErrorCode().empty(), c.body);
  }
  HttpResponse unknown = array.Post(kFaults, R"({"Operation":"Volume.Nope","Mode":"Error"})");
  const std::string message = unknown.Json()["error"]["message"].GetString();
  for (const char* known : {"Volume.Create", "ConsistencyGroup.CopyMember", "iSCSI"}) {
    BOOST_TEST(message.find(known) != std::string::npos, message);
  }
  BOOST_TEST(array.FaultCount() == 0);
}

BOOST_AUTO_TEST_CASE(mock_state_shows_every_volume_snapshot_group_session_and_fault) {
  Array array;
  if (!array.ok()) return;
  const std::string group = array.CreateGroup("g", {"a", "b"});
  HttpResponse snap = array.Post(GroupSnapshot(group), kSnapshotBody);
  BOOST_REQUIRE_EQUAL(snap.status, 201);
  array.Arm(R"({"Operation":"Volume.Delete","Mode":"Error","Status":409})");
  rapidjson::Document state = array.State();
  BOOST_REQUIRE_EQUAL(state["Volumes"].Size(), 4u);
  auto rows = ByName(state);
  const rapidjson::Value& a = *rows.at("a");
  const rapidjson::Value& s = *rows.at("a-snap-1");
  BOOST_TEST(a["SourceId"].IsNull());
  BOOST_TEST(a["CopyMethod"].IsNull());
  BOOST_TEST(s["SourceId"].GetString() == std::string(a["Id"].GetString()));
  BOOST_TEST(std::string(s["CopyMethod"].GetString()).size() > 0u);
  BOOST_TEST(s["State"].GetString() == std::string("ready"));
  BOOST_TEST(s["CapacityBytes"].GetUint64() == 1u << 20);
  BOOST_TEST(s["BlockSizeBytes"].GetUint() == 512u);
  BOOST_TEST(std::string(s["DurableName"].GetString()) ==
             std::string(snap.Json()["Members"][0]["Identifiers"][0]["DurableName"].GetString()));
  BOOST_TEST(std::string(s["SerialNumber"].GetString()).size() > 0u);
  BOOST_REQUIRE_EQUAL(state["ConsistencyGroups"].Size(), 1u);
  BOOST_TEST(state["ConsistencyGroups"][0]["Name"].GetString() == std::string("g"));
  BOOST_TEST(state["ConsistencyGroups"][0]["Volumes"].Size() == 2u);
  BOOST_TEST(state["Exposures"].IsArray());
  BOOST_REQUIRE_EQUAL(state["Sessions"].Size(), 1u);
  BOOST_TEST(state["Sessions"][0]["UserName"].GetString() == std::string("admin"));
  BOOST_TEST(state["Sessions"][0]["RoleId"].GetString() == std::string("Administrator"));
  BOOST_TEST(!state["Sessions"][0].HasMember("Token"));
  BOOST_TEST(array.Get("/mock/state").body.find(array.token) == std::string::npos);
  BOOST_REQUIRE_EQUAL(state["Faults"].Size(), 1u);
  BOOST_TEST(state["Faults"][0]["Operation"].GetString() == std::string("Volume.Delete"));
  BOOST_TEST(state["Iscsi"]["TgtdRunning"].GetBool());
}

BOOST_AUTO_TEST_CASE(mock_reset_empties_the_array_but_keeps_sessions) {
  Array array;
  if (!array.ok()) return;
  const std::string group = array.CreateGroup("g", {"a", "b"});
  BOOST_REQUIRE_EQUAL(array.Post(GroupSnapshot(group), kSnapshotBody).status, 201);
  array.Arm(R"({"Operation":"Volume.Create","Mode":"Error","Count":0})");
  array.Arm(R"({"Operation":"iSCSI","Mode":"TargetOffline"})");
  BOOST_TEST(array.Post("/mock/reset", "").status == 204);
  rapidjson::Document state = array.State();
  BOOST_TEST(state["Volumes"].Size() == 0u);
  BOOST_TEST(state["ConsistencyGroups"].Size() == 0u);
  BOOST_TEST(state["Faults"].Size() == 0u);
  BOOST_TEST(!state["Iscsi"]["TargetsOffline"].GetBool());
  BOOST_TEST(state["Sessions"].Size() == 1u);  // the token still works
  bool any_file = false;
  for (const auto& entry : std::filesystem::directory_iterator(array.state_dir() + "/volumes")) {
    any_file = any_file || entry.path().extension() == ".img";
  }
  BOOST_TEST(!any_file);
  // The names are free, and a new volume is served on the wire.
  const std::string volume = array.VolumePath("a");
  LunLogin login;
  login.timeout_s = 5;
  Lun lun(IscsiUrl(*array.process, array.token, volume), login);
  BOOST_TEST(lun.Read(0, 512, 512) == std::vector<unsigned char>(512, 0));
}

BOOST_AUTO_TEST_CASE(too_many_waiting_state_changing_requests_get_429_with_retry_after) {
  Array array;
  if (!array.ok()) return;
  // Every create waits 1.5 s in the door: 20 at once are more than the 16
  // the array lets wait.
  array.Arm(R"({"Operation":"Volume.Create","Mode":"Delay","DelayMs":1500,"Count":0})");
  constexpr int kClients = 20;
  std::vector<HttpResponse> answers(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      answers[static_cast<size_t>(i)] =
          array.Try("POST", kVolumes,
                    R"({"Name":"v)" + std::to_string(i) + R"(","CapacityBytes":1048576})", 20000);
    });
  }
  // Reads are never refused, not even now.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  BOOST_TEST(array.Get(kVolumes).status == 200);
  for (std::thread& t : clients) t.join();
  int created = 0, refused = 0;
  for (const HttpResponse& r : answers) {
    if (r.status == 201) ++created;
    if (r.status == 429) {
      ++refused;
      BOOST_TEST(r.headers.at("retry-after") == "1");
      BOOST_TEST(r.ErrorCode() == "Base.1.8.ServiceTemporarilyUnavailable");
    }
  }
  BOOST_TEST(created == 16);
  BOOST_TEST(refused == kClients - 16);
  BOOST_TEST(array.Delete(kFaults).status == 204);
  BOOST_TEST(array.CreateVolume("after").status == 201);
}

BOOST_AUTO_TEST_CASE(a_dead_tgtd_makes_changes_503_while_reads_and_logins_work) {
  Array array;
  if (!array.ok()) return;
  const std::string volume = array.VolumePath("v");
  // The array's tgtd is the child its main thread forked.
  std::ifstream children("/proc/" + std::to_string(array.process->pid()) + "/task/" +
                         std::to_string(array.process->pid()) + "/children");
  pid_t tgtd = 0;
  BOOST_REQUIRE(children >> tgtd);
  BOOST_REQUIRE_EQUAL(kill(tgtd, SIGKILL), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  HttpResponse refused = array.CreateVolume("w");
  BOOST_TEST(refused.status == 503);
  BOOST_TEST(refused.headers["retry-after"] == "1");
  BOOST_TEST(refused.ErrorCode() == "Base.1.8.ServiceTemporarilyUnavailable");
  BOOST_TEST(array.Delete(volume).status == 503);
  BOOST_TEST(array.Get(volume).status == 200);
  BOOST_TEST(
      Http("POST", array.process->Url(kSessions), R"({"UserName":"admin","Password":"admin"})")
          .status == 201);
  BOOST_TEST(!array.State()["Iscsi"]["TgtdRunning"].GetBool());
}

// A kill -9 in the middle of a group snapshot, after the first member's copy
// is on disk: after a restart no snapshot of the group is visible, no LUN
// file is left without a ready row, the members are intact on the wire and
// the next group snapshot works.
BOOST_AUTO_TEST_CASE(a_group_snapshot_cut_by_kill_9_leaves_no_trace_after_restart) {
  Array array;
  if (!array.ok()) return;
  const std::string group = array.CreateGroup("g", {"m0", "m1"});
  std::vector<std::string> members;
  for (const auto& v : array.Get(group).Json()["Volumes"].GetArray()) {
    members.push_back(v["@odata.id"].GetString());
  }
  BOOST_REQUIRE_EQUAL(members.size(), 2u);
  LunLogin login;
  login.timeout_s = 5;
  for (size_t i = 0; i < members.size(); ++i) {
    Lun lun(IscsiUrl(*array.process, array.token, members[i]), login);
    BOOST_REQUIRE(lun.Write(8, Pattern("member " + std::to_string(i) + " ", 4096), 512) ==
                  SCSI_STATUS_GOOD);
  }
  // Before each member's copy the array stalls 2 s; the first copy's file
  // appears after the first stall, and the kill comes in the second.
  array.Arm(R"({"Operation":"ConsistencyGroup.CopyMember","Mode":"Delay","DelayMs":2000,)"
            R"("Count":0})");
  HttpResponse cut;
  std::thread client([&] { cut = array.Try("POST", GroupSnapshot(group), kSnapshotBody, 30000); });
  const std::string first_copy = array.state_dir() + "/volumes/3.img";
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!std::filesystem::exists(first_copy) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  BOOST_REQUIRE_MESSAGE(std::filesystem::exists(first_copy), "the first member was not copied");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  array.process->Kill9();
  client.join();
  BOOST_TEST(cut.status == 0);
  BOOST_TEST(!cut.transport_error.empty());

  MockArrayProcess again(array.state_dir());
  const std::string token = again.Login();
  HttpResponse got = Http("GET", again.Url("/mock/state"), "", token);
  BOOST_REQUIRE_EQUAL(got.status, 200);
  rapidjson::Document state = got.Json();
  std::set<std::string> ready;
  BOOST_TEST(state["Volumes"].Size() == 2u);
  for (const auto& v : state["Volumes"].GetArray()) {
    BOOST_TEST(v["SourceId"].IsNull(), v["Name"].GetString() << " is a leftover snapshot");
    BOOST_TEST(v["State"].GetString() == std::string("ready"));
    ready.insert(v["Id"].GetString());
  }
  for (const auto& entry : std::filesystem::directory_iterator(array.state_dir() + "/volumes")) {
    BOOST_TEST(ready.count(entry.path().stem().string()) == 1u, entry.path()
                                                                    << " has no ready row");
  }
  BOOST_TEST(state["ConsistencyGroups"].Size() == 1u);
  BOOST_TEST(state["Faults"].Size() == 0u);  // faults live in memory only
  for (size_t i = 0; i < members.size(); ++i) {
    Lun lun(IscsiUrl(again, token, members[i]), login);
    BOOST_TEST(lun.Read(8, 4096, 512) == Pattern("member " + std::to_string(i) + " ", 4096));
  }
  HttpResponse whole = Http("POST", again.Url(GroupSnapshot(group)), kSnapshotBody, token);
  BOOST_TEST(whole.status == 201, whole.body);
  BOOST_TEST(whole.Json()["Members@odata.count"].GetInt() == 2);
}

}  // namespace
}  // namespace snapset::test
