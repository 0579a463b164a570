#define BOOST_TEST_MODULE mock_array_iscsi
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/iscsi_identity.hpp"
#include "tests/mock-array/connections.hpp"
#include "tests/mock-array/iscsi_lun.hpp"
#include "tests/mock-array/mock_array_process.hpp"
#include "tests/support/loop_filesystem.hpp"
#include "tests/support/prerequisites.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";

struct RestVolume {
  std::string path, naa, serial;
  std::string url, connection;  // once exposed
  uint64_t capacity = 0;
  uint32_t block_size = 0;
};

RestVolume FromJson(const MockArrayProcess& array, const rapidjson::Document& v) {
  RestVolume out;
  out.path = v["@odata.id"].GetString();
  out.naa = v["Identifiers"][0]["DurableName"].GetString();
  out.serial = v["Oem"]["Snapset"]["SerialNumber"].GetString();
  out.capacity = v["CapacityBytes"].GetUint64();
  out.block_size = v["BlockSizeBytes"].GetUint();
  static_cast<void>(array);
  return out;
}

// Maps `v` to the test initiator in a connection of its own.
RestVolume Exposed(const MockArrayProcess& array, const std::string& token, RestVolume v) {
  ConnectionRequest request;
  request.volumes = {v.path};
  const Connection c = Connect(array, token, request);
  v.url = c.urls.at(0);
  v.connection = c.path;
  return v;
}

// `before` as the array reports it now, with the URL of its connection
// (whose portal changes when the array restarts).
RestVolume Reread(const MockArrayProcess& array, const std::string& token,
                  const RestVolume& before) {
  HttpResponse got = Http("GET", array.Url(before.path), "", token);
  BOOST_REQUIRE_MESSAGE(got.status == 200, got.body);
  RestVolume after = FromJson(array, got.Json());
  after.connection = before.connection;
  after.url = GetConnection(array, token, before.connection).urls.at(0);
  return after;
}

// Creates a volume and, unless told not to, exposes it to the test initiator.
RestVolume Create(const MockArrayProcess& array, const std::string& token, const std::string& name,
                  uint64_t bytes, uint32_t block_size, bool expose = true) {
  HttpResponse r = Http("POST", array.Url(kVolumes),
                        R"({"Name":")" + name + R"(","CapacityBytes":)" + std::to_string(bytes) +
                            R"(,"BlockSizeBytes":)" + std::to_string(block_size) + "}",
                        token);
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  const RestVolume v = FromJson(array, r.Json());
  return expose ? Exposed(array, token, v) : v;
}

// What the LUN says on the wire must be what REST says.
void CheckWire(const RestVolume& v) {
  IscsiOptions options;
  options.initiator_iqn = kTestInitiator;
  Result<Volume> wire = ResolveIscsiVolume(v.url, options);
  BOOST_REQUIRE_MESSAGE(wire.ok(), v.url << ": " << wire.status().ToString());
  BOOST_TEST(wire->identity.Naa() == v.naa, v.url);
  BOOST_TEST(wire->identity.serial == v.serial, v.url);
  BOOST_TEST(wire->size_bytes == v.capacity, v.url);
  BOOST_TEST(wire->block_size == v.block_size, v.url);
}

RestVolume Snapshot(const MockArrayProcess& array, const std::string& token,
                    const RestVolume& source) {
  HttpResponse r = Http("POST", array.Url(source.path + "/Actions/Volume.CreateReplicaTarget"),
                        R"({"ReplicaType":"Snapshot"})", token);
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  return Exposed(array, token, FromJson(array, r.Json()));
}

