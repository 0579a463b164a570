// Exposure: Redfish Connections map volumes and snapshots to one initiator
// IQN, with optional CHAP; what REST promises is checked on the wire with
// libiscsi.
#define BOOST_TEST_MODULE mock_array_exposure
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <sqlite3.h>

#include <boost/test/unit_test.hpp>
#include <memory>
#include <string>
#include <vector>

#include "tests/mock-array/connections.hpp"
#include "tests/mock-array/iscsi_lun.hpp"
#include "tests/mock-array/mock_array_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";
constexpr char kOtherInitiator[] = "iqn.2026-11.io.snapset.test:someone-else";
constexpr char kSecret[] = "twelve-chars-at-least";

// One array in its own state directory, logged in as admin.
struct Array {
  explicit Array(const std::string& state_dir) : process(state_dir), token(process.Login()) {}
  HttpResponse Get(const std::string& path) const {
    return Http("GET", process.Url(path), "", token);
  }
  HttpResponse Post(const std::string& path, const std::string& body) const {
    return Http("POST", process.Url(path), body, token);
  }
  HttpResponse Delete(const std::string& path) const {
    return Http("DELETE", process.Url(path), "", token);
  }
  // Creates a volume and returns its @odata.id.
  std::string Volume(const std::string& name, uint64_t bytes = 1 << 20) const {
    HttpResponse r = Post(
        kVolumes, R"({"Name":")" + name + R"(","CapacityBytes":)" + std::to_string(bytes) + "}");
    BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
    return r.Json()["@odata.id"].GetString();
  }
  std::string Snapshot(const std::string& volume) const {
    HttpResponse r =
        Post(volume + "/Actions/Volume.CreateReplicaTarget", R"({"ReplicaType":"Snapshot"})");
    BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
    return r.Json()["@odata.id"].GetString();
  }
  HttpResponse PostConnection(const ConnectionRequest& request) const {
    return Post(kConnections, ConnectionBody(request));
  }

  MockArrayProcess process;
  std::string token;
};

ConnectionRequest Mapping(std::vector<std::string> volumes) {
  ConnectionRequest request;
  request.volumes = std::move(volumes);
  return request;
}

// Logs in as `login` says; "" when it worked, else what libiscsi said.
std::string LoginError(const std::string& url, const LunLogin& login) {
  std::string error;
  std::unique_ptr<Lun> lun = Lun::TryConnect(url, login, &error);
  return lun ? "" : (error.empty() ? "failed" : error);
}

BOOST_AUTO_TEST_CASE(a_connection_maps_volumes_as_luns_and_is_listed_read_and_deleted) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  Array array(dir.str());
  const std::string a = array.Volume("a"), b = array.Volume("b");
  ConnectionRequest request = Mapping({a, b});
  request.name = "host1";
  request.chap_user = "host1";
  request.chap_password = kSecret;
  HttpResponse r = array.PostConnection(request);
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  rapidjson::Document c = r.Json();
  const std::string path = c["@odata.id"].GetString();
  BOOST_TEST(r.headers["location"] == path);
  BOOST_TEST(c["Name"].GetString() == std::string("host1"));
  BOOST_TEST(c["ConnectionType"].GetString() == std::string("Storage"));
  BOOST_REQUIRE(c["VolumeInfo"].Size() == 2u);
  BOOST_TEST(c["VolumeInfo"][0]["Volume"]["@odata.id"].GetString() == a);
  BOOST_TEST(c["VolumeInfo"][0]["LUN"].GetInt() == 1);
  BOOST_TEST(c["VolumeInfo"][1]["LUN"].GetInt() == 2);
  BOOST_TEST(c["VolumeInfo"][1]["AccessCapabilities"].Size() == 2u);
  BOOST_TEST(c["ConnectionKeys"]["CHAP"]["CHAPUsername"].GetString() == std::string("host1"));
  BOOST_TEST(c["ConnectionKeys"]["CHAP"]["CHAPPassword"].IsNull());  // never shown
  BOOST_TEST(r.body.find(kSecret) == std::string::npos);
  BOOST_TEST(c["Oem"]["Snapset"]["InitiatorIqn"].GetString() == std::string(kTestInitiator));
  BOOST_TEST(c["Oem"]["Snapset"]["Portal"].GetString() == array.process.portal());

  HttpResponse list = array.Get(kConnections);
  BOOST_TEST(list.Json()["Members@odata.count"].GetInt() == 1);
  BOOST_TEST(list.Json()["Members"][0]["@odata.id"].GetString() == path);
  BOOST_TEST(array.Get(path).body == r.body);
  BOOST_TEST(array.Get("/redfish/v1/Fabrics/iSCSI").Json()["FabricType"].GetString() ==
             std::string("iSCSI"));
  BOOST_TEST(array.Get("/redfish/v1").Json()["Fabrics"]["@odata.id"].GetString() ==
             std::string("/redfish/v1/Fabrics"));

  // A mapped volume cannot be deleted; the 409 says by what.
  HttpResponse held = array.Delete(a);
  BOOST_TEST(held.status == 409);
  BOOST_TEST(held.body.find("connection host1") != std::string::npos, held.body);
  BOOST_TEST(array.Delete(path).status == 204);
  BOOST_TEST(array.Get(path).status == 404);
  BOOST_TEST(array.Delete(path).status == 404);
  BOOST_TEST(array.Delete(a).status == 204);
}

