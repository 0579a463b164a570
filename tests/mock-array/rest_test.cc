#define BOOST_TEST_MODULE mock_array_rest
#include <sys/stat.h>
#include <time.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "tests/mock-array/mock_array_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

constexpr char kSessions[] = "/redfish/v1/SessionService/Sessions";
constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";
constexpr char kPool[] = "/redfish/v1/Storage/array/StoragePools/pool";
constexpr char kGroups[] = "/redfish/v1/Storage/array/ConsistencyGroups";
constexpr char kSnapshotBody[] = R"({"ReplicaType":"Snapshot"})";
constexpr char kRemoveBody[] = R"({"DeleteTargetVolume":true})";

std::string CreateReplica(const std::string& volume) {
  return volume + "/Actions/Volume.CreateReplicaTarget";
}
std::string RemoveReplica(const std::string& volume) {
  return volume + "/Actions/Volume.RemoveReplicaRelationship";
}
std::string GroupSnapshot(const std::string& group) {
  return group + "/Actions/ConsistencyGroup.CreateReplicaTarget";
}
std::string Naa(const rapidjson::Value& v) {
  return v["Identifiers"][0]["DurableName"].GetString();
}

// One array per test in its own state directory, stopped whatever happens.
struct Array {
  explicit Array(const std::vector<std::string>& extra = {}) {
    if (!MockArrayAvailable()) return;
    process = std::make_unique<MockArrayProcess>(dir.str() + "/state", extra);
    token = process->Login();
  }
  bool ok() const { return process != nullptr; }
  HttpResponse Get(const std::string& path) const {
    return Http("GET", process->Url(path), "", token);
  }
  HttpResponse Post(const std::string& path, const std::string& body) const {
    return Http("POST", process->Url(path), body, token);
  }
  HttpResponse Delete(const std::string& path) const {
    return Http("DELETE", process->Url(path), "", token);
  }
  HttpResponse CreateVolume(const std::string& name, uint64_t bytes = 1 << 20) const {
    return Post(kVolumes,
                R"({"Name":")" + name + R"(","CapacityBytes":)" + std::to_string(bytes) + "}");
  }

  TempDir dir;
  std::unique_ptr<MockArrayProcess> process;
  std::string token;
};

uint64_t FreeBytes(const Array& array) {
  HttpResponse r = array.Get(kPool);
  BOOST_REQUIRE_EQUAL(r.status, 200);
  return r.Json()["Oem"]["Snapset"]["FreeBytes"].GetUint64();
}

BOOST_AUTO_TEST_CASE(login_gives_a_token_and_the_session_location) {
  Array array;
  if (!array.ok()) return;
  HttpResponse r =
      Http("POST", array.process->Url(kSessions), R"({"UserName":"admin","Password":"admin"})");
  BOOST_TEST(r.status == 201);
  BOOST_TEST(r.headers["x-auth-token"].size() >= 32u);
  BOOST_TEST(r.headers["location"].rfind(std::string(kSessions) + "/", 0) == 0u);
  BOOST_TEST(r.Json()["UserName"].GetString() == std::string("admin"));
  BOOST_TEST(Http("GET", array.process->Url(kVolumes), "", r.headers["x-auth-token"]).status ==
             200);
}

BOOST_AUTO_TEST_CASE(deleted_session_token_no_longer_works) {
  Array array;
  if (!array.ok()) return;
  HttpResponse login =
      Http("POST", array.process->Url(kSessions), R"({"UserName":"admin","Password":"admin"})");
  const std::string token = login.headers["x-auth-token"];
  BOOST_TEST(Http("DELETE", array.process->Url(login.headers["location"]), "", token).status ==
             204);
  BOOST_TEST(Http("GET", array.process->Url(kVolumes), "", token).status == 401);
  BOOST_TEST(array.Delete(std::string(kSessions) + "/999").status == 404);
}

