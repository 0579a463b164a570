#define BOOST_TEST_MODULE mock_array_task
#include <sys/stat.h>
#include <sys/wait.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/mock-array/connections.hpp"
#include "tests/mock-array/mock_array_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

constexpr char kSessions[] = "/redfish/v1/SessionService/Sessions";
constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";
constexpr char kGroups[] = "/redfish/v1/Storage/array/ConsistencyGroups";
constexpr char kTaskService[] = "/redfish/v1/TaskService";
constexpr char kTasks[] = "/redfish/v1/TaskService/Tasks";
constexpr char kMonitors[] = "/redfish/v1/TaskService/TaskMonitors/";
constexpr char kAsync[] = "Prefer: respond-async";

std::string VolumeBody(const std::string& name) {
  return R"({"Name":")" + name + R"(","CapacityBytes":1048576})";
}
std::string TaskServiceBody(const std::string& snapset) {
  return R"({"Oem":{"Snapset":)" + snapset + "}}";
}
std::string Str(const rapidjson::Value& v) {
  return v.IsString() ? v.GetString() : "<not a string>";
}

// One array per test in its own state directory, stopped whatever happens.
struct Array {
  explicit Array(const std::vector<std::string>& extra = {}) {
    if (!MockArrayAvailable()) return;
    Start(extra);
  }
  void Start(const std::vector<std::string>& extra = {}) {
    process = std::make_unique<MockArrayProcess>(dir.str() + "/state", extra);
    token = process->Login();
  }
  bool ok() const { return process != nullptr; }
  // async: with "Prefer: respond-async".
  HttpResponse Send(const std::string& method, const std::string& path,
                    const std::string& body = "", bool async = false) const {
    HttpOptions options;
    if (async) options.headers.push_back(kAsync);
    return Http(method, process->Url(path), body, token, options);
  }
  HttpResponse Get(const std::string& path) const { return Send("GET", path); }
  // Waits for the task whose 202 `accepted` is and returns the monitor's
  // final answer.
  HttpResponse Finish(const HttpResponse& accepted) const {
    return PollTaskMonitor(process->Url(accepted.headers.at("location")), token);
  }
  std::string TaskOf(const HttpResponse& accepted) const {
    return accepted.Json()["@odata.id"].GetString();
  }
  void SetTaskService(const std::string& snapset) const {
    HttpResponse r = Send("PATCH", kTaskService, TaskServiceBody(snapset));
    BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
  }

  TempDir dir;
  std::unique_ptr<MockArrayProcess> process;
  std::string token;
};

BOOST_AUTO_TEST_CASE(
    prefer_respond_async_makes_a_volume_create_a_task_whose_monitor_gives_the_201) {
  Array array;
  if (!array.ok()) return;
  HttpResponse accepted = array.Send("POST", kVolumes, VolumeBody("db"), true);
  BOOST_REQUIRE_MESSAGE(accepted.status == 202, accepted.body);
  const std::string monitor = accepted.headers["location"];
  BOOST_TEST(monitor.rfind(kMonitors, 0) == 0u, monitor);
  BOOST_TEST(accepted.headers["preference-applied"] == "respond-async");
  rapidjson::Document task = accepted.Json();
  const std::string task_path = task["@odata.id"].GetString();
  BOOST_TEST(task_path.rfind(std::string(kTasks) + "/", 0) == 0u, task_path);
  BOOST_TEST(Str(task["TaskMonitor"]) == monitor);
  const std::string state = Str(task["TaskState"]);
  BOOST_TEST((state == "New" || state == "Running" || state == "Completed"), state);

  HttpResponse done = array.Finish(accepted);
  BOOST_REQUIRE_MESSAGE(done.status == 201, done.body);
  const std::string volume = done.headers["location"];
  BOOST_TEST(volume.rfind(std::string(kVolumes) + "/", 0) == 0u, volume);
  BOOST_TEST(Str(done.Json()["Name"]) == "db");
  // Exactly what the synchronous call answers, and a volume that is there.
  HttpResponse got = array.Get(volume);
  BOOST_TEST(got.status == 200);
  BOOST_TEST(got.body == done.body);
  // The monitor keeps giving the answer until the task is deleted.
  BOOST_TEST(array.Get(monitor).body == done.body);

  HttpResponse finished = array.Get(task_path);
  BOOST_REQUIRE_EQUAL(finished.status, 200);
  rapidjson::Document t = finished.Json();
  BOOST_TEST(Str(t["TaskState"]) == "Completed");
  BOOST_TEST(Str(t["TaskStatus"]) == "OK");
  BOOST_TEST(t["PercentComplete"].GetInt() == 100);
  BOOST_TEST(Str(t["StartTime"]).size() == 20u);  // 2026-11-03T10:15:00Z
  BOOST_TEST(Str(t["EndTime"]) >= Str(t["StartTime"]));
  BOOST_TEST(Str(t["Payload"]["HttpOperation"]) == "POST");
  BOOST_TEST(Str(t["Payload"]["TargetUri"]) == kVolumes);
  BOOST_TEST(t["Oem"]["Snapset"]["HttpStatusCode"].GetInt() == 201);
  BOOST_TEST(Str(t["Oem"]["Snapset"]["ResultLocation"]) == volume);
  BOOST_TEST(Str(t["Oem"]["Snapset"]["Operation"]) == "Volume.Create");

  HttpResponse list = array.Get(kTasks);
  BOOST_TEST(list.status == 200);
  BOOST_TEST(list.Json()["Members@odata.count"].GetInt() == 1);
  BOOST_TEST(Str(list.Json()["Members"][0]["@odata.id"]) == task_path);
}

