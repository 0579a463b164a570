// SPDX-License-Identifier: Apache-2.0
// Comparing what the providers hold with what the catalog says they should
// (`snapset list --verify`, `snapset orphans`): a pure function over two
// listings, so that every rule is tested without a provider.
//
// The rules, for each thing a provider holds:
//   a snapshot of a complete set                      -> fine
//   a snapshot planned by a set being created         -> fine (in progress)
//   a snapshot planned by an abort-incomplete set     -> reported, not an
//                                                        orphan: every start
//                                                        retries that abort
//   any other snapshot                                -> orphan
//   an object made for a snapshot of a complete set   -> fine (its exposure)
//   an object made for a set being created            -> fine
//   an object made for an abort-incomplete set        -> reported, not orphan
//   any other object (a set that ended or is unknown) -> orphan
// and, the other way round, a snapshot of a complete set that its provider
// does not list is reported (the provider lost it), as is one it lists as
// invalid (held, but no longer readable), and one whose provider is no
// longer registered.
//
// Races: the caller lists the providers between two reads of the catalog.
// A set begun after the first read, or completed between the reads, is in
// the second; one in the first that is still complete in the second is
// certainly complete while the providers were listed. So orphans are judged
// against the second read, and missing snapshots against sets complete in
// both.
#ifndef SNAPSET_CORE_HOLDINGS_AUDIT_HPP
#define SNAPSET_CORE_HOLDINGS_AUDIT_HPP

#include <map>
#include <snapset/provider_object.hpp>
#include <snapset/requestor.hpp>
#include <snapset/status.hpp>
#include <string>
#include <vector>

#include "core/catalog.hpp"

namespace snapset {

// What one registered provider listed.
struct ProviderHoldings {
  std::string provider_id;
  std::string provider_name;
  Status snapshots_listed;  // list_snapshots' answer
  std::vector<std::string> snapshot_ids;
  // Listed with SNAPSET_ATTR_INVALID: held, but no longer readable (id ->
  // the provider's reason).
  std::map<std::string, std::string> invalid;
  Status objects_listed;  // list_objects' answer; NotImplemented: none offered
  std::vector<ProviderObject> objects;
};

// Findings in a stable order: by provider as given, snapshots before
// objects; then snapshots whose provider is not registered.
std::vector<VerifyFinding> AuditHoldings(const std::vector<ProviderHoldings>& providers,
                                         const std::vector<SetRecord>& catalog_before,
                                         const std::vector<SetRecord>& catalog_after);

}  // namespace snapset

#endif  // SNAPSET_CORE_HOLDINGS_AUDIT_HPP
