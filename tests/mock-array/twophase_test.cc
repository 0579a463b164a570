// SPDX-License-Identifier: Apache-2.0
// The mock array's second dialect (--dialect twophase) against the real
// binary: its own log-in and token header, LUNs, groups, the commit as a job
// polled by id, exports an initiator logs in to, and fences that really hold
// a LUN's writes over iSCSI -- reads go on, the write lands when the fence is
// lifted, by a DELETE, by the commit, or by its own timeout -- and a commit
// under a fence that timed out is refused.
#define BOOST_TEST_MODULE mock_array_twophase
#include <rapidjson/document.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "tests/mock-array/iscsi_lun.hpp"
#include "tests/mock-array/mock_array_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

using std::chrono::milliseconds;

// A twophase array, logged in with its own API.
struct TwoPhase {
  TwoPhase() : array(dir.str(), {"--dialect", "twophase"}) {
    HttpResponse r =
        Http("POST", array.Url("/api/v2/auth/login"), R"({"username":"admin","password":"admin"})");
    BOOST_TEST_REQUIRE(r.status == 200, r.body);
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    BOOST_TEST_REQUIRE(d.HasMember("access_token"));
    token = d["access_token"].GetString();
  }
  HttpResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = "") const {
    HttpOptions o;
    o.headers.push_back("X-TP-Session: " + token);
    return Http(method, array.Url(path), body, "", o);
  }
  std::string MakeLun(const std::string& label) const {
    HttpResponse r =
        Call("POST", "/api/v2/luns", R"({"label":")" + label + R"(","size_bytes":1048576})");
    BOOST_TEST_REQUIRE(r.status == 201, r.body);
    return Field(r.body, "id");
  }
  static std::string Field(const std::string& body, const char* key) {
    rapidjson::Document d;
    d.Parse(body.c_str());
    BOOST_TEST_REQUIRE((d.IsObject() && d.HasMember(key) && d[key].IsString()), body);
    return d[key].GetString();
  }
  // Exports `object` read-write to kTestInitiator; its iscsi:// URL.
  std::string Export(const std::string& object) const {
    HttpResponse r =
        Call("POST", "/api/v2/exports",
             R"({"label":"e-)" + object + R"(","initiator_iqn":")" + std::string(kTestInitiator) +
                 R"(","read_only":false,"objects":[")" + object + R"("]})");
    BOOST_TEST_REQUIRE(r.status == 201, r.body);
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    return "iscsi://" + std::string(d["portal"].GetString()) + "/" + d["target_iqn"].GetString() +
           "/" + std::to_string(d["luns"][0]["lun_id"].GetInt());
  }
  // The job's final answer (polled by id every 50 ms, at most 20 s).
  rapidjson::Document Job(const std::string& submitted) const {
    rapidjson::Document accepted;
    accepted.Parse(submitted.c_str());
    BOOST_TEST_REQUIRE(accepted.HasMember("job"), submitted);
    const std::string id = accepted["job"]["id"].GetString();
    for (int i = 0; i < 400; ++i) {
      HttpResponse r = Call("GET", "/api/v2/jobs/" + id);
      BOOST_TEST_REQUIRE(r.status == 200, r.body);
      rapidjson::Document d;
      d.Parse(r.body.c_str());
      if (std::string(d["state"].GetString()) != "running") return d;
      std::this_thread::sleep_for(milliseconds(50));
    }
    BOOST_FAIL("job " + id + " still running after 20 s");
    return {};
  }

  TempDir dir;
  MockArrayProcess array;
  std::string token;
};

}  // namespace

