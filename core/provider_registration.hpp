// Provider registrations: one JSON file per provider in <config-dir>/providers.d/.
//
//   {
//     "id": "0f6c3c2e-1d1a-4f4b-9a53-4c1b7f0e2a11",   // UUID, unique
//     "name": "acme-array",                          // [A-Za-z0-9._-]+, unique
//     "type": "hardware",                            // hardware|software|system
//     "library": "/usr/lib/snapset/libacme.so",      // absolute, or relative
//                                                    // to the JSON file
//     "priority": 10,                                // optional, default 0
//     "config": { ... }                              // optional, to on_load
//   }
//
// Unknown fields are refused: a misspelt "priorty" must not silently change
// which provider snapshots a volume.
#ifndef SNAPSET_CORE_PROVIDER_REGISTRATION_HPP
#define SNAPSET_CORE_PROVIDER_REGISTRATION_HPP

#include <snapset/status.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace snapset {

enum class ProviderType { kHardware = 0, kSoftware = 1, kSystem = 2 };

const char* ProviderTypeName(ProviderType type);

struct ProviderRegistration {
  std::string file;     // the JSON file it was read from
  std::string id;       // UUID, lower case
  std::string name;
  ProviderType type = ProviderType::kSystem;
  std::string library;  // absolute path
  int priority = 0;     // integrator priority: higher is asked first
  std::string config_json = "{}";
};

// Parses one registration. `path` is used for messages and to resolve a
// relative library path. Errors (Config) name the file, and the line and
// column for malformed JSON.
Result<ProviderRegistration> ParseRegistration(const std::string& path, std::string_view text);

// Reads every *.json in <config_dir>/providers.d, sorted by file name. A
// missing providers.d means no providers. Checks each file and the directory
// for safe ownership and permissions, and ids and names for duplicates.
// All problems are reported together, one per line.
Result<std::vector<ProviderRegistration>> ReadRegistrations(const std::string& config_dir);

// True for 8-4-4-4-12 hex digits.
bool IsUuid(std::string_view s);

}  // namespace snapset

#endif  // SNAPSET_CORE_PROVIDER_REGISTRATION_HPP
