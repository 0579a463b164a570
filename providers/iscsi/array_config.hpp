// The iSCSI provider's configuration: the registration's "config" object,
// parsed and checked in full before the provider talks to any array.
//
//   {"initiator_iqn": "iqn.2026-11.io.example:host1",
//    "arrays": [{"name": "a", "dialect": "swordfish",
//                "rest_url": "https://array-a.example:8443",
//                "credentials_file": "/etc/snapset/a.cred",  // {"UserName","Password"}
//                "ca_file": "/etc/snapset/a-ca.pem",         // optional: system CAs
//                "insecure": false,                          // optional
//                "portals": ["192.0.2.10:3260"],             // port optional (3260)
//                "chap_file": "/etc/snapset/a.chap",         // optional: {"CHAPUsername",
//                                                            //  "CHAPPassword"}
//                "timeouts_ms": {"connect": 5000, "request": 30000}}]}  // optional
//
// Rules, each refused with an InvalidArgument naming the field path
// (`arrays[1].rest_url`), what is wrong and what to do:
//   - unknown or repeated keys are errors, so a typo never passes silently;
//   - array names are unique, and so are REST URLs (one array configured
//     twice would hold every NAA twice);
//   - the dialect is "swordfish", the only one so far;
//   - TLS verification is always on. An http:// URL is refused unless the
//     array says "insecure": true; insecure is accepted, but the parsed
//     config carries a warning the provider must log loudly;
//   - the credentials and CHAP files are read here, and refused unless they
//     are regular files owned by the running user with no access for group
//     or others (chmod 600);
//   - timeouts are positive and bounded (connect <= 60 s, request <= 10 min).
//
// Secrets (passwords, CHAP secrets, anything in a credentials file, a
// user:password@ in a URL) never appear in an error or a warning.
//
// Thread-safety: plain values; ParseProviderConfig is reentrant.
#ifndef SNAPSET_PROVIDERS_ISCSI_ARRAY_CONFIG_HPP
#define SNAPSET_PROVIDERS_ISCSI_ARRAY_CONFIG_HPP

#include <chrono>
#include <memory>
#include <optional>
#include <snapset/status.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "providers/iscsi/array_dialect.hpp"
#include <snapset/rest.hpp>

namespace snapset::iscsi {

struct ArrayConfig {
  std::string name;
  std::string dialect;  // "swordfish"
  // base_url (no trailing slash), user and password from credentials_file,
  // ca_file, insecure and the timeouts: ready for the dialect.
  RestEndpoint endpoint;
  std::string credentials_file;      // where the REST credentials came from
  std::vector<std::string> portals;  // host:port, the port always present
  std::optional<Credentials> chap;   // none when chap_file is absent
  std::string chap_file;             // "" when absent
};

struct ProviderConfig {
  std::string initiator_iqn;
  std::vector<ArrayConfig> arrays;  // in the order configured
  // One line per thing the operator must know about (an array with TLS
  // verification off): the provider logs each one at warning level when it
  // starts. None names a secret.
  std::vector<std::string> warnings;
};

// Parses and checks `config_json`, the registration's "config" object, and
// reads the credentials and CHAP files it names.
// Returns InvalidArgument for anything wrong (see the file comment).
Result<ProviderConfig> ParseProviderConfig(std::string_view config_json);

// Reads {"UserName": ..., "Password": ...} (REST) or {"CHAPUsername": ...,
// "CHAPPassword": ...} (CHAP) from a file that must be a regular file owned
// by the running user, with no access for group or others. `field` names
// the config field that gave the path, for messages.
Result<Credentials> ReadSecretFile(const std::string& path, const std::string& field,
                                   const char* user_key, const char* password_key);

// The dialect object for one configured array (a new REST session each
// call: not logged in yet).
std::unique_ptr<ArrayDialect> MakeDialect(const ArrayConfig& array);

// Bounds of timeouts_ms.
inline constexpr std::chrono::milliseconds kMaxConnectTimeout{60000};
inline constexpr std::chrono::milliseconds kMaxRequestTimeout{600000};

}  // namespace snapset::iscsi

#endif  // SNAPSET_PROVIDERS_ISCSI_ARRAY_CONFIG_HPP