BOOST_AUTO_TEST_CASE(its_own_api_takes_a_group_snapshot_as_a_job) {
  if (!MockArrayAvailable()) return;
  TwoPhase t;
  // Its token header, not Redfish's.
  BOOST_TEST(Http("GET", t.array.Url("/api/v2/luns")).status == 401);
  BOOST_TEST(Http("GET", t.array.Url("/api/v2/luns"), "", t.token).status == 401);
  BOOST_TEST(
      Http("POST", t.array.Url("/api/v2/auth/login"), R"({"username":"admin","password":"nope"})")
          .status == 401);
  // No Swordfish storage API (the Redfish log-in stays: it is the mock's
  // door to /mock in every dialect).
  BOOST_TEST(
      Http("GET", t.array.Url("/redfish/v1/Storage/array/Volumes"), "", t.array.Login()).status ==
      404);

  const std::string a = t.MakeLun("a"), b = t.MakeLun("b");
  BOOST_TEST(t.Call("POST", "/api/v2/luns", R"({"label":"a","size_bytes":512})").status == 409);
  HttpResponse g = t.Call("POST", "/api/v2/consistency-groups",
                          R"({"label":"g","luns":[")" + a + R"(",")" + b + R"("]})");
  BOOST_TEST_REQUIRE(g.status == 201, g.body);
  const std::string group = TwoPhase::Field(g.body, "id");

  HttpResponse submitted = t.Call("POST", "/api/v2/consistency-groups/" + group + "/snapshots",
                                  R"({"labels":["snapset-a","snapset-b"]})");
  BOOST_TEST_REQUIRE(submitted.status == 202, submitted.body);
  rapidjson::Document done = t.Job(submitted.body);
  BOOST_TEST_REQUIRE(std::string(done["state"].GetString()) == "success");
  const auto& snaps = done["result"]["snapshots"];
  BOOST_TEST_REQUIRE(snaps.Size() == 2u);
  BOOST_TEST(std::string(snaps[0]["label"].GetString()) == "snapset-a");
  BOOST_TEST(std::string(snaps[0]["parent"].GetString()) == a);
  BOOST_TEST(std::string(snaps[1]["parent"].GetString()) == b);

  // The same labels again: the job fails, naming why, and makes nothing.
  rapidjson::Document again =
      t.Job(t.Call("POST", "/api/v2/consistency-groups/" + group + "/snapshots",
                   R"({"labels":["snapset-a","snapset-b"]})")
                .body);
  BOOST_TEST(std::string(again["state"].GetString()) == "failure");
  BOOST_TEST(std::string(again["failure"]["error"]["reason"].GetString()) == "LABEL_TAKEN");
  HttpResponse listed = t.Call("GET", "/api/v2/snapshots");
  rapidjson::Document l;
  l.Parse(listed.body.c_str());
  BOOST_TEST(l["records"].Size() == 2u);

  // Deleting: 204, then 404 (a driver's delete treats it as done).
  const std::string snap = snaps[0]["id"].GetString();
  BOOST_TEST(t.Call("DELETE", "/api/v2/snapshots/" + snap).status == 204);
  BOOST_TEST(t.Call("DELETE", "/api/v2/snapshots/" + snap).status == 404);
  BOOST_TEST(t.Call("DELETE", "/api/v2/consistency-groups/" + group).status == 204);
}

BOOST_AUTO_TEST_CASE(a_fence_holds_a_luns_writes_until_lifted) {
  if (!MockArrayAvailable()) return;
  TwoPhase t;
  const std::string a = t.MakeLun("a");
  const std::string url = t.Export(a);
  Lun lun(url);
  BOOST_TEST_REQUIRE(lun.Write(0, Pattern("before", 512), 512) == 0);

  HttpResponse f = t.Call("POST", "/api/v2/fences",
                          R"({"label":"snapset-f","luns":[")" + a + R"("],"timeout_ms":20000})");
  BOOST_TEST_REQUIRE(f.status == 201, f.body);
  const std::string fence = TwoPhase::Field(f.body, "id");
  BOOST_TEST(t.Call("POST", "/api/v2/fences",
                    R"({"label":"other","luns":[")" + a + R"("],"timeout_ms":1000})")
                 .status == 409);  // a LUN is fenced once

  // The write waits; a read of the same LUN does not.
  Lun writer(url);
  std::future<int> held =
      std::async(std::launch::async, [&] { return writer.Write(0, Pattern("fenced", 512), 512); });
  BOOST_TEST((held.wait_for(milliseconds(800)) == std::future_status::timeout));
  BOOST_TEST(Text(lun.Read(0, 512, 512), 6) == "before");

  BOOST_TEST(t.Call("DELETE", "/api/v2/fences/" + fence).status == 204);
  BOOST_TEST_REQUIRE((held.wait_for(std::chrono::seconds(10)) == std::future_status::ready));
  BOOST_TEST(held.get() == 0);
  BOOST_TEST(Text(lun.Read(0, 512, 512), 6) == "fenced");
}

