#include "providers/mock-array/sessions.hpp"

#include <rapidjson/document.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace snapset::mock {
namespace {

std::string RandomToken() {
  unsigned char bytes[24];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  std::string out;
  for (unsigned char b : bytes) {
    char two[3];
    std::snprintf(two, sizeof(two), "%02x", b);
    out += two;
  }
  return out;
}

// Compares without an early exit, so timing does not tell how much matched.
bool SameSecret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

}  // namespace

Result<std::map<std::string, User>> Sessions::LoadUsers(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return Status::Config("users file " + path + " not found");
  if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    return Status::Config("users file " + path +
                          " must be owned by this user and not readable by others (chmod 600)");
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(text.str().c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("Users") ||
      !doc["Users"].IsArray()) {
    return Status::Config("users file " + path +
                          ": expected {\"Users\": [{\"UserName\": ..., \"Password\": ...}]}");
  }
  std::map<std::string, User> users;
  for (const auto& u : doc["Users"].GetArray()) {
    if (!u.IsObject() || !u.HasMember("UserName") || !u["UserName"].IsString() ||
        !u.HasMember("Password") || !u["Password"].IsString()) {
      return Status::Config("users file " + path + ": each user needs UserName and Password");
    }
    User user{u["Password"].GetString()};
    if (u.HasMember("RoleId")) {
      const std::string role = u["RoleId"].IsString() ? u["RoleId"].GetString() : "";
      if (role != kAdministrator && role != kOperator && role != kReadOnly) {
        return Status::Config("users file " + path + ": RoleId of " + u["UserName"].GetString() +
                              " must be Administrator, Operator or ReadOnly");
      }
      user.role = role;
    }
    users[u["UserName"].GetString()] = user;
  }
  if (users.empty()) return Status::Config("users file " + path + " has no users");
  return users;
}

std::optional<Session> Sessions::Login(const std::string& user, const std::string& password) {
  auto found = users_.find(user);
  const bool ok = found != users_.end() && SameSecret(found->second.password, password);
  if (!ok) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  Session s{std::to_string(next_id_++), RandomToken(), user, found->second.role,
            std::chrono::steady_clock::now()};
  by_token_[s.token] = s;
  return s;
}

std::optional<Session> Sessions::Authenticate(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  for (auto it = by_token_.begin(); it != by_token_.end();) {
    it = now - it->second.last_used > ttl_ ? by_token_.erase(it) : std::next(it);
  }
  auto found = by_token_.find(token);
  if (found == by_token_.end()) return std::nullopt;
  found->second.last_used = now;
  return found->second;
}

bool Sessions::Delete(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = by_token_.begin(); it != by_token_.end(); ++it) {
    if (it->second.id == id) {
      by_token_.erase(it);
      return true;
    }
  }
  return false;
}

std::vector<Session> Sessions::List() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  std::vector<Session> out;
  for (const auto& [token, session] : by_token_) {
    if (now - session.last_used > ttl_) continue;  // expired
    out.push_back(session);
    out.back().token.clear();
  }
  std::sort(out.begin(), out.end(), [](const Session& a, const Session& b) {
    return a.id.size() != b.id.size() ? a.id.size() < b.id.size() : a.id < b.id;
  });
  return out;
}

}  // namespace snapset::mock
