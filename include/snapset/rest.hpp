// SPDX-License-Identifier: Apache-2.0
// snapset's REST toolkit for array drivers (CMake component `rest`, target
// snapset::rest: a static, position-independent library over libcurl and
// RapidJSON, linked into a driver's own .so).
//
// What it does for a driver, so that only the array's own API is left to
// write:
//   - a session with pluggable log-in (RestLogin): a session token from a
//     log-in request (its header name, the request, and where the answer
//     holds the token), HTTP basic, or a static bearer token; a 401 logs in
//     again, once;
//   - the connection (TCP and TLS) kept warm for the commit window (Warm);
//   - TLS verification always on unless the endpoint says insecure, with a
//     CA file for a private CA;
//   - the password and token redacted from every message the toolkit makes;
//   - retries after 429 / 503 (honouring Retry-After) and after a transport
//     failure of a GET, only when the call allows it (ArrayCall::retry) and
//     never past its deadline;
//   - PollJob: an asynchronous job (202 + Location, or a job resource) polled
//     within the deadline;
//   - ReadCredentialsFile: {"UserName": ..., "Password": ...} from a chmod-600
//     file, never quoting any of it back;
//   - StatusFromResponse / JsonObject: an HTTP answer as snapset's codes.
//
// Thread-safety: a RestSession is used by one thread at a time (libcurl easy
// handles are not shared); a driver instance keeps one (array.h: the host
// never calls an instance from two threads at once).
#ifndef SNAPSET_REST_HPP
#define SNAPSET_REST_HPP

#include <rapidjson/document.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <map>
#include <snapset/array.hpp>
#include <snapset/status.hpp>
#include <string>
#include <vector>

typedef void CURL;

namespace snapset::rest {

using Clock = std::chrono::steady_clock;

// How the session authenticates.
struct RestLogin {
  enum class Scheme {
    kSession,  // POST a log-in request, keep the token it gives
    kBasic,    // HTTP basic auth on every request, no log-in request
    kBearer,   // "Authorization: Bearer <password>" on every request
  };
  Scheme scheme = Scheme::kSession;
  // kSession: POST `path` with {user_field: user, password_field: password}.
  std::string path = "/redfish/v1/SessionService/Sessions";
  std::string user_field = "UserName";
  std::string password_field = "Password";
  // The token is in this response header; when it is "", in the top-level
  // string member `token_field` of the JSON answer.
  std::string token_response_header = "X-Auth-Token";
  std::string token_field;
  // Every later request carries `token_header: token_prefix + token`.
  std::string token_header = "X-Auth-Token";
  std::string token_prefix;
  // Log out with a DELETE of the log-in answer's Location.
  bool logout = true;
  // A cheap authenticated GET that Warm sends once logged in.
  std::string probe_path = "/redfish/v1";

  // Redfish / Swordfish SessionService (the defaults above).
  static RestLogin Redfish() { return RestLogin(); }
};

struct RestEndpoint {
  std::string base_url;  // https://host:port, no trailing slash
  std::string user;
  std::string password;   // secret
  std::string ca_file;    // PEM CA bundle that signs the array's certificate; "" = system CAs
  bool insecure = false;  // no TLS verification; the caller logs it loudly
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
  RestLogin login;
};

struct RestResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
  // The header's value, or "".
  std::string Header(const std::string& name) const;
  // Retry-After in seconds, or `fallback` when it is absent or not a
  // number of seconds (an HTTP date is not honoured).
  std::chrono::milliseconds RetryAfter(std::chrono::milliseconds fallback) const;
};

class RestSession {
 public:
  // Attempts per call when the call allows retries.
  static constexpr int kMaxAttempts = 5;

  explicit RestSession(RestEndpoint endpoint);
  ~RestSession();  // logs out, best effort, within 2 s
  RestSession(const RestSession&) = delete;
  RestSession& operator=(const RestSession&) = delete;

  // Logs in unless already logged in, and leaves the connection open, so
  // that the next Call pays neither a log-in nor a TCP or TLS handshake.
  Status Warm(const ArrayCall& call = {});

  // Sends METHOD base_url+path with `body` (JSON; "" for none) and returns
  // the response whatever its HTTP status, after the log-in and retries
  // described above. Errors: Unavailable for a transport failure or a
  // timeout (the message names the method and URL), Config when the log-in
  // is refused.
  Result<RestResponse> Call(const std::string& method, const std::string& path,
                            const std::string& body = "", const ArrayCall& call = {});

  // Deletes the session on the array; the next Call logs in again.
  void Logout(const ArrayCall& call = {});

  // `text` with the password and the current token replaced by
  // "<redacted>": for messages a driver builds from what the array said.
  std::string Redact(std::string text) const;

  int logins() const { return logins_; }
  // HTTP requests sent, log-ins and polls included.
  int requests() const { return requests_; }
  const std::string& base_url() const { return endpoint_.base_url; }

 private:
  Result<RestResponse> Send(const std::string& method, const std::string& path,
                            const std::string& body, Clock::time_point deadline);
  Status Login(const ArrayCall& call);
  bool logged_in() const {
    return endpoint_.login.scheme != RestLogin::Scheme::kSession || !token_.empty();
  }
  Status Redacted(Status s) const;

