// SPDX-License-Identifier: Apache-2.0
// The REST toolkit's config keys (rest.hpp ParseEndpoint) and the checks
// they share with the iSCSI provider's own config.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <snapset/rest.hpp>

namespace snapset::rest {
namespace {

using Json = rapidjson::Value;

Status Bad(const std::string& field, const std::string& what) {
  return Status::InvalidArgument(field + ": " + what);
}

std::string Member(const std::string& object, const std::string& key) {
  return object.empty() ? key : object + "." + key;
}

const Json* Find(const Json& object, const char* key) {
  auto it = object.FindMember(key);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

bool IsDigits(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

Result<std::chrono::milliseconds> Timeout(const Json& timeouts, const std::string& path,
                                          const char* key, std::chrono::milliseconds fallback,
                                          std::chrono::milliseconds max) {
  const Json* v = Find(timeouts, key);
  if (v == nullptr) return fallback;
  const std::string range = "from 1 to " + std::to_string(max.count());
  if (!v->IsInt64())
    return Bad(Member(path, key), "must be a whole number of milliseconds " + range);
  const int64_t ms = v->GetInt64();
  if (ms < 1 || ms > max.count()) {
    return Bad(Member(path, key), "must be " + range + " milliseconds; got " + std::to_string(ms));
  }
  return std::chrono::milliseconds(ms);
}

}  // namespace

Result<std::string> RequiredString(const Json& object, const std::string& path, const char* key) {
  const Json* v = Find(object, key);
  if (v == nullptr) return Bad(Member(path, key), "missing");
  if (!v->IsString()) return Bad(Member(path, key), "must be a string");
  std::string s(v->GetString(), v->GetStringLength());
  if (s.empty()) return Bad(Member(path, key), "must not be empty");
  return s;
}

// An absolute path, when present ("" when absent).
Result<std::string> OptionalPath(const Json& object, const std::string& path, const char* key) {
  if (Find(object, key) == nullptr) return std::string();
  Result<std::string> s = RequiredString(object, path, key);
  if (!s.ok()) return s.status();
  if ((*s)[0] != '/') return Bad(Member(path, key), "must be an absolute path");
  return s;
}

Status CheckKeys(const rapidjson::Value& object, const std::string& path,
                 std::initializer_list<const char*> allowed) {
  std::set<std::string> seen;
  for (const auto& m : object.GetObject()) {
    const std::string key(m.name.GetString(), m.name.GetStringLength());
    const bool known =
        std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; });
    if (!known) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return Bad(Member(path, key), "unknown key (a typo?); " +
                                        (path.empty() ? std::string("the config") : path) +
                                        " takes only " + list);
    }
    if (!seen.insert(key).second) {
      return Bad(Member(path, key), "given twice; keep one");
    }
  }
  return Status::Ok();
}

std::string CheckHostPort(const std::string& s, std::string* host, std::string* port) {
  size_t host_end;
  if (!s.empty() && s[0] == '[') {
    host_end = s.find(']');
    if (host_end == std::string::npos) return "has a '[' without its ']'";
    *host = s.substr(0, host_end + 1);
    if (host->size() < 3) return "has an empty IPv6 address";
    ++host_end;
  } else {
    if (std::count(s.begin(), s.end(), ':') > 1) {
      return "has more than one ':' (write an IPv6 address as [address]:port)";
    }
    host_end = s.find(':');
    if (host_end == std::string::npos) host_end = s.size();
    *host = s.substr(0, host_end);
    if (host->empty()) return "has no host";
    for (unsigned char c : *host) {
      if (!std::isalnum(c) && c != '.' && c != '-') {
        return "has a host with a character other than letters, digits, '.' and '-'"
               " (write an IPv6 address as [address]:port)";
      }
    }
  }
  port->clear();
  if (host_end == s.size()) return "";
  if (s[host_end] != ':') return "has something after the host that is not :port";
  *port = s.substr(host_end + 1);
  if (!IsDigits(*port) || port->size() > 5 || std::stoi(*port) < 1 || std::stoi(*port) > 65535) {
    return "has a port that is not a number from 1 to 65535";
  }
  return "";
}

