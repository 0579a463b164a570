// Test support for snapset-mock-array: runs the real binary on free ports in
// a state directory, reads its ready line, and always stops and reaps it
// (and its tgtd, should the array die first), whatever the test did. Plus a
// small libcurl client for its REST API.
#ifndef SNAPSET_TESTS_MOCK_ARRAY_MOCK_ARRAY_PROCESS_HPP
#define SNAPSET_TESTS_MOCK_ARRAY_MOCK_ARRAY_PROCESS_HPP

#include <rapidjson/document.h>
#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace snapset::test {

struct HttpResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
  rapidjson::Document Json() const;
  // error.@Message.ExtendedInfo[0].RelatedProperties[0], or "".
  std::string RelatedProperty() const;
  std::string ErrorCode() const;  // error.code, or ""
  // Set (and status 0) when the exchange failed below HTTP and the options
  // asked not to throw: what libcurl said.
  std::string transport_error;
};

struct HttpOptions {
  std::vector<std::string> headers;  // extra "Name: value" lines
  std::string ca_file;               // trust this CA for https:// (else the system's)
  long timeout_ms = 20000;
  // false: a transport failure (refused, reset, timed out, bad TLS) comes
  // back in transport_error instead of throwing.
  bool throw_on_transport_error = true;
};

// method GET/POST/DELETE/PATCH; token "" sends no X-Auth-Token; a body is
// sent whenever it is not empty.
HttpResponse Http(const std::string& method, const std::string& url, const std::string& body = "",
                  const std::string& token = "", const HttpOptions& options = {});

// GETs a task monitor URL every 50 ms while it answers 202 (the task is not
// done) and returns the first other answer: the operation's own. Throws
// after timeout_ms.
HttpResponse PollTaskMonitor(const std::string& url, const std::string& token,
                             const HttpOptions& options = {}, long timeout_ms = 20000);

// The snapset-mock-array binary under test, to run it by hand.
std::string MockArrayBinary();

class MockArrayProcess {
 public:
  // Starts the binary with --listen/--iscsi-portal on port 0; throws (fails
  // the test) when it does not print its ready line within 15 s.
  MockArrayProcess(const std::string& state_dir, const std::vector<std::string>& extra = {});
  ~MockArrayProcess();  // Stop()
  MockArrayProcess(const MockArrayProcess&) = delete;
  MockArrayProcess& operator=(const MockArrayProcess&) = delete;

  // SIGTERM, then SIGKILL after 5 s; returns the wait status (-1 if gone).
  int Stop();
  // kill -9 with no clean-up by the array; its tgtd dies with it.
  void Kill9();

  // Logs in as admin/admin and returns the token.
  std::string Login() const;
  // The same with these options (such as the CA file of an https array).
  std::string Login(const HttpOptions& options) const;

  pid_t pid() const { return pid_; }
  const std::string& rest() const { return rest_; }          // http(s)://127.0.0.1:P
  const std::string& portal() const { return portal_; }      // 127.0.0.1:Q
  const std::string& name() const { return name_; }
  std::string Url(const std::string& path) const { return rest_ + path; }

 private:
  void Reap(int signal_number, int grace_ms);

  pid_t pid_ = -1;
  int exit_status_ = -1;
  std::string rest_, portal_, name_;
};

// Skips (outside CI) or fails (in CI) when the array cannot run here.
bool MockArrayAvailable();

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_MOCK_ARRAY_MOCK_ARRAY_PROCESS_HPP