BOOST_AUTO_TEST_CASE(a_delayed_task_runs_then_completes_and_only_then_may_be_deleted) {
  Array array;
  if (!array.ok()) return;
  array.SetTaskService(R"({"TaskDelayMs":2500})");
  BOOST_TEST(array.Get(kTaskService).Json()["Oem"]["Snapset"]["TaskDelayMs"].GetInt() == 2500);
  HttpResponse accepted = array.Send("POST", kVolumes, VolumeBody("slow"), true);
  BOOST_REQUIRE_EQUAL(accepted.status, 202);
  const std::string monitor = accepted.headers["location"];
  const std::string task_path = array.TaskOf(accepted);

  // While it runs: the monitor says 202, where and when to ask again.
  HttpResponse pending = array.Get(monitor);
  BOOST_TEST(pending.status == 202);
  BOOST_TEST(pending.headers["location"] == monitor);
  BOOST_TEST(pending.headers["retry-after"] == "1");
  rapidjson::Document running = array.Get(task_path).Json();
  const std::string state = Str(running["TaskState"]);
  BOOST_TEST((state == "New" || state == "Running"), state);
  BOOST_TEST(!running.HasMember("EndTime"));
  BOOST_TEST(running["PercentComplete"].GetInt() < 100);
  // The delay comes before the operation: no volume yet.
  BOOST_TEST(array.Get(kVolumes).Json()["Members@odata.count"].GetInt() == 0);
  // The mock cannot cancel.
  HttpResponse refused = array.Send("DELETE", task_path);
  BOOST_TEST(refused.status == 409);
  BOOST_TEST(refused.ErrorCode() == "Base.1.8.ResourceInUse");

  BOOST_TEST(array.Finish(accepted).status == 201);
  rapidjson::Document done = array.Get(task_path).Json();
  BOOST_TEST(Str(done["TaskState"]) == "Completed");
  BOOST_TEST(done.HasMember("EndTime"));
  BOOST_TEST(array.Send("DELETE", task_path).status == 204);
  BOOST_TEST(array.Get(task_path).status == 404);
  BOOST_TEST(array.Get(monitor).status == 404);
  BOOST_TEST(array.Get(kTasks).Json()["Members@odata.count"].GetInt() == 0);
}

BOOST_AUTO_TEST_CASE(a_failing_task_gives_its_error_at_the_monitor_and_ends_in_exception) {
  Array array;
  if (!array.ok()) return;
  BOOST_REQUIRE_EQUAL(array.Send("POST", kVolumes, VolumeBody("same")).status, 201);
  HttpResponse synchronous = array.Send("POST", kVolumes, VolumeBody("same"));
  BOOST_REQUIRE_EQUAL(synchronous.status, 409);
  HttpResponse accepted = array.Send("POST", kVolumes, VolumeBody("same"), true);
  BOOST_REQUIRE_EQUAL(accepted.status, 202);
  HttpResponse failed = array.Finish(accepted);
  BOOST_TEST(failed.status == 409);
  BOOST_TEST(failed.ErrorCode() == "Base.1.8.ResourceAlreadyExists");
  BOOST_TEST(failed.body == synchronous.body);

  rapidjson::Document task = array.Get(array.TaskOf(accepted)).Json();
  BOOST_TEST(Str(task["TaskState"]) == "Exception");
  BOOST_TEST(Str(task["TaskStatus"]) == "Warning");
  BOOST_TEST(task.HasMember("EndTime"));
  BOOST_TEST(task["Oem"]["Snapset"]["HttpStatusCode"].GetInt() == 409);
  BOOST_TEST(!task["Oem"]["Snapset"].HasMember("ResultLocation"));
  BOOST_REQUIRE(task["Messages"].IsArray() && task["Messages"].Size() >= 1u);
  BOOST_TEST(Str(task["Messages"][0]["Message"]) == Str(synchronous.Json()["error"]["message"]));
  BOOST_TEST(Str(task["Messages"][0]["MessageId"]) == "Base.1.8.ResourceAlreadyExists");
  BOOST_TEST(array.Get(kVolumes).Json()["Members@odata.count"].GetInt() == 1);
}

