// The provider-priority broker (DESIGN §5): which provider snapshots which
// volume, and why.
//
// For each volume the broker asks the providers in a fixed order -- type
// hardware, then software, then system; within a type higher integrator
// priority first; then by name, so the choice is deterministic -- and the
// first that supports the volume takes it. An integrator may pin a provider to
// a volume (then only that provider is asked) and exclude providers (never
// asked). A plan groups the volumes by provider. If a provider fails while
// preparing, Replan() moves its volumes to the next provider that supports
// them; once pre-commit has started it refuses, because by then writers are
// frozen and the set must fail as a whole.
//
// Thread-safety: a Broker is immutable after construction; MakePlan, Explain
// and Replan may run concurrently on distinct plans. They call candidates'
// IsVolumeSupported, which may do I/O.
#ifndef SNAPSET_PRIORITY_BROKER_HPP
#define SNAPSET_PRIORITY_BROKER_HPP

#include <snapset/status.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/provider_registration.hpp"
#include "core/volume.hpp"

namespace snapset {

class ProviderInstance;

// What the broker needs to know of a provider.
class BrokerCandidate {
 public:
  virtual ~BrokerCandidate() = default;
  virtual const std::string& name() const = 0;
  virtual ProviderType type() const = 0;
  virtual int priority() const = 0;
  // OK, or VolumeNotSupported with the reason; other codes mean the
  // provider could not answer. On OK, *why may say why the provider takes
  // the volume (e.g. which array holds it), for `providers explain`.
  virtual Status IsVolumeSupported(const Volume& v, uint32_t context, std::string* why) = 0;
};

// A loaded provider as a candidate. Its answer is bounded by `timeout`: a
// provider that does not answer in time is abandoned, marked unhealthy, and
// counted as unable to answer.
class InstanceCandidate : public BrokerCandidate {
 public:
  explicit InstanceCandidate(ProviderInstance* p,
                             std::chrono::milliseconds timeout = std::chrono::seconds(30))
      : p_(p), timeout_(timeout) {}
  const std::string& name() const override;
  ProviderType type() const override;
  int priority() const override;
  Status IsVolumeSupported(const Volume& v, uint32_t context, std::string* why) override;
  ProviderInstance* instance() const { return p_; }

 private:
  ProviderInstance* p_;
  std::chrono::milliseconds timeout_;
};

struct BrokerPolicy {
  // canonical volume name (Volume::name) -> provider name
  std::map<std::string, std::string> pins;
  std::set<std::string> excluded;  // provider names
  bool replan_on_prepare_failure = true;
};

enum class Verdict {
  kChosen,         // takes the volume
  kNotSupported,   // asked; said no (reason is the provider's)
  kExcluded,       // excluded or not the pinned provider: never asked
  kLowerPriority,  // a provider before it took the volume
  kFailed,         // could not answer, or failed while preparing
};
const char* VerdictName(Verdict v);

struct CandidateVerdict {
  std::string provider;
  ProviderType type = ProviderType::kSystem;
  int priority = 0;
  Verdict verdict = Verdict::kNotSupported;
  std::string reason;
};

struct VolumeExplanation {
  Volume volume;
  std::vector<CandidateVerdict> candidates;  // in the order asked
  BrokerCandidate* chosen = nullptr;         // null if none supports it
};

struct Plan {
  struct Group {
    BrokerCandidate* provider;
    std::vector<size_t> volumes;  // indices into explanations
  };
  std::vector<VolumeExplanation> explanations;  // one per volume, input order
  std::vector<Group> groups;                     // in provider order
  std::map<std::string, std::string> failed;     // provider -> why (Replan)
};

class Broker {
 public:
  // Candidates are borrowed and must outlive the broker.
  explicit Broker(std::vector<BrokerCandidate*> candidates);

  // Candidates in the order they are asked.
  const std::vector<BrokerCandidate*>& ordered() const { return ordered_; }

  // A plan for every volume, or an error: InvalidArgument for a bad policy
  // (unknown or excluded provider in a pin, duplicate volume, a pin for a
  // volume not in the set), VolumeNotSupported naming each volume no
  // provider takes and every candidate's reason. Providers after the chosen
  // one are not asked.
  Result<Plan> MakePlan(const std::vector<Volume>& volumes, const BrokerPolicy& policy,
                        uint32_t context) const;

  // Like MakePlan but never fails on an unsupported volume, and asks every
  // candidate that is not excluded, so lower-priority rows say whether they
  // would have supported the volume.
  Result<Plan> Explain(const std::vector<Volume>& volumes, const BrokerPolicy& policy,
                       uint32_t context) const;

  // `failed` failed while preparing its volumes with `why`: move them to the
  // next provider that supports them. Refuses (returning the failure) when
  // pre-commit has started, the policy turns re-planning off, a volume was
  // pinned, or no other provider supports one of them; the plan is then
  // unchanged.
  Status Replan(Plan* plan, const std::string& failed, const Status& why,
                bool pre_commit_started, const BrokerPolicy& policy, uint32_t context) const;

 private:
  Result<Plan> Build(const std::vector<Volume>& volumes, const BrokerPolicy& policy,
                     uint32_t context, bool ask_all) const;
  Status CheckPolicy(const std::vector<Volume>& volumes, const BrokerPolicy& policy) const;
  static void Regroup(Plan* plan);

  std::vector<BrokerCandidate*> ordered_;
};

}  // namespace snapset

#endif  // SNAPSET_PRIORITY_BROKER_HPP