BOOST_AUTO_TEST_CASE(bad_credentials_and_bad_login_bodies_are_refused) {
  Array array;
  if (!array.ok()) return;
  const std::string url = array.process->Url(kSessions);
  BOOST_TEST(Http("POST", url, R"({"UserName":"admin","Password":"nope"})").status == 401);
  BOOST_TEST(Http("POST", url, R"({"UserName":"root","Password":"admin"})").status == 401);
  HttpResponse missing = Http("POST", url, R"({"UserName":"admin"})");
  BOOST_TEST(missing.status == 400);
  BOOST_TEST(missing.RelatedProperty() == "#/Password");
  BOOST_TEST(Http("POST", url, "not json").status == 400);
}

BOOST_AUTO_TEST_CASE(every_route_but_root_and_login_needs_a_valid_token) {
  Array array;
  if (!array.ok()) return;
  BOOST_TEST(Http("GET", array.process->Url("/redfish/v1")).status == 200);
  for (const char* path : {"/redfish/v1/Storage", "/redfish/v1/Storage/array", kPool, kVolumes,
                           "/redfish/v1/Storage/array/Volumes/1", "/redfish/v1/nothing"}) {
    for (const char* token : {"", "0123456789abcdef0123456789abcdef"}) {
      HttpResponse r = Http("GET", array.process->Url(path), "", token);
      BOOST_TEST(r.status == 401, path << " token '" << token << "'");
      BOOST_TEST(r.ErrorCode() == "Base.1.8.NoValidSession");
    }
  }
  BOOST_TEST(
      Http("POST", array.process->Url(kVolumes), R"({"Name":"x","CapacityBytes":512})").status ==
      401);
  BOOST_TEST(Http("DELETE", array.process->Url(std::string(kVolumes) + "/1")).status == 401);
}

