#include "providers/iscsi/array_config.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
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

const Json* Find(const Json& object, const char* key) {
  auto it = object.FindMember(key);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

// The REST toolkit's checks, their refusals worded as this config's.
Status AsConfig(const Status& s) {
  if (s.ok()) return s;
  return Status::InvalidArgument("iSCSI provider config: " + s.message());
}
template <typename T>
Result<T> AsConfig(Result<T> r) {
  if (r.ok()) return r;
  return AsConfig(r.status());
}
Result<std::string> RequiredString(const Json& object, const std::string& path, const char* key) {
  return AsConfig(rest::RequiredString(object, path, key));
}
// An absolute path, when present ("" when absent).
Result<std::string> OptionalPath(const Json& object, const std::string& path, const char* key) {
  return AsConfig(rest::OptionalPath(object, path, key));
}

bool IsDigits(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}
bool IsHex(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c); });
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

Status CheckKeys(const Json& object, const std::string& path,
                 std::initializer_list<const char*> allowed) {
  return AsConfig(rest::CheckKeys(object, path, allowed));
}

// The library file of the array's "driver": a built-in's, or the absolute
// path given.
Result<std::string> DriverPath(const std::string& driver, const std::string& at,
                               const std::string& builtin_driver_dir) {
  if (driver.find('/') != std::string::npos) {
    if (driver[0] != '/')
      return Bad(at, "must be a built-in driver's name or an absolute library path; " +
                         Quoted(driver) + " is relative");
    return driver;
  }
  std::string names;
  for (const auto& builtin : kBuiltinDrivers) {
    if (driver == builtin[0]) return builtin_driver_dir + "/" + builtin[1];
    names += (names.empty() ? "" : ", ") + Quoted(builtin[0]);
  }
  return Bad(at, Quoted(driver) + " is not a built-in driver (they are " + names +
                     "); for a vendor's driver give the absolute path of its library");
}

// The array's object without the provider's own keys, as JSON text.
std::string DriverConfig(const Json& a) {
  rapidjson::Document out(rapidjson::kObjectType);
  for (const auto& m : a.GetObject()) {
    const std::string key(m.name.GetString(), m.name.GetStringLength());
    if (key == "name" || key == "driver" || key == "portals" || key == "chap_file") continue;
    rapidjson::Value name(m.name, out.GetAllocator());
    rapidjson::Value value(m.value, out.GetAllocator());
    out.AddMember(name, value, out.GetAllocator());
  }
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  out.Accept(w);
  return buffer.GetString();
}

Result<ArrayConfig> ParseArray(const Json& a, const std::string& at,
                               const std::string& builtin_driver_dir) {
  if (!a.IsObject()) return Bad(at, "must be an object");
  ArrayConfig out;
  if (Find(a, "dialect") != nullptr) {
    return Bad(Member(at, "dialect"),
               "is now \"driver\": write \"driver\": \"swordfish\" (or the absolute path of a "
               "vendor's driver library)");
  }
  // A key given twice is refused for the driver's keys too (RapidJSON keeps
  // both, and the second would be silently ignored); which keys the driver
  // knows is for its open to say.
  std::set<std::string> seen;
  for (const auto& m : a.GetObject()) {
    const std::string key(m.name.GetString(), m.name.GetStringLength());
    if (!seen.insert(key).second) return Bad(Member(at, key), "given twice; keep one");
  }

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

  Result<std::string> driver = RequiredString(a, at, "driver");
  if (!driver.ok()) return driver.status();
  Result<std::string> path = DriverPath(*driver, Member(at, "driver"), builtin_driver_dir);
  if (!path.ok()) return path.status();
  Result<std::shared_ptr<const DriverLibrary>> library = DriverLibrary::Load(*path);
  if (!library.ok()) return Bad(Member(at, "driver"), library.status().message());
  out.driver = *driver;
  out.library = std::move(*library);
  out.driver_config = DriverConfig(a);

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
    std::string host, port;
    if (std::string why = rest::CheckHostPort(portal, &host, &port); !why.empty()) {
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
  return out;
}

// A driver config's "rest_url", lower case and without a trailing slash, or
// "" (for the check that no array is configured twice).
std::string RestUrlOf(const std::string& driver_config) {
  rapidjson::Document d;
  d.Parse(driver_config.c_str());
  if (!d.IsObject() || !d.HasMember("rest_url") || !d["rest_url"].IsString()) return "";
  std::string url = d["rest_url"].GetString();
  while (!url.empty() && url.back() == '/') url.pop_back();
  std::transform(url.begin(), url.end(), url.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return url;
}

}  // namespace

Result<Credentials> ReadSecretFile(const std::string& path, const std::string& field,
                                   const char* user_key, const char* password_key) {
  return AsConfig(rest::ReadCredentialsFile(path, field, user_key, password_key));
}

Result<ProviderConfig> ParseProviderConfig(std::string_view config_json,
                                           const std::string& builtin_driver_dir) {
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
               "must be a non-empty list of arrays, each {\"name\", \"driver\", "
               "\"portals\", ...} and its driver's keys");
  }
  for (rapidjson::SizeType i = 0; i < arrays->Size(); ++i) {
    const std::string at = "arrays[" + std::to_string(i) + "]";
    Result<ArrayConfig> array = ParseArray((*arrays)[i], at, builtin_driver_dir);
    if (!array.ok()) return array.status();
    for (const ArrayConfig& earlier : out.arrays) {
      if (earlier.name == array->name) {
        return Bad(Member(at, "name"), Quoted(array->name) +
                                           " is already the name of an earlier "
                                           "array; names must be unique");
      }
      const std::string url = RestUrlOf(array->driver_config);
      if (!url.empty() && url == RestUrlOf(earlier.driver_config)) {
        return Bad(Member(at, "rest_url"),
                   "is the same as array " + Quoted(earlier.name) +
                       "'s: one array configured twice would hold every volume twice");
      }
    }
    // The driver checks its own keys at open; it need not talk to the array.
    std::vector<std::string> warnings;
    Result<std::unique_ptr<ArrayDriver>> driver =
        OpenDriver(*array, ArrayCall{}, [&](int32_t level, std::string_view line) {
          if (level <= SNAPSET_LOG_WARNING) warnings.push_back(std::string(line));
        });
    if (!driver.ok()) {
      if (driver.status().IsInvalidArgument()) {
        std::string m = driver.status().message();
        // The driver knows only its own keys; say which are the provider's.
        if (m.find("unknown key") != std::string::npos)
          m += "; besides, an array takes the provider's keys name, driver, portals and chap_file";
        return Status::InvalidArgument("iSCSI provider config: " + at + "." + m);
      }
      return driver.status().WithContext("iSCSI provider config: " + at + " (driver " +
                                         Quoted(array->driver) + ")");
    }
    for (const std::string& w : warnings)
      out.warnings.push_back("array " + Quoted(array->name) + ": " + w);
    out.arrays.push_back(std::move(*array));
  }
  return out;
}

Result<std::unique_ptr<ArrayDriver>> OpenDriver(const ArrayConfig& array, const ArrayCall& call,
                                                DriverLog log) {
  return array.library->Open(array.driver_config, call, std::move(log));
}

}  // namespace snapset::iscsi