BOOST_AUTO_TEST_CASE(bad_connection_requests_are_refused_naming_what_is_wrong) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  Array array(dir.str());
  const std::string v = array.Volume("v");
  const std::string snap = array.Snapshot(v);
  auto refused = [&](const std::string& body, long status, const std::string& property) {
    HttpResponse r = array.Post(kConnections, body);
    BOOST_TEST(r.status == status, body << " -> " << r.status << " " << r.body);
    BOOST_TEST(r.RelatedProperty() == "#/" + property, body << " -> " << r.body);
    BOOST_TEST(!r.ErrorCode().empty(), r.body);
  };
  const std::string volume_info = R"("VolumeInfo":[{"Volume":{"@odata.id":")" + v + R"("}}])";
  const std::string initiator =
      std::string(R"("Oem":{"Snapset":{"InitiatorIqn":")") + kTestInitiator + R"("}})";
  refused("{" + volume_info + "}", 400, "Oem/Snapset/InitiatorIqn");
  refused("{" + volume_info + R"(,"Oem":{"Snapset":{"InitiatorIqn":"host one"}}})", 400,
          "Oem/Snapset/InitiatorIqn");
  refused("{" + initiator + "}", 400, "VolumeInfo");
  refused(R"({"VolumeInfo":[],)" + initiator + "}", 400, "VolumeInfo");
  refused(R"({"VolumeInfo":[{"Volume":{"@odata.id":"/redfish/v1/Storage/array/Volumes/99"}}],)" +
              initiator + "}",
          400, "VolumeInfo");
  refused(R"({"VolumeInfo":[{"Volume":{"@odata.id":")" + v + R"("}},{"Volume":{"@odata.id":")" + v +
              R"("}}],)" + initiator + "}",
          400, "VolumeInfo");
  refused(R"({"VolumeInfo":[{"Volume":{"@odata.id":")" + snap +
              R"("},"AccessCapabilities":["Read","Write"]}],)" + initiator + "}",
          400, "VolumeInfo/AccessCapabilities");
  refused(R"({"VolumeInfo":[{"Volume":{"@odata.id":")" + v +
              R"("},"AccessCapabilities":["Write"]}],)" + initiator + "}",
          400, "VolumeInfo/AccessCapabilities");
  refused("{" + volume_info + "," + initiator +
              R"(,"ConnectionKeys":{"CHAP":{"CHAPUsername":"u","CHAPPassword":"short"}}})",
          400, "ConnectionKeys/CHAP/CHAPPassword");
  refused("{" + volume_info + "," + initiator +
              R"(,"ConnectionKeys":{"CHAP":{"CHAPUsername":"u","CHAPPassword":"long enough secret",
              "TargetCHAPPassword":"mutual-secret-1"}}})",
          400, "ConnectionKeys/CHAP/TargetCHAPPassword");
  refused("{" + volume_info + "," + initiator + R"(,"ConnectionType":"Memory"})", 400,
          "ConnectionType");
  refused("{" + volume_info + "," + initiator + R"(,"Endpoints":[]})", 400, "Endpoints");
  // Not found: another fabric, another connection.
  BOOST_TEST(array.Post("/redfish/v1/Fabrics/FC/Connections", "{}").status == 404);
  BOOST_TEST(array.Get(std::string(kConnections) + "/42").status == 404);
  // Conflicts: a taken name; one CHAP user name with two secrets.
  ConnectionRequest first = Mapping({v});
  first.name = "taken";
  first.chap_user = "shared";
  first.chap_password = kSecret;
  BOOST_REQUIRE_EQUAL(array.PostConnection(first).status, 201);
  ConnectionRequest same_name = Mapping({snap});
  same_name.name = "taken";
  BOOST_TEST(array.PostConnection(same_name).status == 409);
  ConnectionRequest other_secret = Mapping({snap});
  other_secret.chap_user = "shared";
  other_secret.chap_password = "another-secret-here";
  HttpResponse conflict = array.PostConnection(other_secret);
  BOOST_TEST(conflict.status == 409);
  BOOST_TEST(conflict.RelatedProperty() == "#/ConnectionKeys/CHAP/CHAPUsername");
  // Nothing of the refused ones was made.
  BOOST_TEST(array.Get(kConnections).Json()["Members@odata.count"].GetInt() == 1);
}

