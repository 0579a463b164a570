// SPDX-License-Identifier: Apache-2.0
// The numeric portal libiscsi connects to, found within a deadline (private
// to the iSCSI LUN toolkit).
#ifndef SNAPSET_ISCSI_PORTAL_HPP
#define SNAPSET_ISCSI_PORTAL_HPP

#include <chrono>
#include <snapset/iscsi_lun.hpp>
#include <string>

namespace snapset::iscsi::detail {

// "address:port" for url.host: an IP literal as it is, a name resolved to its
// first address (as libiscsi would; an IPv6 one in brackets). libiscsi would
// resolve a name itself with getaddrinfo(), which has no timeout of its own
// (the resolver's, often seconds per server and try, applies), so a name is
// resolved here on a helper thread. If the deadline passes first the thread
// is left to finish alone; it owns what it touches.
// Errors: Unavailable, naming url.canonical and the host, when the name does
// not resolve or the deadline passes first.
Result<std::string> ResolvePortal(const LunUrl& url,
                                  std::chrono::steady_clock::time_point deadline);

}  // namespace snapset::iscsi::detail

#endif  // SNAPSET_ISCSI_PORTAL_HPP
