// SPDX-License-Identifier: Apache-2.0
// snapset::ProviderObject: an object a provider made for snapset besides its
// snapshots -- a consistency group, a write fence, an exposure -- in C++
// form (the C form is snapset_provider_object in provider.h, ABI 1.2). A
// plain value type, shared by the provider SDK and the requestor side.
#ifndef SNAPSET_PROVIDER_OBJECT_HPP
#define SNAPSET_PROVIDER_OBJECT_HPP

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

}  // namespace snapset

#endif  // SNAPSET_PROVIDER_OBJECT_HPP