BOOST_AUTO_TEST_CASE(an_idle_token_expires_after_the_ttl) {
  Array array({"--token-ttl-s", "1"});
  if (!array.ok()) return;
  BOOST_TEST(array.Get(kVolumes).status == 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  HttpResponse r = array.Get(kVolumes);
  BOOST_TEST(r.status == 401);
  BOOST_TEST(r.ErrorCode() == "Base.1.8.NoValidSession");
}

BOOST_AUTO_TEST_CASE(storage_and_pool_report_capacity_and_free_space) {
  Array array({"--pool-capacity-bytes", "1073741824"});
  if (!array.ok()) return;
  HttpResponse storage = array.Get("/redfish/v1/Storage/array");
  BOOST_TEST(storage.status == 200);
  BOOST_TEST(storage.Json()["Volumes"]["@odata.id"].GetString() == std::string(kVolumes));
  BOOST_TEST(array.Get("/redfish/v1/Storage").Json()["Members@odata.count"].GetInt() == 1);
  HttpResponse pools = array.Get("/redfish/v1/Storage/array/StoragePools");
  BOOST_TEST(pools.status == 200);
  BOOST_TEST(pools.Json()["Members"][0]["@odata.id"].GetString() == std::string(kPool));
  HttpResponse pool = array.Get(kPool);
  BOOST_TEST(pool.Json()["Capacity"]["Data"]["AllocatedBytes"].GetUint64() == 1073741824u);
  BOOST_TEST(FreeBytes(array) == 1073741824u);
  BOOST_TEST(array.CreateVolume("a", 1 << 20).status == 201);
  BOOST_TEST(FreeBytes(array) == 1073741824u - (1u << 20));
  BOOST_TEST(array.Get(kPool).Json()["Capacity"]["Data"]["ConsumedBytes"].GetUint64() == 1u << 20);
  BOOST_TEST(array.Get("/redfish/v1/Storage/other").status == 404);
  BOOST_TEST(array.Get("/redfish/v1/Storage/array/StoragePools/other").status == 404);
}

BOOST_AUTO_TEST_CASE(volume_create_list_get_delete) {
  Array array;
  if (!array.ok()) return;
  HttpResponse created =
      array.Post(kVolumes, R"({"Name":"db","CapacityBytes":8388608,"BlockSizeBytes":4096})");
  BOOST_REQUIRE_EQUAL(created.status, 201);
  rapidjson::Document v = created.Json();
  const std::string path = v["@odata.id"].GetString();
  BOOST_TEST(created.headers["location"] == path);
  BOOST_TEST(v["Name"].GetString() == std::string("db"));
  BOOST_TEST(v["CapacityBytes"].GetUint64() == 8388608u);
  BOOST_TEST(v["BlockSizeBytes"].GetUint() == 4096u);
  BOOST_TEST(v["Identifiers"][0]["DurableNameFormat"].GetString() == std::string("NAA"));
  const std::string naa = v["Identifiers"][0]["DurableName"].GetString();
  BOOST_TEST(naa.size() == 32u);
  BOOST_TEST(naa[0] == '6');
  BOOST_TEST(!std::string(v["Oem"]["Snapset"]["SerialNumber"].GetString()).empty());

  HttpResponse list = array.Get(kVolumes);
  BOOST_TEST(list.status == 200);
  BOOST_TEST(list.Json()["Members@odata.count"].GetInt() == 1);
  BOOST_TEST(list.Json()["Members"][0]["@odata.id"].GetString() == path);
  HttpResponse got = array.Get(path);
  BOOST_TEST(got.status == 200);
  BOOST_TEST(got.body == created.body);

  BOOST_TEST(array.Delete(path).status == 204);
  BOOST_TEST(array.Get(path).status == 404);
  BOOST_TEST(array.Get(kVolumes).Json()["Members@odata.count"].GetInt() == 0);
  // The name is free again, and the new volume gets a new identity.
  HttpResponse again = array.CreateVolume("db");
  BOOST_TEST(again.status == 201);
  BOOST_TEST(again.Json()["Identifiers"][0]["DurableName"].GetString() != naa);
}

BOOST_AUTO_TEST_CASE(volume_identifiers_are_unique) {
  Array array;
  if (!array.ok()) return;
  std::set<std::string> naas, serials;
  for (int i = 0; i < 4; ++i) {
    HttpResponse r = array.CreateVolume("v" + std::to_string(i));
    BOOST_REQUIRE_EQUAL(r.status, 201);
    naas.insert(r.Json()["Identifiers"][0]["DurableName"].GetString());
    serials.insert(r.Json()["Oem"]["Snapset"]["SerialNumber"].GetString());
  }
  BOOST_TEST(naas.size() == 4u);
  BOOST_TEST(serials.size() == 4u);
}

struct BadCreate {
  const char* body;
  const char* property;  // RelatedProperties[0], "" when none
};

BOOST_AUTO_TEST_CASE(invalid_volume_requests_get_400_naming_the_property) {
  Array array({"--pool-capacity-bytes", "1073741824"});
  if (!array.ok()) return;
  const BadCreate cases[] = {
      {"not json", ""},
      {"[1,2]", ""},
      {R"({"CapacityBytes":1048576})", "#/Name"},
      {R"({"Name":7,"CapacityBytes":1048576})", "#/Name"},
      {R"({"Name":"","CapacityBytes":1048576})", "#/Name"},
      {R"({"Name":"has space","CapacityBytes":1048576})", "#/Name"},
      {R"({"Name":"x"})", "#/CapacityBytes"},
      {R"({"Name":"x","CapacityBytes":"1048576"})", "#/CapacityBytes"},
      {R"({"Name":"x","CapacityBytes":-512})", "#/CapacityBytes"},
      {R"({"Name":"x","CapacityBytes":0})", "#/CapacityBytes"},
      {R"({"Name":"x","CapacityBytes":1000})", "#/CapacityBytes"},
      {R"({"Name":"x","CapacityBytes":1048576,"BlockSizeBytes":1000})", "#/BlockSizeBytes"},
      {R"({"Name":"x","CapacityBytes":1536,"BlockSizeBytes":4096})", "#/CapacityBytes"},
      {R"({"Name":"x","CapacityBytes":2147483648})", "#/CapacityBytes"},
      {R"({"Name":"x","CapacityBytes":1048576,"Colour":"red"})", "#/Colour"},
  };
  for (const BadCreate& c : cases) {
    HttpResponse r = array.Post(kVolumes, c.body);
    BOOST_TEST(r.status == 400, c.body);
    BOOST_TEST(r.RelatedProperty() == c.property, c.body << ": " << r.body);
    BOOST_TEST(!r.ErrorCode().empty(), c.body);
  }
  BOOST_TEST(array.Get(kVolumes).Json()["Members@odata.count"].GetInt() == 0);
}

BOOST_AUTO_TEST_CASE(a_taken_volume_name_is_a_409) {
  Array array;
  if (!array.ok()) return;
  BOOST_TEST(array.CreateVolume("same").status == 201);
  HttpResponse r = array.CreateVolume("same");
  BOOST_TEST(r.status == 409);
  BOOST_TEST(r.ErrorCode() == "Base.1.8.ResourceAlreadyExists");
  BOOST_TEST(array.Get(kVolumes).Json()["Members@odata.count"].GetInt() == 1);
}

BOOST_AUTO_TEST_CASE(unknown_volumes_and_routes_are_404) {
  Array array;
  if (!array.ok()) return;
  for (const std::string& path : {std::string(kVolumes) + "/42", std::string(kVolumes) + "/abc"}) {
    BOOST_TEST(array.Get(path).status == 404);
    BOOST_TEST(array.Delete(path).status == 404);
    BOOST_TEST(array.Get(path).ErrorCode() == "Base.1.8.ResourceNotFound");
  }
  BOOST_TEST(array.Get("/redfish/v1/Storage/nope/Volumes").status == 404);
  BOOST_TEST(array.Post("/redfish/v1/Storage/nope/Volumes", "{}").status == 404);
  BOOST_TEST(array.Get("/redfish/v1/Nowhere").ErrorCode() == "Base.1.8.ResourceNotFound");
}

BOOST_AUTO_TEST_CASE(users_file_must_be_owner_only_and_replaces_the_default_user) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  const std::string users =
      dir.Write("users.json", R"({"Users":[{"UserName":"ops","Password":"s3cret"}]})");
  // 0644: refused, the array does not start.
  BOOST_CHECK_THROW(MockArrayProcess(dir.str() + "/state", {"--users", users}), std::runtime_error);
  chmod(users.c_str(), 0600);
  MockArrayProcess array(dir.str() + "/state", {"--users", users});
  const std::string url = array.Url(kSessions);
  BOOST_TEST(Http("POST", url, R"({"UserName":"ops","Password":"s3cret"})").status == 201);
  BOOST_TEST(Http("POST", url, R"({"UserName":"admin","Password":"admin"})").status == 401);
}

