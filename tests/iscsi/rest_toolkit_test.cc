// SPDX-License-Identifier: Apache-2.0
// The REST toolkit's parts a vendor's driver relies on beyond Redfish (the
// Redfish session itself is rest_session_test.cc, against a mock array):
// each log-in scheme sends what the array expects, a token read from a JSON
// member, secrets redacted, and PollJob's bounds. Against a real HTTP
// server on loopback (cpp-httplib) that checks every request.
#define BOOST_TEST_MODULE rest_toolkit
#include <httplib.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <snapset/rest.hpp>
#include <string>
#include <thread>

using snapset::ArrayCall;
using snapset::Code;
using snapset::Result;
using snapset::rest::RestEndpoint;
using snapset::rest::RestLogin;
using snapset::rest::RestResponse;
using snapset::rest::RestSession;

namespace {

constexpr char kUser[] = "vendor-admin";
constexpr char kPassword[] = "s3cret-Pa55";
constexpr char kToken[] = "tok-8c1f2a";

// An array with its own log-in: POST /api/login {"user","pass"} answers
// {"session":{"id":..},"access_token":TOKEN}; every other request needs
// "Authorization: Token TOKEN", or basic auth, or a static bearer token.
class VendorArray {
 public:
  VendorArray() {
    server_.Post("/api/login", [this](const httplib::Request& req, httplib::Response& res) {
      ++logins_;
      if (req.body != std::string(R"({"user":")") + kUser + R"(","pass":")" + kPassword + "\"}") {
        res.status = 401;
        return;
      }
      res.status = 200;
      res.set_content(std::string(R"({"access_token":")") + kToken + "\"}", "application/json");
    });
    // A log-in that answers JSON, but not an object.
    server_.Post("/api/login-list", [](const httplib::Request&, httplib::Response& res) {
      res.status = 200;
      res.set_content("[\"tok\"]", "application/json");
    });
    server_.Get("/api/volumes", [this](const httplib::Request& req, httplib::Response& res) {
      last_auth_ = req.get_header_value("Authorization");
      const bool ok = last_auth_ == std::string("Token ") + kToken ||
                      last_auth_ == "Basic dmVuZG9yLWFkbWluOnMzY3JldC1QYTU1" ||  // user:password
                      last_auth_ == std::string("Bearer ") + kPassword;
      res.status = ok ? 200 : 401;
      res.set_content("{}", "application/json");
    });
    server_.Get("/api/jobs/1", [this](const httplib::Request&, httplib::Response& res) {
      // Running twice, then done.
      if (++job_polls_ <= 2) {
        res.status = 202;
        res.set_header("Retry-After", "0");
        return;
      }
      res.status = 200;
      res.set_content(R"({"state":"done"})", "application/json");
    });
    server_.Get("/api/jobs/forever", [](const httplib::Request&, httplib::Response& res) {
      res.status = 200;
      res.set_header("Retry-After", "3600");  // bounded by JobPolling::max_wait
      res.set_content(R"({"state":"running"})", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~VendorArray() {
    server_.stop();
    thread_.join();
  }
  RestEndpoint Endpoint(RestLogin login) const {
    RestEndpoint e;
    e.base_url = "http://127.0.0.1:" + std::to_string(port_);
    e.user = kUser;
    e.password = kPassword;
    e.login = std::move(login);
    return e;
  }
  int logins() const { return logins_; }
  int job_polls() const { return job_polls_; }
  std::string last_auth() const { return last_auth_; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> logins_{0};
  std::atomic<int> job_polls_{0};
  std::string last_auth_;
};

RestLogin VendorLogin() {
  RestLogin login;
  login.path = "/api/login";
  login.user_field = "user";
  login.password_field = "pass";
  login.token_response_header = "";
  login.token_field = "access_token";
  login.token_header = "Authorization";
  login.token_prefix = "Token ";
  login.logout = false;
  login.probe_path = "/api/volumes";
  return login;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_token_read_from_a_json_member_is_sent_in_the_vendors_header) {
  VendorArray array;
  RestSession session(array.Endpoint(VendorLogin()));
  BOOST_TEST_REQUIRE(session.Warm().ok());
  for (int i = 0; i < 3; ++i) {
    Result<RestResponse> r = session.Call("GET", "/api/volumes");
    BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
    BOOST_TEST(r->status == 200);
  }
  BOOST_TEST(array.last_auth() == std::string("Token ") + kToken);
  BOOST_TEST(session.logins() == 1);
  BOOST_TEST(array.logins() == 1);
}

BOOST_AUTO_TEST_CASE(a_refused_login_names_the_user_and_never_the_password) {
  VendorArray array;
  RestEndpoint e = array.Endpoint(VendorLogin());
  e.password = "wrong-" + std::string(kPassword);
  RestSession session(e);
  Result<RestResponse> r = session.Call("GET", "/api/volumes");
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST((r.status().code() == Code::kConfig));
  BOOST_TEST(r.status().message().find(kUser) != std::string::npos, r.status().message());
  BOOST_TEST(r.status().message().find(kPassword) == std::string::npos, r.status().message());
}

BOOST_AUTO_TEST_CASE(a_login_answer_without_the_token_member_is_an_error_naming_it) {
  VendorArray array;
  RestLogin login = VendorLogin();
  login.path = "/api/login-list";
  RestSession session(array.Endpoint(login));
  Result<RestResponse> r = session.Call("GET", "/api/volumes");
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST((r.status().code() == Code::kUnavailable), r.status().ToString());
  BOOST_TEST(r.status().message().find("\"access_token\" member") != std::string::npos,
             r.status().message());
}

BOOST_AUTO_TEST_CASE(basic_and_bearer_send_no_login_request) {
  VendorArray array;
  RestLogin basic;
  basic.scheme = RestLogin::Scheme::kBasic;
  RestSession b(array.Endpoint(basic));
  Result<RestResponse> r = b.Call("GET", "/api/volumes");
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(r->status == 200, array.last_auth());

  RestLogin bearer;
  bearer.scheme = RestLogin::Scheme::kBearer;
  RestSession t(array.Endpoint(bearer));
  r = t.Call("GET", "/api/volumes");
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(r->status == 200, array.last_auth());
  BOOST_TEST(array.logins() == 0);
  BOOST_TEST(b.requests() == 1);
  BOOST_TEST(t.requests() == 1);
}

BOOST_AUTO_TEST_CASE(redact_removes_the_password_and_the_token) {
  VendorArray array;
  RestSession session(array.Endpoint(VendorLogin()));
  BOOST_TEST_REQUIRE(session.Warm().ok());
  const std::string said =
      std::string("array said: login ") + kPassword + " gave " + kToken + " and " + kToken;
  const std::string clean = session.Redact(said);
  BOOST_TEST(clean.find(kPassword) == std::string::npos, clean);
  BOOST_TEST(clean.find(kToken) == std::string::npos, clean);
  BOOST_TEST(clean == "array said: login <redacted> gave <redacted> and <redacted>");
}

BOOST_AUTO_TEST_CASE(poll_job_follows_a_job_to_its_end) {
  VendorArray array;
  RestSession session(array.Endpoint(VendorLogin()));
  ArrayCall call;
  call.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  Result<RestResponse> r = snapset::rest::PollJob(session, "POST /api/snap", "/api/jobs/1",
                                                  std::chrono::milliseconds(0), call);
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(r->status == 200);
  BOOST_TEST(array.job_polls() == 3);
}

BOOST_AUTO_TEST_CASE(poll_job_never_waits_past_the_deadline_and_names_the_job) {
  VendorArray array;
  RestSession session(array.Endpoint(VendorLogin()));
  // A job resource that answers 200 while running: `finished` reads it.
  auto finished = [](const RestResponse& r) {
    return r.body.find("\"done\"") != std::string::npos;
  };
  for (bool in_window : {false, true}) {
    ArrayCall call;
    call.in_window = in_window;
    call.retry = !in_window;
    const auto start = std::chrono::steady_clock::now();
    call.deadline = start + std::chrono::milliseconds(400);
    Result<RestResponse> r = snapset::rest::PollJob(session, "POST /api/snap", "/api/jobs/forever",
                                                    std::chrono::milliseconds(50), call, finished);
    const auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST_REQUIRE(!r.ok());
    BOOST_TEST((r.status().code() == (in_window ? Code::kHoldWritesTimeout : Code::kUnavailable)),
               r.status().ToString());
    BOOST_TEST(r.status().message().find("/api/jobs/forever") != std::string::npos);
    BOOST_TEST(r.status().message().find("POST /api/snap") != std::string::npos);
    BOOST_TEST(took < std::chrono::milliseconds(400 + 200));  // the deadline, with a margin
  }
}