  RestEndpoint endpoint_;
  CURL* curl_ = nullptr;
  std::string token_;
  std::string session_path_;  // Location of our session, for the log-out
  int logins_ = 0;
  int requests_ = 0;
};

// How PollJob spaces its polls.
struct JobPolling {
  // Between polls: the job's Retry-After, else this.
  std::chrono::milliseconds default_wait{1000};
  // A Retry-After larger than this counts as this, so a wrong header cannot
  // park a call for an hour.
  std::chrono::milliseconds max_wait{30000};
  // When the deadline is nearer than the wait: poll this often...
  std::chrono::milliseconds near_deadline_poll{100};
  // ...the last poll sent no later than this before the deadline, so that
  // a job ending just in time is seen and none is waited for past it.
  std::chrono::milliseconds margin{20};
};

// Polls GET `path` (a 202's Location, or a job resource) until `finished`
// says the answer is the job's end, and returns that answer. `first_wait`
// is the Retry-After the 202 gave. Errors: Unavailable (or, inside the
// window, HoldWritesTimeout) naming `what` when the job still ran at the
// deadline -- the caller should remember it for settle() -- or the poll's
// own error. The default `finished` is "anything but 202".
Result<RestResponse> PollJob(RestSession& session, const std::string& what, const std::string& path,
                             std::chrono::milliseconds first_wait, const ArrayCall& call,
                             const std::function<bool(const RestResponse&)>& finished = {},
                             const JobPolling& polling = {});

// A user name and its secret, from a credentials file.
struct Credentials {
  std::string user;
  std::string password;  // secret: never print it
};

// Reads {user_key: ..., password_key: ...} from `path`, which must be a
// regular file owned by the running user with no access for group or
// others (chmod 600). `field` names the config field that gave the path,
// for messages; no part of the file is ever quoted back. Errors:
// InvalidArgument saying what is wrong and what to do.
Result<Credentials> ReadCredentialsFile(const std::string& path, const std::string& field,
                                        const char* user_key = "UserName",
                                        const char* password_key = "Password");

// ---- configuration: the keys every REST driver's array config shares ----
//
//   "rest_url": "https://array.example:8443",       // no path, no user:password@
//   "credentials_file": "/etc/snapset/a.cred",     // {"UserName","Password"}, chmod 600
//   "ca_file": "/etc/snapset/a-ca.pem",            // optional: system CAs
//   "insecure": false,                             // optional; http:// needs true
//   "timeouts_ms": {"connect": 5000, "request": 30000}  // optional
//
// TLS verification is always on: an http:// URL is refused unless
// "insecure" is true, and an insecure endpoint gets a warning to log.

// The keys ParseEndpoint reads, for a driver's CheckKeys list.
#define SNAPSET_REST_ENDPOINT_KEYS \
  "rest_url", "credentials_file", "ca_file", "insecure", "timeouts_ms"

inline constexpr std::chrono::milliseconds kMaxConnectTimeout{60000};
inline constexpr std::chrono::milliseconds kMaxRequestTimeout{600000};

struct EndpointConfig {
  RestEndpoint endpoint;  // login is Redfish's; a driver sets its own after
  std::string credentials_file;
  // One line per thing the operator must know (TLS verification off). None
  // names a secret.
  std::vector<std::string> warnings;
};

// Reads the keys above from `object` (a JSON object). Keys it does not
// know are left to the caller (see CheckKeys). Messages start with the
// field's path below `path` ("rest_url: ..." for an empty `path`), say what
// is wrong and what to do, and never quote a URL (it may hold a secret) or
// any part of a credentials file. Errors: InvalidArgument.
Result<EndpointConfig> ParseEndpoint(const rapidjson::Value& object, const std::string& path = "");

// Refuses a member of `object` that is not in `allowed` (a typo never passes
// silently) and one given twice. Errors: InvalidArgument naming the field.
Status CheckKeys(const rapidjson::Value& object, const std::string& path,
                 std::initializer_list<const char*> allowed);

// object[key] as a non-empty string. Errors: InvalidArgument naming the
// field below `path` ("missing", "must be a string", "must not be empty").
Result<std::string> RequiredString(const rapidjson::Value& object, const std::string& path,
                                   const char* key);
// object[key] as an absolute path, or "" when absent. Errors: as
// RequiredString, and "must be an absolute path".
Result<std::string> OptionalPath(const rapidjson::Value& object, const std::string& path,
                                 const char* key);

// host[:port] with a host name, an IPv4 address or a bracketed IPv6
// address, and a port from 1 to 65535. Returns "" when it is fine (with
// *host and *port, "" when absent, set), else what is wrong.
std::string CheckHostPort(const std::string& text, std::string* host, std::string* port);

// The Status a non-2xx response stands for, naming the call and what the
// array said (error.code and error.message of a Redfish error body):
// 400 InvalidArgument, 401/403 Config, 404 NotFound, 409 AlreadyExists for
// ResourceAlreadyExists else BadState, 507 InsufficientStorage, 429 and
// any other status Unavailable.
Status StatusFromResponse(const std::string& method, const std::string& url,
                          const RestResponse& response);

// The body as a JSON object, or an error naming the call and what is wrong.
Result<rapidjson::Document> JsonObject(const std::string& method, const std::string& url,
                                       const RestResponse& response);

}  // namespace snapset::rest

#endif  // SNAPSET_REST_HPP
