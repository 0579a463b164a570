// A REST session with one array's Redfish / Swordfish control plane, over
// libcurl: log in once (POST SessionService/Sessions, X-Auth-Token), keep
// the connection (TCP and TLS) warm for the commit window, log in again on
// a 401, and retry 429 / 503 with backoff honouring Retry-After, but only
// where the caller allows it (never inside the commit window) and never past
// the caller's deadline.
//
// Secrets: the password travels only in the log-in body and the token only
// in the X-Auth-Token header; neither is ever put in a Status message.
//
// Not thread-safe: one session is used by one thread at a time (libcurl
// easy handles are not shared); the provider keeps one per array.
#ifndef SNAPSET_PROVIDERS_ISCSI_REST_SESSION_HPP
#define SNAPSET_PROVIDERS_ISCSI_REST_SESSION_HPP

#include <rapidjson/document.h>

#include <chrono>
#include <map>
#include <snapset/status.hpp>
#include <string>

typedef void CURL;

namespace snapset::iscsi {

using Clock = std::chrono::steady_clock;

struct RestEndpoint {
  std::string base_url;  // https://host:port, no trailing slash
  std::string user;
  std::string password;
  std::string ca_file;    // PEM CA bundle that signs the array's certificate; "" = system CAs
  bool insecure = false;  // no TLS verification; the caller logs it loudly
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
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

// How one call may spend its time.
struct CallPolicy {
  // No request is sent, and none is waited for, past this instant.
  Clock::time_point deadline = Clock::time_point::max();
  // Resend after 429 / 503 (waiting Retry-After, else an exponential
  // backoff) and after a transport failure of a GET. false inside the
  // commit window: one attempt, whatever it gives.
  bool retry = true;
  int max_attempts = 5;
};

class RestSession {
 public:
  explicit RestSession(RestEndpoint endpoint);
  ~RestSession();  // logs out, best effort, within 2 s
  RestSession(const RestSession&) = delete;
  RestSession& operator=(const RestSession&) = delete;

  // Logs in unless already logged in, and leaves the connection open, so
  // that the next Call pays neither a log-in nor a TCP or TLS handshake.
  Status Warm(const CallPolicy& policy = {});

  // Sends METHOD base_url+path with `body` (JSON; "" for none) and returns
  // the response whatever its HTTP status, after the log-in and retries
  // described above. Errors: Unavailable for a transport failure or a
  // timeout (the message names the method and URL), Config when the log-in
  // is refused.
  Result<RestResponse> Call(const std::string& method, const std::string& path,
                            const std::string& body = "", const CallPolicy& policy = {});

  // Deletes the session on the array; the next Call logs in again.
  void Logout(const CallPolicy& policy = {});

  // How many times this session has logged in (tests and benchmarks count
  // REST work with it).
  int logins() const { return logins_; }
  // How many HTTP requests this session has sent, log-ins included.
  int requests() const { return requests_; }
  const std::string& base_url() const { return endpoint_.base_url; }

 private:
  Result<RestResponse> Send(const std::string& method, const std::string& path,
                            const std::string& body, Clock::time_point deadline);
  Status Login(const CallPolicy& policy);

  RestEndpoint endpoint_;
  CURL* curl_ = nullptr;
  std::string token_;
  std::string session_path_;  // Location of our session, for the log-out
  int logins_ = 0;
  int requests_ = 0;
};

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

}  // namespace snapset::iscsi

#endif  // SNAPSET_PROVIDERS_ISCSI_REST_SESSION_HPP