BOOST_AUTO_TEST_CASE(snapshot_keeps_the_old_data_refuses_writes_and_reports_its_naa) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  MockArrayProcess array(dir.str());
  const std::string token = array.Login();
  const RestVolume v = Create(array, token, "data", 8 << 20, 512);
  constexpr uint32_t kBytes = 64 * 1024;
  constexpr uint64_t kLba = 4096;  // past the start, in a hole-surrounded extent
  {
    Lun lun(v.url);
    BOOST_TEST(lun.Write(kLba, Pattern("monday ", kBytes), 512) == SCSI_STATUS_GOOD);
    const RestVolume snap = Snapshot(array, token, v);
    BOOST_TEST(lun.Write(kLba, Pattern("tuesday ", kBytes), 512) == SCSI_STATUS_GOOD);
    // Source now shows tuesday, the snapshot monday.
    BOOST_TEST(Text(lun.Read(kLba, kBytes, 512), 16) == "tuesday tuesday ");
    CheckWire(snap);  // NAA/serial/capacity on the wire equal its REST body
    Lun snap_lun(snap.url);
    BOOST_TEST(snap_lun.Read(kLba, kBytes, 512) == Pattern("monday ", kBytes));
    BOOST_TEST(snap_lun.Read(0, 4096, 512) == std::vector<unsigned char>(4096, 0));
    BOOST_TEST(snap_lun.Write(kLba, Pattern("evil ", 512), 512) == SCSI_SENSE_DATA_PROTECTION);
    BOOST_TEST(snap_lun.last_ascq() == SCSI_SENSE_ASCQ_WRITE_PROTECTED);
    BOOST_TEST(snap_lun.Read(kLba, kBytes, 512) == Pattern("monday ", kBytes));
  }
}

// The array's state directory on XFS (reflink on by default in Debian 12's
// mkfs.xfs): snapshots are FICLONE clones, and a clone keeps its old data
// while the source is overwritten in place.
BOOST_AUTO_TEST_CASE(snapshot_on_a_reflink_file_system_is_a_clone_with_the_old_data) {
  if (!MockArrayAvailable() || !Available(LoopFilesystem::MissingPrerequisite("xfs"))) return;
  Result<std::unique_ptr<LoopFilesystem>> xfs = LoopFilesystem::Create(512ull << 20, "xfs");
  BOOST_REQUIRE_MESSAGE(xfs.ok(), xfs.status().ToString());
  RestVolume snap;
  {
    MockArrayProcess array((*xfs)->mount_point() + "/state");
    const std::string token = array.Login();
    const RestVolume v = Create(array, token, "data", 16 << 20, 4096);
    Lun lun(v.url);
    BOOST_REQUIRE(lun.Write(100, Pattern("before ", 1 << 20), 4096) == SCSI_STATUS_GOOD);
    HttpResponse r = Http("POST", array.Url(v.path + "/Actions/Volume.CreateReplicaTarget"),
                          R"({"ReplicaType":"Snapshot"})", token);
    BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
    BOOST_TEST(r.Json()["Oem"]["Snapset"]["CopyMethod"].GetString() == std::string("reflink"));
    snap = Exposed(array, token, FromJson(array, r.Json()));
    BOOST_REQUIRE(lun.Write(100, Pattern("after ", 1 << 20), 4096) == SCSI_STATUS_GOOD);
    Lun snap_lun(snap.url);
    BOOST_TEST(snap_lun.Read(100, 1 << 20, 4096) == Pattern("before ", 1 << 20));
    BOOST_TEST(lun.Read(100, 1 << 20, 4096) == Pattern("after ", 1 << 20));
    CheckWire(snap);
  }
}