BOOST_AUTO_TEST_CASE(snapshot_is_a_read_only_replica_with_its_own_identity) {
  Array array;
  if (!array.ok()) return;
  HttpResponse source = array.CreateVolume("src", 4 << 20);
  BOOST_REQUIRE_EQUAL(source.status, 201);
  const std::string source_path = source.Json()["@odata.id"].GetString();
  HttpResponse r = array.Post(CreateReplica(source_path),
                              R"({"ReplicaType":"Snapshot","TargetVolumeName":"src.monday"})");
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  rapidjson::Document snap = r.Json();
  const std::string path = snap["@odata.id"].GetString();
  BOOST_TEST(r.headers["location"] == path);
  BOOST_TEST(snap["Name"].GetString() == std::string("src.monday"));
  BOOST_TEST(snap["CapacityBytes"].GetUint64() == 4u << 20);
  BOOST_TEST(snap["ReplicaInfo"]["ReplicaType"].GetString() == std::string("Snapshot"));
  BOOST_TEST(snap["ReplicaInfo"]["ReplicaReadOnlyAccess"].GetString() ==
             std::string("ReplicaElement"));
  BOOST_TEST(snap["ReplicaInfo"]["SourceReplica"]["@odata.id"].GetString() == source_path);
  BOOST_TEST(snap["AccessCapabilities"].Size() == 1u);
  BOOST_TEST(snap["AccessCapabilities"][0].GetString() == std::string("Read"));
  BOOST_TEST(snap["Oem"]["Snapset"]["ReadOnly"].GetBool());
  const std::string method = snap["Oem"]["Snapset"]["CopyMethod"].GetString();
  BOOST_TEST((method == "reflink" || method == "sparse-copy"), method);
  BOOST_TEST(Naa(snap) != Naa(source.Json()));
  BOOST_TEST(Naa(snap).size() == 32u);
  BOOST_TEST(snap["Oem"]["Snapset"]["SerialNumber"].GetString() !=
             std::string(source.Json()["Oem"]["Snapset"]["SerialNumber"].GetString()));
  BOOST_TEST(!source.Json().HasMember("ReplicaInfo"));
  // Listed among the volumes, readable alone, costs the pool nothing.
  BOOST_TEST(array.Get(kVolumes).Json()["Members@odata.count"].GetInt() == 2);
  BOOST_TEST(array.Get(path).body == r.body);
  // A second one without a name gets a default one; both are distinct.
  HttpResponse second = array.Post(CreateReplica(source_path), kSnapshotBody);
  BOOST_REQUIRE_EQUAL(second.status, 201);
  BOOST_TEST(second.Json()["Name"].GetString() == std::string("src-snap-1"));
  BOOST_TEST(Naa(second.Json()) != Naa(snap));
  // A taken name is a 409.
  BOOST_TEST(array
                 .Post(CreateReplica(source_path),
                       R"({"ReplicaType":"Snapshot","TargetVolumeName":"src.monday"})")
                 .status == 409);
}