BOOST_AUTO_TEST_CASE(a_fence_lifts_itself_and_a_commit_under_it_then_fails) {
  if (!MockArrayAvailable()) return;
  TwoPhase t;
  const std::string a = t.MakeLun("a");
  HttpResponse g =
      t.Call("POST", "/api/v2/consistency-groups", R"({"label":"g","luns":[")" + a + R"("]})");
  const std::string group = TwoPhase::Field(g.body, "id");
  const std::string url = t.Export(a);
  Lun lun(url);

  const auto start = std::chrono::steady_clock::now();
  HttpResponse f = t.Call("POST", "/api/v2/fences",
                          R"({"label":"short","luns":[")" + a + R"("],"timeout_ms":700})");
  BOOST_TEST_REQUIRE(f.status == 201, f.body);
  const std::string fence = TwoPhase::Field(f.body, "id");
  BOOST_TEST(lun.Write(0, Pattern("late", 512), 512) == 0);  // waited for the timeout
  const auto waited = std::chrono::steady_clock::now() - start;
  BOOST_TEST((waited >= milliseconds(500)), "the write was held");
  BOOST_TEST((waited < milliseconds(5000)), "the fence lifted itself");
  rapidjson::Document listed;
  listed.Parse(t.Call("GET", "/api/v2/fences").body.c_str());
  BOOST_TEST(listed["records"].Empty());

  rapidjson::Document done =
      t.Job(t.Call("POST", "/api/v2/consistency-groups/" + group + "/snapshots",
                   R"({"labels":["s"],"fence":")" + fence + R"("})")
                .body);
  BOOST_TEST(std::string(done["state"].GetString()) == "failure");
  BOOST_TEST(std::string(done["failure"]["error"]["reason"].GetString()) == "FENCE_EXPIRED");
  rapidjson::Document snaps;
  snaps.Parse(t.Call("GET", "/api/v2/snapshots").body.c_str());
  BOOST_TEST(snaps["records"].Empty());
}

BOOST_AUTO_TEST_CASE(a_commit_under_a_fence_lifts_it) {
  if (!MockArrayAvailable()) return;
  TwoPhase t;
  const std::string a = t.MakeLun("a");
  HttpResponse g =
      t.Call("POST", "/api/v2/consistency-groups", R"({"label":"g","luns":[")" + a + R"("]})");
  const std::string group = TwoPhase::Field(g.body, "id");
  const std::string url = t.Export(a);
  Lun lun(url);
  BOOST_TEST_REQUIRE(lun.Write(0, Pattern("cut", 512), 512) == 0);
  HttpResponse f = t.Call("POST", "/api/v2/fences",
                          R"({"label":"f","luns":[")" + a + R"("],"timeout_ms":20000})");
  const std::string fence = TwoPhase::Field(f.body, "id");
  Lun writer(url);
  std::future<int> held =
      std::async(std::launch::async, [&] { return writer.Write(0, Pattern("after", 512), 512); });
  BOOST_TEST((held.wait_for(milliseconds(500)) == std::future_status::timeout));
  rapidjson::Document done =
      t.Job(t.Call("POST", "/api/v2/consistency-groups/" + group + "/snapshots",
                   R"({"labels":["s"],"fence":")" + fence + R"("})")
                .body);
  BOOST_TEST_REQUIRE(std::string(done["state"].GetString()) == "success");
  BOOST_TEST_REQUIRE((held.wait_for(std::chrono::seconds(10)) == std::future_status::ready));
  BOOST_TEST(held.get() == 0);
  // The snapshot holds what was written before the fence, not the held write.
  const std::string snap = done["result"]["snapshots"][0]["id"].GetString();
  Lun snapshot(t.Export(snap));
  BOOST_TEST(Text(snapshot.Read(0, 512, 512), 3) == "cut");
  BOOST_TEST(Text(lun.Read(0, 512, 512), 5) == "after");
}

}  // namespace snapset::test