BOOST_AUTO_TEST_CASE(only_the_mapped_initiator_may_log_in) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  Array array(dir.str());
  const Connection c = Connect(array.process, array.token, Mapping({array.Volume("v")}));
  LunLogin stranger;
  stranger.initiator = kOtherInitiator;
  BOOST_TEST(!LoginError(c.urls[0], stranger).empty());
  BOOST_TEST(LoginError(c.urls[0], LunLogin{}) == "");
}

BOOST_AUTO_TEST_CASE(chap_lets_in_the_right_secret_only) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  Array array(dir.str());
  ConnectionRequest request = Mapping({array.Volume("v")});
  request.chap_user = "host1";
  request.chap_password = kSecret;
  const Connection c = Connect(array.process, array.token, request);
  LunLogin none;
  BOOST_TEST(!LoginError(c.urls[0], none).empty());
  LunLogin wrong;
  wrong.chap_user = "host1";
  wrong.chap_password = "not-the-right-one";
  BOOST_TEST(!LoginError(c.urls[0], wrong).empty());
  LunLogin right;
  right.chap_user = "host1";
  right.chap_password = kSecret;
  BOOST_TEST(LoginError(c.urls[0], right) == "");
  Lun lun(c.urls[0], right);
  BOOST_TEST(lun.Write(0, Pattern("chap ", 512), 512) == SCSI_STATUS_GOOD);
}

BOOST_AUTO_TEST_CASE(read_only_exposures_and_snapshots_refuse_writes) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  Array array(dir.str());
  const std::string v = array.Volume("v");
  const Connection writable = Connect(array.process, array.token, Mapping({v}));
  {
    Lun lun(writable.urls[0]);
    BOOST_REQUIRE(lun.Write(0, Pattern("first ", 4096), 512) == SCSI_STATUS_GOOD);
  }
  const std::string snap = array.Snapshot(v);
  ConnectionRequest read_only = Mapping({v});
  read_only.read_only = true;
  read_only.initiator = kOtherInitiator;
  const Connection ro = Connect(array.process, array.token, read_only);
  // A snapshot mapped with no AccessCapabilities is read-only too.
  const Connection snap_c = Connect(array.process, array.token, Mapping({snap}));
  for (const auto& [url, initiator] : {std::pair{ro.urls[0], std::string(kOtherInitiator)},
                                       std::pair{snap_c.urls[0], std::string(kTestInitiator)}}) {
    LunLogin login;
    login.initiator = initiator;
    Lun lun(url, login);
    BOOST_TEST(lun.Read(0, 4096, 512) == Pattern("first ", 4096), url);
    BOOST_TEST(lun.Write(0, Pattern("evil ", 512), 512) == SCSI_SENSE_DATA_PROTECTION, url);
    BOOST_TEST(lun.last_ascq() == SCSI_SENSE_ASCQ_WRITE_PROTECTED, url);
  }
  HttpResponse snap_body = array.Get(snap_c.path);
  BOOST_TEST(snap_body.Json()["VolumeInfo"][0]["AccessCapabilities"].Size() == 1u);
  // A mapped snapshot cannot be removed until unmapped.
  const std::string remove = snap + "/Actions/Volume.RemoveReplicaRelationship";
  BOOST_TEST(array.Post(remove, R"({"DeleteTargetVolume":true})").status == 409);
  BOOST_TEST(array.Delete(snap_c.path).status == 204);
  BOOST_TEST(array.Post(remove, R"({"DeleteTargetVolume":true})").status == 204);
}