BOOST_AUTO_TEST_CASE(a_source_with_snapshots_cannot_be_deleted_until_they_are_removed) {
  Array array({"--pool-capacity-bytes", "8388608"});
  if (!array.ok()) return;
  const std::string source = array.CreateVolume("src", 4 << 20).Json()["@odata.id"].GetString();
  HttpResponse snap = array.Post(CreateReplica(source), kSnapshotBody);
  BOOST_REQUIRE_EQUAL(snap.status, 201);
  BOOST_TEST(FreeBytes(array) == 4u << 20);  // snapshots are not charged
  const std::string path = snap.Json()["@odata.id"].GetString();
  HttpResponse refused = array.Delete(source);
  BOOST_TEST(refused.status == 409);
  BOOST_TEST(refused.ErrorCode() == "Base.1.8.ResourceInUse");
  // RemoveReplicaRelationship on the source, or without DeleteTargetVolume: 400.
  BOOST_TEST(array.Post(RemoveReplica(source), kRemoveBody).status == 400);
  for (const char* body :
       {"{}", R"({"DeleteTargetVolume":false})", R"({"DeleteTargetVolume":"yes"})", "nope",
        R"({"DeleteTargetVolume":true,"Other":1})"}) {
    BOOST_TEST(array.Post(RemoveReplica(path), body).status == 400, body);
  }
  BOOST_TEST(array.Post(RemoveReplica(path), kRemoveBody).status == 204);
  BOOST_TEST(array.Get(path).status == 404);
  BOOST_TEST(array.Post(RemoveReplica(path), kRemoveBody).status == 404);
  BOOST_TEST(array.Delete(source).status == 204);
  BOOST_TEST(array.Get(kVolumes).Json()["Members@odata.count"].GetInt() == 0);
}

