// Redfish token sessions, in memory: log in with a user name and password,
// get a token; a token unused for longer than the time-to-live is gone.
//
// Thread-safe.
#ifndef SNAPSET_PROVIDERS_MOCK_ARRAY_SESSIONS_HPP
#define SNAPSET_PROVIDERS_MOCK_ARRAY_SESSIONS_HPP

#include <snapset/status.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace snapset::mock {

struct Session {
  std::string id;
  std::string token;
  std::string user;
  std::chrono::steady_clock::time_point last_used;
};

class Sessions {
 public:
  // users: user name -> password.
  Sessions(std::map<std::string, std::string> users, std::chrono::seconds ttl)
      : users_(std::move(users)), ttl_(ttl) {}

  // The users file: {"Users": [{"UserName": "...", "Password": "..."}]}.
  // Refused unless owned by this user and not readable by group or others.
  static Result<std::map<std::string, std::string>> LoadUsers(const std::string& path);

  std::optional<Session> Login(const std::string& user, const std::string& password);
  // The session a live token belongs to; using it restarts its time-to-live.
  std::optional<Session> Authenticate(const std::string& token);
  bool Delete(const std::string& id);

 private:
  std::mutex mu_;
  const std::map<std::string, std::string> users_;
  const std::chrono::seconds ttl_;
  std::map<std::string, Session> by_token_;
  uint64_t next_id_ = 1;
};

}  // namespace snapset::mock

#endif  // SNAPSET_PROVIDERS_MOCK_ARRAY_SESSIONS_HPP
