// SPDX-License-Identifier: Apache-2.0
// snapset::ProviderObject: an object a provider made for snapset besides its
// snapshots -- a consistency group, a write fence, an exposure -- in C++
// form (the C form is snapset_provider_object in provider.h, ABI 1.2). A
// plain value type, shared by the provider SDK and the requestor side.
#ifndef SNAPSET_PROVIDER_OBJECT_HPP
#define SNAPSET_PROVIDER_OBJECT_HPP

#include <snapset/provider.h>

#include <string>

namespace snapset {

// Empty strings stand for NULL.
struct ProviderObject {
  std::string kind;         // "group", "fence", "exposure"
  std::string name;         // its name where it lives
  std::string location;     // "array a1", a daemon's socket
  std::string set_id;       // the set its name says it was made for
  std::string snapshot_id;  // the snapshot its name says it was made for
};

// The C form of `o`, pointing into `o` (valid while `o` lives and is not
// changed); empty ids become NULL.
inline snapset_provider_object ProviderObjectToAbi(const ProviderObject& o) {
  auto opt = [](const std::string& v) { return v.empty() ? nullptr : v.c_str(); };
  snapset_provider_object c{};
  c.struct_size = sizeof c;
  c.kind = o.kind.c_str();
  c.name = o.name.c_str();
  c.location = o.location.c_str();
  c.set_id = opt(o.set_id);
  c.snapshot_id = opt(o.snapshot_id);
  return c;
}

// A copy of the C form; NULL members become empty strings. REQUIRES: `c`
// holds every member (its struct_size covers snapshot_id).
inline ProviderObject ProviderObjectFromAbi(const snapset_provider_object& c) {
  auto str = [](const char* v) { return v ? std::string(v) : std::string(); };
  return {str(c.kind), str(c.name), str(c.location), str(c.set_id), str(c.snapshot_id)};
}

}  // namespace snapset

#endif  // SNAPSET_PROVIDER_OBJECT_HPP