BOOST_AUTO_TEST_CASE(group_snapshot_shows_one_instant_on_every_member) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  MockArrayProcess array(dir.str());
  const std::string token = array.Login();
  std::vector<RestVolume> volumes;
  std::string members;
  for (const char* name : {"m0", "m1", "m2"}) {
    volumes.push_back(Create(array, token, name, 4 << 20, 4096));
    members += (members.empty() ? "" : ",") + std::string(R"({"@odata.id":")") +
               volumes.back().path + "\"}";
  }
  HttpResponse group = Http("POST", array.Url("/redfish/v1/Storage/array/ConsistencyGroups"),
                            R"({"Name":"g","Volumes":[)" + members + "]}", token);
  BOOST_REQUIRE_MESSAGE(group.status == 201, group.body);
  const std::string group_path = group.Json()["@odata.id"].GetString();
  auto counter = [](uint64_t n) {
    std::vector<unsigned char> block(4096, 0);
    std::memcpy(block.data(), &n, sizeof(n));
    return block;
  };
  std::vector<std::unique_ptr<Lun>> luns;
  for (const RestVolume& v : volumes) luns.push_back(std::make_unique<Lun>(v.url));
  for (uint64_t n = 1; n <= 41; ++n) {
    for (auto& lun : luns) BOOST_REQUIRE(lun->Write(7, counter(n), 4096) == SCSI_STATUS_GOOD);
  }
  HttpResponse snap =
      Http("POST", array.Url(group_path + "/Actions/ConsistencyGroup.CreateReplicaTarget"),
           R"({"ReplicaType":"Snapshot"})", token);
  BOOST_REQUIRE_MESSAGE(snap.status == 201, snap.body);
  // The sessions of the members survive the offline/ready cycle.
  for (auto& lun : luns) BOOST_REQUIRE(lun->Write(7, counter(42), 4096) == SCSI_STATUS_GOOD);
  rapidjson::Document body = snap.Json();
  BOOST_REQUIRE_EQUAL(body["Members@odata.count"].GetInt(), 3);
  for (int i = 0; i < 3; ++i) {
    rapidjson::Document one;
    one.CopyFrom(body["Members"][i], one.GetAllocator());
    const RestVolume s = Exposed(array, token, FromJson(array, one));
    CheckWire(s);
    Lun lun(s.url);
    BOOST_TEST(lun.Read(7, 4096, 4096) == counter(41), "member " << i);
    BOOST_TEST(luns[static_cast<size_t>(i)]->Read(7, 4096, 4096) == counter(42));
  }
}

// A writer keeps writing an increasing counter to m0, m1, m2 in that order,
// each acknowledged before the next. A snapshot at one instant must then see
// s0 >= s1 >= s2 >= s0 - 1; copying members at different times would let a
// later member run ahead of an earlier one.
BOOST_AUTO_TEST_CASE(group_snapshot_under_a_live_writer_is_one_instant) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  MockArrayProcess array(dir.str());
  const std::string token = array.Login();
  std::vector<RestVolume> volumes;
  std::string members;
  for (const char* name : {"w0", "w1", "w2"}) {
    volumes.push_back(Create(array, token, name, 16 << 20, 4096));
    members += (members.empty() ? "" : ",") + std::string(R"({"@odata.id":")") +
               volumes.back().path + "\"}";
  }
  HttpResponse group = Http("POST", array.Url("/redfish/v1/Storage/array/ConsistencyGroups"),
                            R"({"Name":"g","Volumes":[)" + members + "]}", token);
  BOOST_REQUIRE_EQUAL(group.status, 201);
  const std::string action = group.Json()["@odata.id"].GetString() +
                             std::string("/Actions/ConsistencyGroup.CreateReplicaTarget");
  std::vector<std::unique_ptr<Lun>> luns;
  for (const RestVolume& v : volumes) luns.push_back(std::make_unique<Lun>(v.url));
  // Some data around the counter, so there is something to copy.
  for (auto& lun : luns) {
    BOOST_REQUIRE(lun->Write(1024, Pattern("filler ", 1 << 20), 4096) == SCSI_STATUS_GOOD);
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> written{0};
  std::atomic<int> failed{0};
  std::thread writer([&] {
    std::vector<unsigned char> block(4096, 0);
    for (uint64_t n = 1; !stop.load(); ++n) {
      std::memcpy(block.data(), &n, sizeof(n));
      for (auto& lun : luns) {
        int status = -1;
        for (int attempt = 0; attempt < 2000 && status != SCSI_STATUS_GOOD; ++attempt) {
          status = lun->Write(7, block, 4096);
          if (status != SCSI_STATUS_GOOD) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        if (status != SCSI_STATUS_GOOD) {
          failed.fetch_add(1);
          return;
        }
      }
      written.store(n);
    }
  });
  std::vector<std::vector<uint64_t>> seen;
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    HttpResponse snap = Http("POST", array.Url(action), R"({"ReplicaType":"Snapshot"})", token);
    BOOST_REQUIRE_MESSAGE(snap.status == 201, snap.body);
    rapidjson::Document body = snap.Json();
    std::vector<uint64_t> counters;
    for (int i = 0; i < 3; ++i) {
      rapidjson::Document one;
      one.CopyFrom(body["Members"][i], one.GetAllocator());
      Lun lun(Exposed(array, token, FromJson(array, one)).url);
      const std::vector<unsigned char> block = lun.Read(7, 4096, 4096);
      uint64_t n = 0;
      std::memcpy(&n, block.data(), sizeof(n));
      counters.push_back(n);
    }
    seen.push_back(counters);
  }
  stop.store(true);
  writer.join();
  BOOST_TEST(failed.load() == 0);
  BOOST_TEST(written.load() > 0u);
  for (const std::vector<uint64_t>& c : seen) {
    BOOST_TEST_MESSAGE("snapshot counters " << c[0] << " " << c[1] << " " << c[2]);
    BOOST_TEST((c[0] >= c[1] && c[1] >= c[2] && c[2] + 1 >= c[0] && c[2] > 0u),
               c[0] << " " << c[1] << " " << c[2]);
  }
}