BOOST_AUTO_TEST_CASE(bad_snapshot_requests_are_400_or_404) {
  Array array;
  if (!array.ok()) return;
  const std::string source = array.CreateVolume("src").Json()["@odata.id"].GetString();
  const BadCreate cases[] = {
      {"not json", ""},
      {"{}", "#/ReplicaType"},
      {R"({"ReplicaType":"Clone"})", "#/ReplicaType"},
      {R"({"ReplicaType":7})", "#/ReplicaType"},
      {R"({"ReplicaType":"Snapshot","TargetVolumeName":"a b"})", "#/TargetVolumeName"},
      {R"({"ReplicaType":"Snapshot","TargetVolumeName":3})", "#/TargetVolumeName"},
      {R"({"ReplicaType":"Snapshot","Colour":"red"})", "#/Colour"},
  };
  for (const BadCreate& c : cases) {
    HttpResponse r = array.Post(CreateReplica(source), c.body);
    BOOST_TEST(r.status == 400, c.body);
    BOOST_TEST(r.RelatedProperty() == c.property, c.body << ": " << r.body);
  }
  BOOST_TEST(array.Post(CreateReplica(std::string(kVolumes) + "/42"), kSnapshotBody).status == 404);
  BOOST_TEST(array.Post(RemoveReplica(std::string(kVolumes) + "/42"), kRemoveBody).status == 404);
  BOOST_TEST(array
                 .Post("/redfish/v1/Storage/nope/Volumes/1/Actions/Volume.CreateReplicaTarget",
                       kSnapshotBody)
                 .status == 404);
  // No snapshots of snapshots.
  const std::string snap =
      array.Post(CreateReplica(source), kSnapshotBody).Json()["@odata.id"].GetString();
  BOOST_TEST(array.Post(CreateReplica(snap), kSnapshotBody).status == 400);
  BOOST_TEST(array.Get(kVolumes).Json()["Members@odata.count"].GetInt() == 2);
}

std::string GroupBody(const std::string& name, const std::vector<std::string>& volumes) {
  std::string body = R"({"Name":")" + name + R"(","Volumes":[)";
  for (size_t i = 0; i < volumes.size(); ++i) {
    body += (i ? "," : "") + std::string(R"({"@odata.id":")") + volumes[i] + "\"}";
  }
  return body + "]}";
}

BOOST_AUTO_TEST_CASE(consistency_group_create_list_get_delete) {
  Array array;
  if (!array.ok()) return;
  std::vector<std::string> volumes;
  for (const char* name : {"a", "b", "c"}) {
    volumes.push_back(array.CreateVolume(name).Json()["@odata.id"].GetString());
  }
  HttpResponse created = array.Post(kGroups, GroupBody("g", volumes));
  BOOST_REQUIRE_MESSAGE(created.status == 201, created.body);
  rapidjson::Document g = created.Json();
  const std::string path = g["@odata.id"].GetString();
  BOOST_TEST(created.headers["location"] == path);
  BOOST_TEST(g["Name"].GetString() == std::string("g"));
  BOOST_TEST(g["Volumes@odata.count"].GetInt() == 3);
  for (int i = 0; i < 3; ++i) BOOST_TEST(g["Volumes"][i]["@odata.id"].GetString() == volumes[i]);
  HttpResponse list = array.Get(kGroups);
  BOOST_TEST(list.Json()["Members@odata.count"].GetInt() == 1);
  BOOST_TEST(list.Json()["Members"][0]["@odata.id"].GetString() == path);
  BOOST_TEST(array.Get(path).body == created.body);
  BOOST_TEST(array.Post(kGroups, GroupBody("g", {volumes[0]})).status == 409);
  // A member cannot go while the group holds it.
  BOOST_TEST(array.Delete(volumes[1]).status == 409);
  BOOST_TEST(array.Delete(path).status == 204);
  BOOST_TEST(array.Get(path).status == 404);
  BOOST_TEST(array.Delete(path).status == 404);
  BOOST_TEST(array.Get(kGroups).Json()["Members@odata.count"].GetInt() == 0);
  BOOST_TEST(array.Delete(volumes[1]).status == 204);
}

