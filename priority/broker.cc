#include "priority/broker.hpp"

#include <algorithm>

#include "core/bounded_calls.hpp"
#include "core/provider_instance.hpp"

namespace snapset {

const std::string& InstanceCandidate::name() const { return p_->name(); }
ProviderType InstanceCandidate::type() const { return p_->type(); }
int InstanceCandidate::priority() const { return p_->priority(); }
Status InstanceCandidate::IsVolumeSupported(const Volume& v, uint32_t context, std::string* why) {
  if (p_->unhealthy())
    return Status::Unavailable("unhealthy for the rest of this process: " + p_->unhealthy_reason());
  BoundedCalls call;
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  // The reason travels in a shared string: an abandoned call may outlive us.
  auto reason = std::make_shared<std::string>();
  call.Start([p = p_, v, context, deadline, reason] {
    CallOptions o;
    o.deadline = deadline;
    return p->IsVolumeSupported(v, context, o, reason.get());
  });
  Status s = call.Wait(deadline, Status::Unavailable("did not answer is_volume_supported within " +
                                                     std::to_string(timeout_.count()) + " ms"))[0];
  if (call.abandoned()[0]) {
    p_->MarkUnhealthy("hung in is_volume_supported");
    return s;
  }
  if (s.ok() && why) *why = *reason;
  return s;
}

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kChosen: return "chosen";
    case Verdict::kNotSupported: return "not supported";
    case Verdict::kExcluded: return "excluded by policy";
    case Verdict::kLowerPriority: return "lower priority";
    case Verdict::kFailed: return "failed";
  }
  return "failed";
}

Broker::Broker(std::vector<BrokerCandidate*> candidates) : ordered_(std::move(candidates)) {
  std::stable_sort(ordered_.begin(), ordered_.end(), [](BrokerCandidate* a, BrokerCandidate* b) {
    if (a->type() != b->type()) return a->type() < b->type();  // hardware first
    if (a->priority() != b->priority()) return a->priority() > b->priority();
    return a->name() < b->name();
  });
}

namespace {

std::string Describe(const BrokerCandidate& c) {
  return c.name() + " (" + ProviderTypeName(c.type()) + ")";
}

const std::string* PinOf(const BrokerPolicy& policy, const Volume& v) {
  auto it = policy.pins.find(v.name);
  return it == policy.pins.end() ? nullptr : &it->second;
}

std::string KnownNames(const std::vector<BrokerCandidate*>& all) {
  std::string names;
  for (auto* c : all) names += (names.empty() ? "" : ", ") + c->name();
  return names.empty() ? "none registered" : names;
}

// Asks `c` and records its answer in `row`; true when it supports the
// volume (the caller words the reason for a choice).
bool Ask(BrokerCandidate* c, const Volume& v, uint32_t context, CandidateVerdict* row) {
  std::string why;
  Status s = c->IsVolumeSupported(v, context, &why);
  if (s.ok()) {
    row->verdict = Verdict::kChosen;
    row->reason = why;
    return true;
  }
  row->verdict = s.IsVolumeNotSupported() ? Verdict::kNotSupported : Verdict::kFailed;
  row->reason = s.IsVolumeNotSupported() ? s.message() : "could not answer: " + s.ToString();
  return false;
}

}  // namespace

Status Broker::CheckPolicy(const std::vector<Volume>& volumes, const BrokerPolicy& policy) const {
  auto known = [&](const std::string& name) {
    return std::any_of(ordered_.begin(), ordered_.end(),
                       [&](BrokerCandidate* c) { return c->name() == name; });
  };
  for (const auto& name : policy.excluded) {
    if (!known(name))
      return Status::InvalidArgument("cannot exclude unknown provider \"" + name +
                                     "\" (known: " + KnownNames(ordered_) + ")");
  }
  std::set<std::string> seen;
  for (const auto& v : volumes) {
    if (!seen.insert(v.name).second)
      return Status::InvalidArgument("volume " + v.name + " is named twice in the set");
  }
  for (const auto& [volume, provider] : policy.pins) {
    if (!known(provider))
      return Status::InvalidArgument("cannot pin unknown provider \"" + provider + "\" to " +
                                     volume + " (known: " + KnownNames(ordered_) + ")");
    if (policy.excluded.count(provider))
      return Status::InvalidArgument("provider \"" + provider + "\" is both pinned to " + volume +
                                     " and excluded");
    if (!seen.count(volume))
      return Status::InvalidArgument("a provider is pinned to " + volume +
                                     ", which is not one of the volumes asked for");
  }
  return Status::Ok();
}

