// Redfish token sessions, in memory: log in with a user name and password,
// get a token; a token unused for longer than the time-to-live is gone.
//
// Thread-safe.
#ifndef SNAPSET_PROVIDERS_MOCK_ARRAY_SESSIONS_HPP
#define SNAPSET_PROVIDERS_MOCK_ARRAY_SESSIONS_HPP

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <snapset/status.hpp>
#include <string>
#include <vector>

namespace snapset::mock {

// Redfish's predefined roles: Administrator may do anything, the /mock
// routes included; Operator may change volumes, snapshots, groups and
// exposures; ReadOnly may only read (a 403 otherwise).
inline constexpr char kAdministrator[] = "Administrator";
inline constexpr char kOperator[] = "Operator";
inline constexpr char kReadOnly[] = "ReadOnly";

struct User {
  std::string password;
  std::string role = kAdministrator;
};

struct Session {
  std::string id;
  std::string token;
  std::string user;
  std::string role;
  std::chrono::steady_clock::time_point last_used;
};

class Sessions {
 public:
  // users: by user name.
  Sessions(std::map<std::string, User> users, std::chrono::seconds ttl)
      : users_(std::move(users)), ttl_(ttl) {}

  // The users file: {"Users": [{"UserName": "...", "Password": "...",
  // "RoleId": "Administrator" | "Operator" | "ReadOnly"}]}, RoleId
  // Administrator when left out. Refused unless owned by this user and not
  // readable by group or others.
  static Result<std::map<std::string, User>> LoadUsers(const std::string& path);

  std::optional<Session> Login(const std::string& user, const std::string& password);
  // The session a live token belongs to; using it restarts its time-to-live.
  std::optional<Session> Authenticate(const std::string& token);
  bool Delete(const std::string& id);
  // Every live session, in id order, with its token left out (empty): for
  // GET /mock/state.
  std::vector<Session> List();

 private:
  std::mutex mu_;
  const std::map<std::string, User> users_;
  const std::chrono::seconds ttl_;
  std::map<std::string, Session> by_token_;
  uint64_t next_id_ = 1;
};

}  // namespace snapset::mock

#endif  // SNAPSET_PROVIDERS_MOCK_ARRAY_SESSIONS_HPP
