#include "providers/iscsi/array_config.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <initializer_list>
#include <set>
#include <utility>

namespace snapset::iscsi {
namespace {

using Json = rapidjson::Value;

constexpr size_t kMaxIscsiName = 223;  // RFC 3720 3.2.6.1

Status Bad(const std::string& field, const std::string& what) {
  return Status::InvalidArgument("iSCSI provider config: " + field + ": " + what);
}

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

std::string Member(const std::string& object, const std::string& key) {
  return object.empty() ? key : object + "." + key;
}

// Refuses a member `object` may not have, and one given twice (RapidJSON
// keeps both; the second would be silently ignored).
Status CheckKeys(const Json& object, const std::string& path,
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

const Json* Find(const Json& object, const char* key) {
  auto it = object.FindMember(key);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

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

bool IsDigits(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}
bool IsHex(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c); });
}

// A host name, an IPv4 address or a bracketed IPv6 address, and an
// optional :port (1..65535). Returns "" when it is fine, else what is wrong.
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

// RFC 3720 3.2.6: iqn.YYYY-MM.reversed.domain[:anything], eui.<16 hex> or
// naa.<16 or 32 hex>. Returns "" when fine, else what is wrong.
std::string CheckIscsiName(const std::string& s) {
  if (s.size() > kMaxIscsiName) return "is longer than 223 bytes (RFC 3720)";
  if (s.rfind("eui.", 0) == 0) {
    return s.size() == 20 && IsHex(s.substr(4)) ? "" : "eui. must be followed by 16 hex digits";
  }
  if (s.rfind("naa.", 0) == 0) {
    const std::string hex = s.substr(4);
    return (hex.size() == 16 || hex.size() == 32) && IsHex(hex)
               ? ""
               : "naa. must be followed by 16 or 32 hex digits";
  }
  const char* kShape =
      " (expected iqn.YYYY-MM.reversed.domain[:identifier], e.g. "
      "iqn.2026-11.com.example:host1, as /etc/iscsi/initiatorname.iscsi has it)";
  if (s.rfind("iqn.", 0) != 0) return std::string("must start with iqn., eui. or naa.") + kShape;
  for (unsigned char c : s) {
    if (std::isupper(c)) return "must be lower case (RFC 3720 normalises iSCSI names)";
    if (!std::isalnum(c) && c != '.' && c != '-' && c != ':') {
      return "may hold only lower-case letters, digits, '.', '-' and ':'";
    }
  }
  // iqn.YYYY-MM.
  if (s.size() < 12 || !IsDigits(s.substr(4, 4)) || s[8] != '-' || !IsDigits(s.substr(9, 2)) ||
      s[11] != '.') {
    return std::string("has no date after iqn.") + kShape;
  }
  const int month = std::stoi(s.substr(9, 2));
  if (month < 1 || month > 12) return std::string("has a month out of 01..12") + kShape;
  const size_t colon = s.find(':');
  const std::string authority = s.substr(12, colon == std::string::npos ? colon : colon - 12);
  if (authority.empty() || authority.front() == '.' || authority.back() == '.' ||
      authority.find("..") != std::string::npos) {
    return std::string("has no reversed domain name after the date") + kShape;
  }
  if (colon != std::string::npos && colon + 1 == s.size()) {
    return "ends with ':' but has no identifier after it";
  }
  return "";
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

Result<ArrayConfig> ParseArray(const Json& a, const std::string& at) {
  if (!a.IsObject()) return Bad(at, "must be an object");
  if (Status s = CheckKeys(a, at,
                           {"name", "dialect", "rest_url", "credentials_file", "ca_file",
                            "insecure", "portals", "chap_file", "timeouts_ms"});
      !s.ok()) {
    return s;
  }
  ArrayConfig out;

  Result<std::string> name = RequiredString(a, at, "name");
  if (!name.ok()) return name.status();
  if (name->size() > 64 || !std::isalnum(static_cast<unsigned char>((*name)[0])) ||
      !std::all_of(name->begin(), name->end(), [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == '_' || c == '-';
      })) {
    return Bad(Member(at, "name"),
               "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit");
  }
  out.name = *name;

  Result<std::string> dialect = RequiredString(a, at, "dialect");
  if (!dialect.ok()) return dialect.status();
  if (*dialect != "swordfish") {
    return Bad(Member(at, "dialect"),
               Quoted(*dialect) + " is not a dialect this provider speaks; the only one is " +
                   "\"swordfish\" (SNIA Swordfish / Redfish)");
  }
  out.dialect = *dialect;

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
  Result<Credentials> rest =
      ReadSecretFile(*credentials_file, Member(at, "credentials_file"), "UserName", "Password");
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

  const std::string portals_at = Member(at, "portals");
  const Json* portals = Find(a, "portals");
  if (portals == nullptr) {
    return Bad(portals_at, "missing: list the array's iSCSI portals, e.g. [\"192.0.2.10:3260\"]");
  }
  if (!portals->IsArray() || portals->Empty()) {
    return Bad(portals_at, "must be a non-empty list of \"host[:port]\" strings");
  }
  for (rapidjson::SizeType i = 0; i < portals->Size(); ++i) {
    const std::string p_at = portals_at + "[" + std::to_string(i) + "]";
    const Json& p = (*portals)[i];
    if (!p.IsString()) return Bad(p_at, "must be a \"host[:port]\" string");
    const std::string portal(p.GetString(), p.GetStringLength());
    if (std::string why = CheckHostPort(portal, &host, &port); !why.empty()) {
      return Bad(p_at, Quoted(portal) + " " + why);
    }
    out.portals.push_back(host + ":" + (port.empty() ? "3260" : port));
  }

  Result<std::string> chap_file = OptionalPath(a, at, "chap_file");
  if (!chap_file.ok()) return chap_file.status();
  if (!chap_file->empty()) {
    Result<Credentials> chap =
        ReadSecretFile(*chap_file, Member(at, "chap_file"), "CHAPUsername", "CHAPPassword");
    if (!chap.ok()) return chap.status();
    out.chap = std::move(*chap);
    out.chap_file = *chap_file;
  }

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
  return out;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

Result<Credentials> ReadSecretFile(const std::string& path, const std::string& field,
                                   const char* user_key, const char* password_key) {
  Result<Credentials> c = rest::ReadCredentialsFile(path, field, user_key, password_key);
  if (!c.ok()) return Status::InvalidArgument("iSCSI provider config: " + c.status().message());
  return c;
}

Result<ProviderConfig> ParseProviderConfig(std::string_view config_json) {
  rapidjson::Document doc;
  doc.Parse(config_json.data(), config_json.size());
  if (doc.HasParseError()) {
    return Bad("config", std::string("is not valid JSON: ") +
                             rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
                             std::to_string(doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) return Bad("config", "must be a JSON object");
  if (Status s = CheckKeys(doc, "", {"initiator_iqn", "arrays"}); !s.ok()) return s;

  ProviderConfig out;
  Result<std::string> iqn = RequiredString(doc, "", "initiator_iqn");
  if (!iqn.ok()) return iqn.status();
  if (std::string why = CheckIscsiName(*iqn); !why.empty()) {
    return Bad("initiator_iqn", Quoted(*iqn) + " " + why);
  }
  out.initiator_iqn = *iqn;

  const Json* arrays = Find(doc, "arrays");
  if (arrays == nullptr || !arrays->IsArray() || arrays->Empty()) {
    return Bad("arrays",
               "must be a non-empty list of arrays, each {\"name\", \"dialect\", "
               "\"rest_url\", \"credentials_file\", \"portals\", ...}");
  }
  for (rapidjson::SizeType i = 0; i < arrays->Size(); ++i) {
    const std::string at = "arrays[" + std::to_string(i) + "]";
    Result<ArrayConfig> array = ParseArray((*arrays)[i], at);
    if (!array.ok()) return array.status();
    for (const ArrayConfig& earlier : out.arrays) {
      if (earlier.name == array->name) {
        return Bad(Member(at, "name"), Quoted(array->name) +
                                           " is already the name of an earlier "
                                           "array; names must be unique");
      }
      if (Lower(earlier.endpoint.base_url) == Lower(array->endpoint.base_url)) {
        return Bad(Member(at, "rest_url"),
                   "is the same as array " + Quoted(earlier.name) +
                       "'s: one array configured twice would hold every volume twice");
      }
    }
    if (array->endpoint.insecure) {
      out.warnings.push_back(
          array->endpoint.base_url.rfind("http://", 0) == 0
              ? "array " + Quoted(array->name) +
                    ": \"insecure\": true and an http:// rest_url: the REST password and session "
                    "token travel UNENCRYPTED to an array nobody authenticated; use https:// "
                    "with ca_file outside tests"
              : "array " + Quoted(array->name) +
                    ": \"insecure\": true: TLS certificate verification is OFF, anyone on the "
                    "path can pose as the array and take its credentials; set ca_file instead");
    }
    out.arrays.push_back(std::move(*array));
  }
  return out;
}

std::unique_ptr<ArrayDialect> MakeDialect(const ArrayConfig& array) {
  // ParseProviderConfig accepts "swordfish" only; a new dialect adds a case.
  return MakeSwordfishDialect(array.endpoint);
}

}  // namespace snapset::iscsi