BOOST_AUTO_TEST_CASE(async_operations_option_makes_every_change_a_task_but_reads_and_logins_not) {
  Array array({"--async-operations"});
  if (!array.ok()) return;
  BOOST_TEST(array.Get(kTaskService).Json()["Oem"]["Snapset"]["AsyncOperations"].GetBool());
  HttpResponse accepted = array.Send("POST", kVolumes, VolumeBody("v"));
  BOOST_REQUIRE_EQUAL(accepted.status, 202);
  HttpResponse created = array.Finish(accepted);
  BOOST_REQUIRE_EQUAL(created.status, 201);
  const std::string volume = created.headers["location"];
  // Reads stay synchronous, asked or not.
  BOOST_TEST(array.Get(volume).status == 200);
  BOOST_TEST(array.Send("GET", kVolumes, "", true).status == 200);
  BOOST_TEST(array.Send("GET", kTaskService, "", true).status == 200);
  // So do logging in and out.
  HttpOptions async;
  async.headers.push_back(kAsync);
  HttpResponse login = Http("POST", array.process->Url(kSessions),
                            R"({"UserName":"admin","Password":"admin"})", "", async);
  BOOST_TEST(login.status == 201);
  BOOST_TEST(Http("DELETE", array.process->Url(login.headers["location"]), "",
                  login.headers["x-auth-token"], async)
                 .status == 204);
  // A delete is a task too; its monitor ends with the 204.
  HttpResponse deleting = array.Send("DELETE", volume);
  BOOST_REQUIRE_EQUAL(deleting.status, 202);
  BOOST_TEST(array.Finish(deleting).status == 204);
  BOOST_TEST(array.Get(volume).status == 404);
}

BOOST_AUTO_TEST_CASE(patching_the_task_service_turns_async_operations_on_and_off) {
  Array array;
  if (!array.ok()) return;
  BOOST_TEST(!array.Get(kTaskService).Json()["Oem"]["Snapset"]["AsyncOperations"].GetBool());
  HttpResponse on =
      array.Send("PATCH", kTaskService, TaskServiceBody(R"({"AsyncOperations":true})"));
  BOOST_REQUIRE_EQUAL(on.status, 200);
  BOOST_TEST(on.Json()["Oem"]["Snapset"]["AsyncOperations"].GetBool());
  HttpResponse accepted = array.Send("POST", kVolumes, VolumeBody("a"));
  BOOST_TEST(accepted.status == 202);
  BOOST_TEST(array.Finish(accepted).status == 201);
  array.SetTaskService(R"({"AsyncOperations":false})");
  BOOST_TEST(array.Send("POST", kVolumes, VolumeBody("b")).status == 201);

  // A bad body changes nothing.
  struct Bad {
    std::string body;
    const char* property;
  };
  const Bad cases[] = {
      {TaskServiceBody(R"({"AsyncOperations":"yes"})"), "#/Oem/Snapset/AsyncOperations"},
      {TaskServiceBody(R"({"AsyncOperations":true,"TaskDelayMs":-1})"),
       "#/Oem/Snapset/TaskDelayMs"},
      {TaskServiceBody(R"({"Colour":1})"), "#/Oem/Snapset/Colour"},
      {R"({"ServiceEnabled":false})", "#/ServiceEnabled"},
      {R"({"Oem":{"Other":{}}})", "#/Oem/Other"},
  };
  for (const Bad& c : cases) {
    HttpResponse r = array.Send("PATCH", kTaskService, c.body);
    BOOST_TEST(r.status == 400, c.body);
    BOOST_TEST(r.RelatedProperty() == c.property, c.body << ": " << r.body);
  }
  BOOST_TEST(array.Send("PATCH", kTaskService, "not json").status == 400);
  BOOST_TEST(!array.Get(kTaskService).Json()["Oem"]["Snapset"]["AsyncOperations"].GetBool());
}