BOOST_AUTO_TEST_CASE(bad_consistency_group_requests_are_400) {
  Array array;
  if (!array.ok()) return;
  const std::string v = array.CreateVolume("v").Json()["@odata.id"].GetString();
  const std::string snap =
      array.Post(CreateReplica(v), kSnapshotBody).Json()["@odata.id"].GetString();
  const std::string bodies[] = {
      "nope",
      R"({"Volumes":[]})",
      R"({"Name":"g"})",
      R"({"Name":"g","Volumes":[]})",
      R"({"Name":"g","Volumes":"x"})",
      R"({"Name":"g","Volumes":[7]})",
      R"({"Name":"a b","Volumes":[{"@odata.id":")" + v + R"("}]})",
      GroupBody("g", {std::string(kVolumes) + "/42"}),
      GroupBody("g", {snap}),
      GroupBody("g", {v, v}),
      R"({"Name":"g","Volumes":[{"@odata.id":")" + v + R"("}],"Colour":1})",
  };
  for (const std::string& body : bodies) BOOST_TEST(array.Post(kGroups, body).status == 400, body);
  BOOST_TEST(array.Get(kGroups).Json()["Members@odata.count"].GetInt() == 0);
  BOOST_TEST(array.Get(std::string(kGroups) + "/9").status == 404);
  BOOST_TEST(array.Post(GroupSnapshot(std::string(kGroups) + "/9"), kSnapshotBody).status == 404);
}

BOOST_AUTO_TEST_CASE(group_snapshot_gives_one_snapshot_per_member) {
  Array array;
  if (!array.ok()) return;
  std::vector<std::string> volumes;
  for (const char* name : {"a", "b", "c"}) {
    volumes.push_back(array.CreateVolume(name).Json()["@odata.id"].GetString());
  }
  const std::string group =
      array.Post(kGroups, GroupBody("g", volumes)).Json()["@odata.id"].GetString();
  BOOST_TEST(array.Post(GroupSnapshot(group), R"({"ReplicaType":"Clone"})").status == 400);
  BOOST_TEST(array.Post(GroupSnapshot(group), "{}").status == 400);
  HttpResponse r = array.Post(GroupSnapshot(group), kSnapshotBody);
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  rapidjson::Document body = r.Json();
  BOOST_TEST(body["Members@odata.count"].GetInt() == 3);
  BOOST_TEST(body["ConsistencyGroup"]["@odata.id"].GetString() == group);
  std::set<std::string> naas;
  for (int i = 0; i < 3; ++i) {
    const rapidjson::Value& snap = body["Members"][i];
    BOOST_TEST(snap["ReplicaInfo"]["SourceReplica"]["@odata.id"].GetString() == volumes[i]);
    naas.insert(Naa(snap));
    BOOST_TEST(array.Get(snap["@odata.id"].GetString()).status == 200);
  }
  BOOST_TEST(naas.size() == 3u);
  BOOST_TEST(array.Get(kVolumes).Json()["Members@odata.count"].GetInt() == 6);
  BOOST_TEST(array.Post(GroupSnapshot(group), kSnapshotBody).status == 201);  // again
  BOOST_TEST(array.Get(kVolumes).Json()["Members@odata.count"].GetInt() == 9);
}

int64_t MonotonicNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

BOOST_AUTO_TEST_CASE(the_request_log_says_which_operation_came_when_and_what_it_got) {
  Array array;
  if (!array.ok()) return;
  BOOST_TEST(array.Delete("/mock/requests").status == 204);
  const int64_t before = MonotonicNs();
  BOOST_TEST(array.CreateVolume("a").status == 201);
  BOOST_TEST(array.Get(kVolumes + std::string("/999")).status == 404);
  const int64_t after = MonotonicNs();
  HttpResponse r = array.Get("/mock/requests");
  BOOST_REQUIRE_EQUAL(r.status, 200);
  rapidjson::Document log = r.Json();
  // The /mock routes themselves are not in it: only what passed the door.
  BOOST_REQUIRE_EQUAL(log["Members@odata.count"].GetInt(), 2);
  const rapidjson::Value& created = log["Members"][0];
  BOOST_TEST(created["Operation"].GetString() == std::string("Volume.Create"));
  BOOST_TEST(created["Method"].GetString() == std::string("POST"));
  BOOST_TEST(created["Path"].GetString() == std::string(kVolumes));
  BOOST_TEST(created["Status"].GetInt() == 201);
  const rapidjson::Value& missing = log["Members"][1];
  BOOST_TEST(missing["Operation"].GetString() == std::string("Volume.Get"));
  BOOST_TEST(missing["Status"].GetInt() == 404);
  // On this host's CLOCK_MONOTONIC, so a client can compare them with its own.
  for (const auto& e : log["Members"].GetArray()) {
    BOOST_TEST(e["ReceivedMonotonicNs"].GetInt64() >= before);
    BOOST_TEST(e["AnsweredMonotonicNs"].GetInt64() >= e["ReceivedMonotonicNs"].GetInt64());
    BOOST_TEST(e["AnsweredMonotonicNs"].GetInt64() <= after);
  }
  BOOST_TEST(array.Delete("/mock/requests").status == 204);
  BOOST_TEST(array.Get("/mock/requests").Json()["Members@odata.count"].GetInt() == 0);
}