Result<Plan> Broker::Build(const std::vector<Volume>& volumes, const BrokerPolicy& policy,
                           uint32_t context, bool ask_all) const {
  SNAPSET_RETURN_IF_ERROR(CheckPolicy(volumes, policy));
  Plan plan;
  for (const auto& v : volumes) {
    VolumeExplanation ex;
    ex.volume = v;
    const std::string* pin = PinOf(policy, v);
    for (BrokerCandidate* c : ordered_) {
      CandidateVerdict row{c->name(), c->type(), c->priority(), Verdict::kNotSupported, ""};
      if (policy.excluded.count(c->name())) {
        row.verdict = Verdict::kExcluded;
        row.reason = "excluded by policy (--exclude " + c->name() + "); not asked";
      } else if (pin && *pin != c->name()) {
        row.verdict = Verdict::kExcluded;
        row.reason = "excluded by policy: the volume is pinned to " + *pin + "; not asked";
      } else if (ex.chosen && !ask_all) {
        row.verdict = Verdict::kLowerPriority;
        row.reason = "lower priority than " + Describe(*ex.chosen) + "; not asked";
      } else if (ex.chosen) {
        CandidateVerdict answer;
        bool would = Ask(c, v, context, &answer);
        row.verdict = Verdict::kLowerPriority;
        const std::string why = answer.reason.empty() ? "" : " (" + answer.reason + ")";
        row.reason = "lower priority than " + Describe(*ex.chosen) +
                     (would ? "; would support it" + why
                            : "; would not support it: " + answer.reason);
      } else if (Ask(c, v, context, &row)) {
        const std::string own = row.reason;  // the provider's own words, if any
        row.reason = pin ? "pinned by policy and supports the volume"
                         : "first provider that supports the volume (order: hardware, "
                           "software, system; then priority; then name)";
        if (!own.empty()) row.reason += ": " + own;
        ex.chosen = c;
      }
      ex.candidates.push_back(std::move(row));
    }
    plan.explanations.push_back(std::move(ex));
  }
  Regroup(&plan);
  return plan;
}

void Broker::Regroup(Plan* plan) {
  plan->groups.clear();
  for (size_t i = 0; i < plan->explanations.size(); ++i) {
    BrokerCandidate* c = plan->explanations[i].chosen;
    if (!c) continue;
    auto it = std::find_if(plan->groups.begin(), plan->groups.end(),
                           [&](const Plan::Group& g) { return g.provider == c; });
    if (it == plan->groups.end()) {
      plan->groups.push_back({c, {i}});
    } else {
      it->volumes.push_back(i);
    }
  }
}

Result<Plan> Broker::Explain(const std::vector<Volume>& volumes, const BrokerPolicy& policy,
                             uint32_t context) const {
  return Build(volumes, policy, context, /*ask_all=*/true);
}

Result<Plan> Broker::MakePlan(const std::vector<Volume>& volumes, const BrokerPolicy& policy,
                              uint32_t context) const {
  auto plan = Build(volumes, policy, context, /*ask_all=*/false);
  if (!plan.ok()) return plan;
  std::string unsupported;
  for (const auto& ex : plan->explanations) {
    if (ex.chosen) continue;
    unsupported += (unsupported.empty() ? "" : "\n") + ex.volume.name + ": ";
    if (ordered_.empty()) {
      unsupported += "no providers are registered";
      continue;
    }
    std::string reasons;
    for (const auto& row : ex.candidates)
      reasons += (reasons.empty() ? "" : "; ") + row.provider + ": " + row.reason;
    unsupported += "no provider supports it (" + reasons + ")";
  }
  if (!unsupported.empty()) return Status::VolumeNotSupported(unsupported);
  return plan;
}

Status Broker::Replan(Plan* plan, const std::string& failed, const Status& why,
                      bool pre_commit_started, const BrokerPolicy& policy,
                      uint32_t context) const {
  const std::string failure = failed + " failed while preparing: " + why.ToString();
  if (pre_commit_started)
    return Status(why.code(), failure + " (after pre-commit a failure fails the whole set; "
                                        "no re-planning)");
  if (!policy.replan_on_prepare_failure)
    return Status(why.code(), failure + " (re-planning is turned off)");

  Plan next = *plan;
  next.failed[failed] = why.ToString();
  for (auto& ex : next.explanations) {
    if (!ex.chosen || ex.chosen->name() != failed) continue;
    if (PinOf(policy, ex.volume))
      return Status(why.code(), failure + " (" + ex.volume.name +
                                    " is pinned to it, so it is not moved)");
    ex.chosen = nullptr;
    for (size_t i = 0; i < ordered_.size(); ++i) {
      BrokerCandidate* c = ordered_[i];
      CandidateVerdict& row = ex.candidates[i];
      if (c->name() == failed) {
        row.verdict = Verdict::kFailed;
        row.reason = "failed while preparing: " + why.ToString();
        continue;
      }
      if (ex.chosen || policy.excluded.count(c->name()) || next.failed.count(c->name())) {
        if (ex.chosen && row.verdict != Verdict::kExcluded && !next.failed.count(c->name())) {
          row.verdict = Verdict::kLowerPriority;
          row.reason = "lower priority than " + Describe(*ex.chosen) + "; not asked";
        }
        continue;
      }
      // Candidates before the failed one already said no; ask only those
      // after it (and any that could not answer before).
      if (row.verdict == Verdict::kNotSupported) continue;
      if (Ask(c, ex.volume, context, &row)) {
        row.reason = "re-planned: " + failed + " failed while preparing";
        ex.chosen = c;
      }
    }
    if (!ex.chosen)
      return Status(why.code(), failure + "; no other provider supports " + ex.volume.name);
  }
  Regroup(&next);
  *plan = std::move(next);
  return Status::Ok();
}

}  // namespace snapset