BOOST_AUTO_TEST_CASE(only_an_administrator_may_patch_the_task_service_but_an_operator_gets_tasks) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  const std::string users = dir.Write("users.json", R"({"Users":[
      {"UserName":"admin","Password":"a","RoleId":"Administrator"},
      {"UserName":"op","Password":"o","RoleId":"Operator"}]})");
  chmod(users.c_str(), 0600);
  MockArrayProcess array(dir.str() + "/state", {"--users", users});
  HttpResponse login = Http("POST", array.Url(kSessions), R"({"UserName":"op","Password":"o"})");
  BOOST_REQUIRE_EQUAL(login.status, 201);
  const std::string op = login.headers["x-auth-token"];
  HttpResponse refused =
      Http("PATCH", array.Url(kTaskService), TaskServiceBody(R"({"AsyncOperations":true})"), op);
  BOOST_TEST(refused.status == 403);
  BOOST_TEST(refused.ErrorCode() == "Base.1.8.InsufficientPrivilege");
  BOOST_TEST(Http("GET", array.Url(kTaskService), "", op).status == 200);
  HttpOptions async;
  async.headers.push_back(kAsync);
  HttpResponse accepted = Http("POST", array.Url(kVolumes), VolumeBody("ops"), op, async);
  BOOST_REQUIRE_EQUAL(accepted.status, 202);
  BOOST_TEST(PollTaskMonitor(array.Url(accepted.headers["location"]), op).status == 201);

  HttpResponse admin = Http("POST", array.Url(kSessions), R"({"UserName":"admin","Password":"a"})");
  BOOST_TEST(Http("PATCH", array.Url(kTaskService), TaskServiceBody(R"({"AsyncOperations":true})"),
                  admin.headers["x-auth-token"])
                 .status == 200);
  BOOST_TEST(Http("POST", array.Url(kVolumes), VolumeBody("ops2"), op).status == 202);
}

BOOST_AUTO_TEST_CASE(a_connection_made_as_a_task_never_shows_its_chap_secret) {
  Array array;
  if (!array.ok()) return;
  HttpResponse v = array.Send("POST", kVolumes, VolumeBody("mapped"));
  BOOST_REQUIRE_EQUAL(v.status, 201);
  ConnectionRequest request;
  request.volumes = {v.headers["location"]};
  request.chap_user = "host1";
  request.chap_password = "a-secret-of-twelve";
  HttpResponse accepted = array.Send("POST", kConnections, ConnectionBody(request), true);
  BOOST_REQUIRE_MESSAGE(accepted.status == 202, accepted.body);
  HttpResponse done = array.Finish(accepted);
  BOOST_REQUIRE_MESSAGE(done.status == 201, done.body);
  HttpResponse task = array.Get(array.TaskOf(accepted));
  BOOST_REQUIRE_EQUAL(task.status, 200);
  BOOST_TEST(task.Json()["HidePayload"].GetBool());
  for (const std::string& body : {accepted.body, done.body, task.body, array.Get(kTasks).body}) {
    BOOST_TEST(body.find(request.chap_password) == std::string::npos, body);
  }
}

BOOST_AUTO_TEST_CASE(a_consistency_group_snapshot_runs_as_a_task) {
  Array array;
  if (!array.ok()) return;
  std::string members;
  for (const char* name : {"g1", "g2"}) {
    HttpResponse v = array.Send("POST", kVolumes, VolumeBody(name));
    BOOST_REQUIRE_EQUAL(v.status, 201);
    members += std::string(members.empty() ? "" : ",") + R"({"@odata.id":")" +
               v.headers["location"] + R"("})";
  }
  HttpResponse group =
      array.Send("POST", kGroups, R"({"Name":"set","Volumes":[)" + members + "]}", true);
  BOOST_REQUIRE_EQUAL(group.status, 202);
  HttpResponse created = array.Finish(group);
  BOOST_REQUIRE_MESSAGE(created.status == 201, created.body);
  const std::string path = created.headers["location"];

  HttpResponse accepted = array.Send("POST", path + "/Actions/ConsistencyGroup.CreateReplicaTarget",
                                     R"({"ReplicaType":"Snapshot"})", true);
  BOOST_REQUIRE_EQUAL(accepted.status, 202);
  HttpResponse snapshots = array.Finish(accepted);
  BOOST_REQUIRE_MESSAGE(snapshots.status == 201, snapshots.body);
  rapidjson::Document set = snapshots.Json();
  BOOST_TEST(set["Members@odata.count"].GetInt() == 2);
  BOOST_TEST(Str(set["Members"][0]["Name"]) == "g1-snap-1");
  BOOST_TEST(Str(set["Members"][1]["Name"]) == "g2-snap-1");
  rapidjson::Document task = array.Get(array.TaskOf(accepted)).Json();
  BOOST_TEST(Str(task["TaskState"]) == "Completed");
  BOOST_TEST(Str(task["Oem"]["Snapset"]["Operation"]) == "ConsistencyGroup.CreateReplicaTarget");
  BOOST_TEST(!task["Oem"]["Snapset"].HasMember("ResultLocation"));  // the set has none
  BOOST_TEST(array.Get(kVolumes).Json()["Members@odata.count"].GetInt() == 4);
}

