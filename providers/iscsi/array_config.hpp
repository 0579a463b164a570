// The iSCSI provider's configuration: the registration's "config" object,
// parsed and checked in full before the provider talks to any array.
//
//   {"initiator_iqn": "iqn.2026-11.io.example:host1",
//    "arrays": [{"name": "a",
//                "driver": "swordfish",                      // or /abs/path/libdriver.so
//                "portals": ["192.0.2.10:3260"],             // port optional (3260)
//                "chap_file": "/etc/snapset/a.chap",         // optional: {"CHAPUsername",
//                                                            //  "CHAPPassword"}
//                // everything else is the driver's; for swordfish (and any
//                // driver on the REST toolkit) the endpoint keys:
//                "rest_url": "https://array-a.example:8443",
//                "credentials_file": "/etc/snapset/a.cred",  // {"UserName","Password"}
//                "ca_file": "/etc/snapset/a-ca.pem",         // optional: system CAs
//                "insecure": false,                          // optional
//                "timeouts_ms": {"connect": 5000, "request": 30000}}]}  // optional
//
// The provider owns name, driver, portals and chap_file; the driver gets
// the rest of the array's object at open (array.h) and refuses what it does
// not know. Rules, each refused with an InvalidArgument naming the field
// path (`arrays[1].rest_url`), what is wrong and what to do:
//   - unknown or repeated keys are errors, so a typo never passes silently;
//   - array names are unique, and so are REST URLs where a driver has one
//     (one array configured twice would hold every NAA twice);
//   - "driver" is a built-in driver's name ("swordfish", found beside the
//     provider in ../array-drivers/) or the absolute path of a driver
//     library, which must be owned by root or this user and writable by
//     nobody else; the library is loaded and its ABI negotiated here;
//   - each array's driver is opened once here, so that its own config is
//     checked in full; the warnings it logs (TLS verification off) land in
//     ProviderConfig::warnings for the provider to log loudly;
//   - the CHAP file is read here, and refused unless it is a regular file
//     owned by the running user with no access for group or others.
//
// Secrets (passwords, CHAP secrets, anything in a credentials file, a
// user:password@ in a URL) never appear in an error or a warning.
//
// Thread-safety: plain values; ParseProviderConfig is reentrant.
#ifndef SNAPSET_PROVIDERS_ISCSI_ARRAY_CONFIG_HPP
#define SNAPSET_PROVIDERS_ISCSI_ARRAY_CONFIG_HPP

#include <memory>
#include <optional>
#include <snapset/array.hpp>
#include <snapset/rest.hpp>
#include <snapset/status.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "providers/iscsi/driver_library.hpp"

namespace snapset::iscsi {

using rest::Credentials;

struct ArrayConfig {
  std::string name;
  std::string driver;  // as configured: "swordfish" or a library path
  std::shared_ptr<const DriverLibrary> library;
  // The array's object without the provider's keys, as JSON text: what the
  // driver's open gets.
  std::string driver_config;
  std::vector<std::string> portals;  // host:port, the port always present
  std::optional<Credentials> chap;   // none when chap_file is absent
  std::string chap_file;             // "" when absent
};

struct ProviderConfig {
  std::string initiator_iqn;
  std::vector<ArrayConfig> arrays;  // in the order configured
  // One line per thing the operator must know about (an array with TLS
  // verification off), each naming its array: the provider logs each one at
  // warning level when it starts. None names a secret.
  std::vector<std::string> warnings;
};

// The built-in drivers: name -> library file name, in `builtin_driver_dir`.
inline constexpr const char* kBuiltinDrivers[][2] = {
    {"swordfish", "libsnapset_array_swordfish.so"}};

// Parses and checks `config_json`, the registration's "config" object: reads
// the CHAP files, loads every driver library (built-in ones from
// `builtin_driver_dir`) and opens each array's driver once to check its
// config. Returns InvalidArgument for anything wrong (see the file comment).
Result<ProviderConfig> ParseProviderConfig(std::string_view config_json,
                                           const std::string& builtin_driver_dir);

// Reads {"CHAPUsername": ..., "CHAPPassword": ...} or another secret file
// (rest::ReadCredentialsFile), its errors prefixed as config errors.
Result<Credentials> ReadSecretFile(const std::string& path, const std::string& field,
                                   const char* user_key, const char* password_key);

// A new instance of the array's driver (not logged in yet). `log` gets the
// driver's log lines. Errors: the driver's, naming the array.
Result<std::unique_ptr<ArrayDriver>> OpenDriver(const ArrayConfig& array, const ArrayCall& call,
                                                DriverLog log);

}  // namespace snapset::iscsi

#endif  // SNAPSET_PROVIDERS_ISCSI_ARRAY_CONFIG_HPP