BOOST_AUTO_TEST_CASE(snapshot_contents_and_read_only_survive_kill_9) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  RestVolume snap;
  {
    MockArrayProcess array(dir.str());
    const std::string token = array.Login();
    const RestVolume v = Create(array, token, "v", 1 << 20, 512);
    {
      Lun lun(v.url);
      BOOST_REQUIRE(lun.Write(0, Pattern("kept ", 4096), 512) == SCSI_STATUS_GOOD);
    }
    snap = Snapshot(array, token, v);
    array.Kill9();
  }
  MockArrayProcess again(dir.str());
  const std::string token = again.Login();
  const RestVolume after = Reread(again, token, snap);
  BOOST_TEST(after.naa == snap.naa);
  CheckWire(after);
  Lun lun(after.url);
  BOOST_TEST(lun.Read(0, 4096, 512) == Pattern("kept ", 4096));
  BOOST_TEST(lun.Write(0, Pattern("x", 512), 512) == SCSI_SENSE_DATA_PROTECTION);
}

BOOST_AUTO_TEST_CASE(lun_reports_the_rest_identity_serial_and_capacity) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  MockArrayProcess array(dir.str());
  const std::string token = array.Login();
  CheckWire(Create(array, token, "small", 8 << 20, 512));
  CheckWire(Create(array, token, "big-blocks", 64 << 20, 4096));
}

BOOST_AUTO_TEST_CASE(a_deleted_volume_no_longer_answers_on_the_wire) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  MockArrayProcess array(dir.str());
  const std::string token = array.Login();
  const RestVolume v = Create(array, token, "gone", 1 << 20, 512);
  CheckWire(v);
  // Mapped, it cannot go; unmapped, it can.
  HttpResponse held = Http("DELETE", array.Url(v.path), "", token);
  BOOST_TEST(held.status == 409);
  BOOST_TEST(held.body.find("connection") != std::string::npos, held.body);
  BOOST_TEST(Http("DELETE", array.Url(v.connection), "", token).status == 204);
  BOOST_TEST(Http("DELETE", array.Url(v.path), "", token).status == 204);
  IscsiOptions quick;
  quick.timeout = std::chrono::milliseconds(3000);
  BOOST_TEST(!ResolveIscsiVolume(v.url, quick).ok());
}