BOOST_AUTO_TEST_CASE(unknown_tasks_and_monitors_are_404) {
  Array array;
  if (!array.ok()) return;
  for (const std::string id : {"1", "nope", "00000000-1"}) {
    HttpResponse task = array.Get(std::string(kTasks) + "/" + id);
    BOOST_TEST(task.status == 404, id);
    BOOST_TEST(task.ErrorCode() == "Base.1.8.ResourceNotFound");
    BOOST_TEST(array.Get(kMonitors + id).status == 404, id);
    BOOST_TEST(array.Send("DELETE", std::string(kTasks) + "/" + id).status == 404, id);
  }
  BOOST_TEST(array.Get(kTasks).Json()["Members@odata.count"].GetInt() == 0);
}

BOOST_AUTO_TEST_CASE(only_the_last_1000_completed_tasks_are_kept) {
  Array array;
  if (!array.ok()) return;
  // Refused at once (400), so each task is quick.
  std::vector<std::string> tasks, monitors;
  for (int i = 0; i < 1003; ++i) {
    HttpResponse accepted = array.Send("POST", kVolumes, "{}", true);
    BOOST_REQUIRE_EQUAL(accepted.status, 202);
    tasks.push_back(array.TaskOf(accepted));
    monitors.push_back(accepted.headers["location"]);
  }
  // Four workers: once the last few are done, all are.
  for (size_t i = monitors.size() - 8; i < monitors.size(); ++i) {
    BOOST_TEST(PollTaskMonitor(array.process->Url(monitors[i]), array.token).status == 400);
  }
  BOOST_TEST(array.Get(kTasks).Json()["Members@odata.count"].GetInt() == 1000);
  for (size_t i = 0; i < 3; ++i) BOOST_TEST(array.Get(tasks[i]).status == 404, tasks[i]);
  BOOST_TEST(array.Get(tasks[3]).status == 200);
}

BOOST_AUTO_TEST_CASE(a_task_from_before_a_restart_is_unknown_but_its_operation_stays_done) {
  Array array;
  if (!array.ok()) return;
  HttpResponse accepted = array.Send("POST", kVolumes, VolumeBody("kept"), true);
  BOOST_REQUIRE_EQUAL(accepted.status, 202);
  const std::string monitor = accepted.headers["location"];
  const std::string volume = array.Finish(accepted).headers["location"];
  array.process->Stop();
  array.Start();
  BOOST_TEST(array.Get(monitor).status == 404);
  BOOST_TEST(array.Get(array.TaskOf(accepted)).status == 404);
  BOOST_TEST(array.Get(volume).status == 200);
}

BOOST_AUTO_TEST_CASE(sigterm_while_a_task_runs_waits_for_it_and_exits_0) {
  Array array;
  if (!array.ok()) return;
  array.SetTaskService(R"({"TaskDelayMs":600000})");
  HttpResponse accepted = array.Send("POST", kVolumes, VolumeBody("last"), true);
  BOOST_REQUIRE_EQUAL(accepted.status, 202);
  const std::string task = array.TaskOf(accepted);
  BOOST_TEST(array.Get(task).status == 200);
  // Shutting down cuts the delay short; the operation itself still runs to
  // the end, against a live tgtd, before the array exits (Stop() would
  // SIGKILL it after 5 s).
  const int status = array.process->Stop();
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0);
  array.Start();
  HttpResponse list = array.Get(kVolumes);
  BOOST_REQUIRE_EQUAL(list.Json()["Members@odata.count"].GetInt(), 1);
  HttpResponse volume = array.Get(list.Json()["Members"][0]["@odata.id"].GetString());
  BOOST_TEST(Str(volume.Json()["Name"]) == "last");
}

}  // namespace
}  // namespace snapset::test
