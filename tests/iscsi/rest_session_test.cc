// The provider's REST session against a real mock array: one log-in for many
// calls, a new log-in when the token expires, refusals that name the call
// and never the secrets, deadlines that hold.
#define BOOST_TEST_MODULE iscsi_rest_session
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <snapset/rest.hpp>
#include <string>
#include <thread>

#include "tests/mock-array/mock_array_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

using rest::Clock;
using rest::RestEndpoint;
using rest::RestResponse;
using rest::RestSession;
using snapset::ArrayCall;

constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";

RestEndpoint Admin(const MockArrayProcess& array) {
  RestEndpoint e;
  e.base_url = array.rest();
  e.user = "admin";
  e.password = "admin";
  return e;
}

BOOST_AUTO_TEST_CASE(one_login_serves_many_calls) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  MockArrayProcess array(dir.str());
  RestSession session(Admin(array));
  BOOST_REQUIRE(session.Warm().ok());
  for (int i = 0; i < 5; ++i) {
    Result<RestResponse> r = session.Call(
        "POST", kVolumes, R"({"Name":"v)" + std::to_string(i) + R"(","CapacityBytes":1048576})");
    BOOST_REQUIRE(r.ok());
    BOOST_TEST(r->status == 201, r->body);
    BOOST_TEST(!r->Header("location").empty());
  }
  Result<RestResponse> list = session.Call("GET", kVolumes);
  BOOST_REQUIRE(list.ok());
  Result<rapidjson::Document> doc = rest::JsonObject("GET", kVolumes, *list);
  BOOST_REQUIRE(doc.ok());
  BOOST_TEST((*doc)["Members@odata.count"].GetInt() == 5);
  BOOST_TEST(session.logins() == 1);
  BOOST_TEST(session.requests() == 7);
}

BOOST_AUTO_TEST_CASE(an_expired_token_means_one_new_login_not_an_error) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  MockArrayProcess array(dir.str(), {"--token-ttl-s", "1"});
  RestSession session(Admin(array));
  BOOST_REQUIRE(session.Call("GET", kVolumes).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  Result<RestResponse> r = session.Call("GET", kVolumes);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->status == 200);
  BOOST_TEST(session.logins() == 2);
}

BOOST_AUTO_TEST_CASE(a_refused_login_is_a_config_error_without_the_password) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  MockArrayProcess array(dir.str());
  RestEndpoint e = Admin(array);
  e.password = "sw0rdf1sh-not-it";
  RestSession session(e);
  Result<RestResponse> r = session.Call("GET", kVolumes);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.status().code() == Code::kConfig), r.status().ToString());
  BOOST_TEST(r.status().message().find("admin") != std::string::npos, r.status().message());
  BOOST_TEST(r.status().message().find(e.password) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_refused_call_names_the_call_and_what_the_array_said) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  MockArrayProcess array(dir.str());
  RestSession session(Admin(array));
  const std::string body = R"({"Name":"dup","CapacityBytes":1048576})";
  BOOST_REQUIRE(session.Call("POST", kVolumes, body).ok());
  Result<RestResponse> again = session.Call("POST", kVolumes, body);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(again->status == 409);
  const Status s = rest::StatusFromResponse("POST", array.Url(kVolumes), *again);
  BOOST_TEST((s.code() == Code::kAlreadyExists), s.ToString());
  BOOST_TEST(s.message().find("POST " + array.Url(kVolumes)) != std::string::npos, s.message());
  BOOST_TEST(s.message().find("ResourceAlreadyExists") != std::string::npos, s.message());
  BOOST_TEST(s.message().find("dup") != std::string::npos, s.message());
  Result<RestResponse> missing = session.Call("GET", std::string(kVolumes) + "/999");
  BOOST_REQUIRE(missing.ok());
  BOOST_TEST((rest::StatusFromResponse("GET", "x", *missing).code() == Code::kNotFound));
}

BOOST_AUTO_TEST_CASE(an_unreachable_array_is_unavailable_within_the_deadline) {
  if (!MockArrayAvailable()) return;
  TempDir dir;
  std::string url;
  {
    MockArrayProcess array(dir.str());
    url = array.rest();
  }  // stopped: nothing listens there now
  RestEndpoint e;
  e.base_url = url;
  e.user = "admin";
  e.password = "admin";
  RestSession session(e);
  ArrayCall policy;
  policy.deadline = Clock::now() + std::chrono::seconds(2);
  const auto start = Clock::now();
  Result<RestResponse> r = session.Call("GET", kVolumes, "", policy);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.status().code() == Code::kUnavailable), r.status().ToString());
  BOOST_TEST(r.status().message().find(url) != std::string::npos, r.status().message());
  BOOST_TEST((Clock::now() - start < std::chrono::seconds(3)));
  // Past the deadline nothing is sent at all.
  policy.deadline = Clock::now() - std::chrono::milliseconds(1);
  const int sent = session.requests();
  Result<RestResponse> late = session.Call("GET", kVolumes, "", policy);
  BOOST_TEST(!late.ok());
  BOOST_TEST(session.requests() == sent);
}

BOOST_AUTO_TEST_CASE(a_body_that_is_not_json_is_an_error_naming_the_call) {
  RestResponse r;
  r.status = 200;
  r.body = "{\"Members\": [";
  Result<rapidjson::Document> doc = rest::JsonObject("GET", "https://a/redfish/v1/x", r);
  BOOST_REQUIRE(!doc.ok());
  BOOST_TEST(doc.status().message().find("GET https://a/redfish/v1/x") != std::string::npos);
  BOOST_TEST(doc.status().message().find("not JSON") != std::string::npos);
  r.body = "[1,2]";
  BOOST_TEST(!rest::JsonObject("GET", "u", r).ok());
}

}  // namespace
}  // namespace snapset::test