Result<EndpointConfig> ParseEndpoint(const rapidjson::Value& a, const std::string& at) {
  EndpointConfig out;
  const Json* insecure = Find(a, "insecure");
  if (insecure != nullptr && !insecure->IsBool()) {
    return Bad(Member(at, "insecure"), "must be true or false");
  }
  out.endpoint.insecure = insecure != nullptr && insecure->GetBool();

  // The URL is never echoed: it might carry a user:password@ or a token.
  const std::string url_at = Member(at, "rest_url");
  Result<std::string> url = RequiredString(a, at, "rest_url");
  if (!url.ok()) return url.status();
  const bool https = url->rfind("https://", 0) == 0;
  const bool http = url->rfind("http://", 0) == 0;
  if (!https && !http) return Bad(url_at, "must start with https://");
  if (url->find('@') != std::string::npos) {
    return Bad(url_at, "must not carry credentials (user:password@); put them in credentials_file");
  }
  if (url->find_first_of("?#") != std::string::npos) {
    return Bad(url_at, "must be https://host[:port] with no query or fragment");
  }
  const std::string scheme = https ? "https://" : "http://";
  std::string authority = url->substr(scheme.size());
  const size_t slash = authority.find('/');
  if (slash != std::string::npos) {
    if (slash + 1 != authority.size()) {
      return Bad(url_at,
                 "must be the array's base URL, https://host[:port], with no path "
                 "(the dialect adds /redfish/v1/...)");
    }
    authority.resize(slash);
  }
  std::string host, port;
  if (std::string why = CheckHostPort(authority, &host, &port); !why.empty()) {
    return Bad(url_at, why);
  }
  if (http && !out.endpoint.insecure) {
    return Bad(url_at,
               "is http://: the REST password and token would travel unencrypted to an array "
               "nobody authenticated. Use https:// (with ca_file for a private CA), or set "
               "\"insecure\": true to accept the risk (for tests only)");
  }
  out.endpoint.base_url = scheme + authority;

  Result<std::string> credentials_file = OptionalPath(a, at, "credentials_file");
  if (!credentials_file.ok()) return credentials_file.status();
  if (credentials_file->empty()) {
    return Bad(Member(at, "credentials_file"),
               "missing: name a file holding {\"UserName\": ..., \"Password\": ...} (chmod 600)");
  }
  Result<Credentials> rest = ReadCredentialsFile(*credentials_file, Member(at, "credentials_file"));
  if (!rest.ok()) return rest.status();
  out.credentials_file = *credentials_file;
  out.endpoint.user = rest->user;
  out.endpoint.password = rest->password;

  Result<std::string> ca_file = OptionalPath(a, at, "ca_file");
  if (!ca_file.ok()) return ca_file.status();
  if (!ca_file->empty()) {
    if (http) {
      return Bad(Member(at, "ca_file"),
                 "is set but rest_url is http://, which uses no TLS: use https:// or remove "
                 "ca_file");
    }
    if (::access(ca_file->c_str(), R_OK) != 0) {
      return Bad(Member(at, "ca_file"), *ca_file +
                                            " cannot be read; give the PEM file of the "
                                            "CA that signed the array's certificate");
    }
  }
  out.endpoint.ca_file = *ca_file;

  if (const Json* timeouts = Find(a, "timeouts_ms")) {
    const std::string t_at = Member(at, "timeouts_ms");
    if (!timeouts->IsObject())
      return Bad(t_at, "must be an object {\"connect\": ..., \"request\": ...}");
    if (Status s = CheckKeys(*timeouts, t_at, {"connect", "request"}); !s.ok()) return s;
    Result<std::chrono::milliseconds> connect =
        Timeout(*timeouts, t_at, "connect", out.endpoint.connect_timeout, kMaxConnectTimeout);
    if (!connect.ok()) return connect.status();
    Result<std::chrono::milliseconds> request =
        Timeout(*timeouts, t_at, "request", out.endpoint.request_timeout, kMaxRequestTimeout);
    if (!request.ok()) return request.status();
    out.endpoint.connect_timeout = *connect;
    out.endpoint.request_timeout = *request;
  }
  if (out.endpoint.insecure) {
    out.warnings.push_back(
        out.endpoint.base_url.rfind("http://", 0) == 0
            ? "\"insecure\": true and an http:// rest_url: the REST password and session "
              "token travel UNENCRYPTED to an array nobody authenticated; use https:// "
              "with ca_file outside tests"
            : "\"insecure\": true: TLS certificate verification is OFF, anyone on the "
              "path can pose as the array and take its credentials; set ca_file instead");
  }
  return out;
}

}  // namespace snapset::rest