BOOST_AUTO_TEST_CASE(group_snapshot_names_its_snapshots_when_asked) {
  Array array;
  if (!array.ok()) return;
  std::vector<std::string> volumes;
  for (const char* name : {"a", "b"}) {
    volumes.push_back(array.CreateVolume(name).Json()["@odata.id"].GetString());
  }
  const std::string group =
      array.Post(kGroups, GroupBody("g", volumes)).Json()["@odata.id"].GetString();
  const std::string named = R"({"ReplicaType":"Snapshot","TargetVolumeNames":["s-a","s-b"]})";
  BOOST_TEST(array.Post(GroupSnapshot(group),
                        R"({"ReplicaType":"Snapshot","TargetVolumeNames":["only-one"]})")
                 .status == 400);
  BOOST_TEST(array.Post(GroupSnapshot(group),
                        R"({"ReplicaType":"Snapshot","TargetVolumeNames":["bad name","x"]})")
                 .status == 400);
  HttpResponse r = array.Post(GroupSnapshot(group), named);
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  rapidjson::Document body = r.Json();
  BOOST_TEST(body["Members"][0]["Name"].GetString() == std::string("s-a"));
  BOOST_TEST(body["Members"][1]["Name"].GetString() == std::string("s-b"));
  // A name taken is a 409 and makes nothing.
  BOOST_TEST(array.Post(GroupSnapshot(group), named).status == 409);
  BOOST_TEST(array.Get(kVolumes).Json()["Members@odata.count"].GetInt() == 4);
}

BOOST_AUTO_TEST_CASE(snapshots_and_groups_survive_kill_9) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  std::string snap_body, group_body, snap_path, group_path, source_path;
  {
    MockArrayProcess array(dir.str());
    const std::string token = array.Login();
    source_path =
        Http("POST", array.Url(kVolumes), R"({"Name":"s","CapacityBytes":1048576})", token)
            .Json()["@odata.id"]
            .GetString();
    HttpResponse snap = Http("POST", array.Url(CreateReplica(source_path)), kSnapshotBody, token);
    BOOST_REQUIRE_EQUAL(snap.status, 201);
    snap_body = snap.body;
    snap_path = snap.Json()["@odata.id"].GetString();
    HttpResponse group = Http("POST", array.Url(kGroups), GroupBody("g", {source_path}), token);
    BOOST_REQUIRE_EQUAL(group.status, 201);
    group_body = group.body;
    group_path = group.Json()["@odata.id"].GetString();
    array.Kill9();
  }
  MockArrayProcess again(dir.str());
  const std::string token = again.Login();
  BOOST_TEST(Http("GET", again.Url(snap_path), "", token).body == snap_body);
  BOOST_TEST(Http("GET", again.Url(group_path), "", token).body == group_body);
  BOOST_TEST(Http("DELETE", again.Url(source_path), "", token).status == 409);
  BOOST_TEST(Http("POST", again.Url(RemoveReplica(snap_path)), kRemoveBody, token).status == 204);
}

}  // namespace
}  // namespace snapset::test