BOOST_AUTO_TEST_CASE(one_volume_in_two_connections_and_unmapping_one_leaves_the_other) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  Array array(dir.str());
  const std::string v = array.Volume("shared");
  const Connection mine = Connect(array.process, array.token, Mapping({v}));
  ConnectionRequest theirs_request = Mapping({v});
  theirs_request.initiator = kOtherInitiator;
  const Connection theirs = Connect(array.process, array.token, theirs_request);
  BOOST_TEST(mine.target != theirs.target);
  LunLogin them;
  them.initiator = kOtherInitiator;
  {
    Lun lun(mine.urls[0]);
    BOOST_REQUIRE(lun.Write(8, Pattern("both see ", 512), 512) == SCSI_STATUS_GOOD);
    Lun other(theirs.urls[0], them);
    BOOST_TEST(other.Read(8, 512, 512) == Pattern("both see ", 512));
  }
  // Unmapped while logged in: the target goes, sessions and all, and no
  // new login works.
  Lun lun(mine.urls[0]);
  BOOST_TEST(array.Delete(mine.path).status == 204);
  lun.Drop();
  BOOST_TEST(!LoginError(mine.urls[0], LunLogin{}).empty());
  Lun other(theirs.urls[0], them);
  BOOST_TEST(other.Read(8, 512, 512) == Pattern("both see ", 512));
}

BOOST_AUTO_TEST_CASE(connections_with_acl_and_chap_survive_kill_9) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  std::string path;
  {
    Array array(dir.str());
    ConnectionRequest request = Mapping({array.Volume("v")});
    request.chap_user = "host1";
    request.chap_password = kSecret;
    const Connection c = Connect(array.process, array.token, request);
    LunLogin login;
    login.chap_user = "host1";
    login.chap_password = kSecret;
    Lun lun(c.urls[0], login);
    BOOST_REQUIRE(lun.Write(0, Pattern("durable ", 4096), 512) == SCSI_STATUS_GOOD);
    path = c.path;
    array.process.Kill9();
    lun.Drop();
  }
  Array again(dir.str());
  const Connection c = GetConnection(again.process, again.token, path);
  LunLogin login;
  login.chap_user = "host1";
  login.chap_password = kSecret;
  Lun lun(c.urls[0], login);
  BOOST_TEST(lun.Read(0, 4096, 512) == Pattern("durable ", 4096));
  BOOST_TEST(!LoginError(c.urls[0], LunLogin{}).empty());  // CHAP still asked
  LunLogin stranger = login;
  stranger.initiator = kOtherInitiator;
  BOOST_TEST(!LoginError(c.urls[0], stranger).empty());  // and the ACL kept
}

BOOST_AUTO_TEST_CASE(a_crash_mid_mapping_is_rolled_back_and_mid_unmapping_is_finished) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  std::string half_done, going;
  {
    Array array(dir.str());
    half_done = Connect(array.process, array.token, Mapping({array.Volume("a")})).path;
    going = Connect(array.process, array.token, Mapping({array.Volume("b")})).path;
    array.process.Kill9();
  }
  // What a crash between the database and tgtd leaves behind.
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open((dir.str() + "/state.db").c_str(), &db) == SQLITE_OK);
  const std::string sql =
      "UPDATE exposures SET state='creating' WHERE id=" +
      half_done.substr(half_done.rfind('/') + 1) +
      ";UPDATE exposures SET state='deleting' WHERE id=" + going.substr(going.rfind('/') + 1) + ";";
  BOOST_TEST(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  Array again(dir.str());
  BOOST_TEST(again.Get(kConnections).Json()["Members@odata.count"].GetInt() == 0);
  BOOST_TEST(again.Get(half_done).status == 404);
  BOOST_TEST(again.Get(going).status == 404);
  // The volumes are free to go.
  BOOST_TEST(again.Delete(std::string(kVolumes) + "/1").status == 204);
  BOOST_TEST(again.Delete(std::string(kVolumes) + "/2").status == 204);
}

}  // namespace
}  // namespace snapset::test
