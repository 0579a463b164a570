#define BOOST_TEST_MODULE mock_array_iscsi
#include <boost/test/unit_test.hpp>

#include <sqlite3.h>
#include <sys/wait.h>

#include <filesystem>

#include <memory>
#include <string>

#include "core/iscsi_identity.hpp"
#include "tests/mock-array/mock_array_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";

struct RestVolume {
  std::string path, naa, serial, url;
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
  out.url = "iscsi://" + array.portal() + "/" + v["Oem"]["Snapset"]["IscsiTarget"].GetString() +
            "/" + std::to_string(v["Oem"]["Snapset"]["IscsiLun"].GetInt());
  return out;
}

RestVolume Create(const MockArrayProcess& array, const std::string& token,
                  const std::string& name, uint64_t bytes, uint32_t block_size) {
  HttpResponse r = Http("POST", array.Url(kVolumes),
                        R"({"Name":")" + name + R"(","CapacityBytes":)" + std::to_string(bytes) +
                            R"(,"BlockSizeBytes":)" + std::to_string(block_size) + "}",
                        token);
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  return FromJson(array, r.Json());
}

// What the LUN says on the wire must be what REST says.
void CheckWire(const RestVolume& v) {
  Result<Volume> wire = ResolveIscsiVolume(v.url);
  BOOST_REQUIRE_MESSAGE(wire.ok(), v.url << ": " << wire.status().ToString());
  BOOST_TEST(wire->identity.Naa() == v.naa, v.url);
  BOOST_TEST(wire->identity.serial == v.serial, v.url);
  BOOST_TEST(wire->size_bytes == v.capacity, v.url);
  BOOST_TEST(wire->block_size == v.block_size, v.url);
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
    HttpResponse got = Http("GET", again.Url(before.path), "", token);
    BOOST_REQUIRE_EQUAL(got.status, 200);
    const RestVolume after = FromJson(again, got.Json());
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
    going = Create(array, token, "going", 1 << 20, 512);
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
  BOOST_TEST(!std::filesystem::exists(dir.str() + "/volumes/" + going.path.substr(going.path.rfind('/') + 1) + ".img"));
  CheckWire(FromJson(again, Http("GET", again.Url(keep.path), "", token).Json()));
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
