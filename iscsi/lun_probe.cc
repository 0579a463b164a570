// SPDX-License-Identifier: Apache-2.0
// ProbeLun: a LUN's identity and capacity, read on the wire within a deadline.
#include <algorithm>
#include <snapset/iscsi_lun.hpp>
#include <utility>

#include "iscsi/lun_session.hpp"
#include "iscsi/portal.hpp"

namespace snapset::iscsi {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

Status CheckInitiator(const LunLogin& login) {
  if (login.initiator_iqn.empty()) return Status::InvalidArgument("iSCSI initiator name is empty");
  return Status::Ok();
}

// What "timed out after N ms" says: the time from the call to the deadline.
milliseconds BudgetUntil(Clock::time_point deadline) {
  return std::max(std::chrono::round<milliseconds>(deadline - Clock::now()), milliseconds::zero());
}

Result<LunIdentity> Probe(const LunUrl& url, const LunLogin& login, Clock::time_point deadline,
                          milliseconds budget) {
  SNAPSET_RETURN_IF_ERROR(CheckInitiator(login));
  detail::ContextPtr ctx(iscsi_create_context(login.initiator_iqn.c_str()));
  if (!ctx) return Status::Internal("cannot create a libiscsi context");
  Result<std::string> portal = detail::ResolvePortal(url, deadline);
  if (!portal.ok()) return portal.status();

  detail::LunSession session(std::move(ctx), url, login, deadline, budget);
  SNAPSET_RETURN_IF_ERROR(session.Login(*portal));
  LunIdentity identity;
  SNAPSET_RETURN_IF_ERROR(session.ReadIdentity(identity));
  SNAPSET_RETURN_IF_ERROR(session.ReadCapacity(identity));
  session.Logout();
  return identity;
}

}  // namespace

Result<LunIdentity> ProbeLun(const LunUrl& url, const LunLogin& login, Clock::time_point deadline) {
  return Probe(url, login, deadline, BudgetUntil(deadline));
}

Result<LunIdentity> ProbeLun(std::string_view url, const LunLogin& login,
                             Clock::time_point deadline) {
  const milliseconds budget = BudgetUntil(deadline);
  SNAPSET_RETURN_IF_ERROR(CheckInitiator(login));
  Result<LunUrl> parsed = ParseLunUrl(url, UrlCredentials::kRefused);
  if (!parsed.ok()) return parsed.status();
  return Probe(*parsed, login, deadline, budget);
}

}  // namespace snapset::iscsi