BOOST_AUTO_TEST_CASE(volumes_and_their_wire_identity_survive_kill_9) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  RestVolume before_a, before_b;
  {
    MockArrayProcess array(dir.str());
    const std::string token = array.Login();
    before_a = Create(array, token, "a", 4 << 20, 512);
    before_b = Create(array, token, "b", 16 << 20, 4096);
    array.Kill9();
  }
  MockArrayProcess again(dir.str());
  const std::string token = again.Login();
  HttpResponse list = Http("GET", again.Url(kVolumes), "", token);
  BOOST_TEST(list.Json()["Members@odata.count"].GetInt() == 2);
  for (const RestVolume& before : {before_a, before_b}) {
    const RestVolume after = Reread(again, token, before);
    BOOST_TEST(after.naa == before.naa);
    BOOST_TEST(after.serial == before.serial);
    BOOST_TEST(after.capacity == before.capacity);
    CheckWire(after);  // on the new portal
  }
  // Ids are not reused after a restart either.
  const RestVolume c = Create(again, token, "c", 1 << 20, 512);
  BOOST_TEST(c.naa != before_a.naa);
  BOOST_TEST(c.naa != before_b.naa);
}

BOOST_AUTO_TEST_CASE(a_crash_mid_create_is_rolled_back_and_mid_delete_is_finished) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  RestVolume keep, going;
  {
    MockArrayProcess array(dir.str());
    const std::string token = array.Login();
    keep = Create(array, token, "keep", 1 << 20, 512);
    going = Create(array, token, "going", 1 << 20, 512, /*expose=*/false);
    array.Kill9();
  }
  // What a crash between the database write and tgtd leaves behind.
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open((dir.str() + "/state.db").c_str(), &db) == SQLITE_OK);
  const char* sql =
      "INSERT INTO volumes (name, capacity_bytes, block_size, state)"
      " VALUES ('half', 1048576, 512, 'creating');"
      "UPDATE volumes SET state='deleting' WHERE name='going';";
  BOOST_TEST(sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);

  MockArrayProcess again(dir.str());
  const std::string token = again.Login();
  HttpResponse list = Http("GET", again.Url(kVolumes), "", token);
  BOOST_TEST(list.Json()["Members@odata.count"].GetInt() == 1);
  BOOST_TEST(Http("GET", again.Url(going.path), "", token).status == 404);
  BOOST_TEST(!std::filesystem::exists(dir.str() + "/volumes/" +
                                      going.path.substr(going.path.rfind('/') + 1) + ".img"));
  CheckWire(Reread(again, token, keep));
  // Both names are free again.
  Create(again, token, "half", 1 << 20, 512);
  Create(again, token, "going", 1 << 20, 512);
}

BOOST_AUTO_TEST_CASE(two_arrays_run_side_by_side_with_distinct_identities) {
  if (!MockArrayAvailable()) return;
  TempDir dir_a, dir_b;
  MockArrayProcess a(dir_a.str(), {"--name", "left"});
  MockArrayProcess b(dir_b.str(), {"--name", "right"});
  BOOST_TEST(a.rest() != b.rest());
  BOOST_TEST(a.portal() != b.portal());
  const RestVolume va = Create(a, a.Login(), "same-name", 2 << 20, 512);
  const RestVolume vb = Create(b, b.Login(), "same-name", 2 << 20, 512);
  BOOST_TEST(va.naa != vb.naa);
  BOOST_TEST(va.serial != vb.serial);
  CheckWire(va);
  CheckWire(vb);
  // Stopping one leaves the other serving.
  const int status = a.Stop();
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), "status " << status);
  CheckWire(vb);
}

BOOST_AUTO_TEST_CASE(sigterm_exits_0_and_takes_the_portal_down) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  MockArrayProcess array(dir.str());
  const RestVolume v = Create(array, array.Login(), "v", 1 << 20, 512);
  const int status = array.Stop();
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), "status " << status);
  IscsiOptions quick;
  quick.timeout = std::chrono::milliseconds(2000);
  BOOST_TEST(!ResolveIscsiVolume(v.url, quick).ok());
}

}  // namespace
}  // namespace snapset::test
