// The broker's choices as an integrator relies on them: one table of cases
// over types x priorities x support verdicts x pins x excludes, and one over
// failures while preparing.
#define BOOST_TEST_MODULE broker
#include <boost/test/unit_test.hpp>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "priority/broker.hpp"

using namespace snapset;

namespace {

// A provider that supports a fixed set of volumes, or cannot answer at all.
class FakeCandidate : public BrokerCandidate {
 public:
  FakeCandidate(std::string name, ProviderType type, int priority, std::set<std::string> supports,
                std::optional<Code> error = std::nullopt)
      : name_(std::move(name)),
        type_(type),
        priority_(priority),
        supports_(std::move(supports)),
        error_(error) {}
  const std::string& name() const override { return name_; }
  ProviderType type() const override { return type_; }
  int priority() const override { return priority_; }
  Status IsVolumeSupported(const Volume& v, uint32_t, std::string* why) override {
    ++asked;
    if (error_) return Status(*error_, name_ + " is down");
    if (supports_.count(v.name) || supports_.count("*")) {
      if (!why_.empty() && why) *why = why_;
      return Status::Ok();
    }
    return Status::VolumeNotSupported(name_ + " has no " + v.name);
  }
  int asked = 0;
  std::string why_;  // given with every OK when set

 private:
  std::string name_;
  ProviderType type_;
  int priority_;
  std::set<std::string> supports_;
  std::optional<Code> error_;
};

constexpr auto H = ProviderType::kHardware;
constexpr auto S = ProviderType::kSoftware;
constexpr auto Y = ProviderType::kSystem;

struct ProviderSpec {
  std::string name;
  ProviderType type;
  int priority;
  std::set<std::string> supports;
  std::optional<Code> error = std::nullopt;
};

struct Case {
  std::string what;
  std::vector<ProviderSpec> providers;
  std::vector<std::string> volumes;
  std::map<std::string, std::string> pins;
  std::set<std::string> excluded;
  // Expected, per volume: "provider=verdict,..." in asking order, then
  // "->chosen" (empty when none). Ignored when `error` is set.
  std::vector<std::string> expected;
  std::optional<Code> error = std::nullopt;
  std::string error_contains = "";
};

std::string Short(Verdict v) {
  switch (v) {
    case Verdict::kChosen: return "chosen";
    case Verdict::kNotSupported: return "no";
    case Verdict::kExcluded: return "excluded";
    case Verdict::kLowerPriority: return "lower";
    case Verdict::kFailed: return "failed";
  }
  return "?";
}

std::string Render(const VolumeExplanation& ex) {
  std::string s;
  for (const auto& c : ex.candidates) s += (s.empty() ? "" : ",") + c.provider + "=" + Short(c.verdict);
  return s + "->" + (ex.chosen ? ex.chosen->name() : "");
}

std::vector<Volume> Volumes(const std::vector<std::string>& names) {
  std::vector<Volume> out;
  for (const auto& n : names) {
    Volume v;
    v.name = n;
    out.push_back(v);
  }
  return out;
}

struct World {
  std::vector<std::unique_ptr<FakeCandidate>> owned;
  std::unique_ptr<Broker> broker;
  explicit World(const std::vector<ProviderSpec>& specs) {
    std::vector<BrokerCandidate*> ptrs;
    for (const auto& s : specs) {
      owned.push_back(std::make_unique<FakeCandidate>(s.name, s.type, s.priority, s.supports, s.error));
      ptrs.push_back(owned.back().get());
    }
    broker = std::make_unique<Broker>(ptrs);
  }
  FakeCandidate* Get(const std::string& name) {
    for (auto& c : owned)
      if (c->name() == name) return c.get();
    return nullptr;
  }
};

const std::vector<Case> kPlanCases = {
    {"hardware beats software beats system, whatever the registration order",
     {{"sys", Y, 0, {"*"}}, {"sw", S, 0, {"*"}}, {"hw", H, 0, {"*"}}},
     {"/v1"}, {}, {},
     {"hw=chosen,sw=lower,sys=lower->hw"}},
    {"an unsupporting hardware provider falls through to software",
     {{"hw", H, 0, {}}, {"sw", S, 0, {"*"}}, {"sys", Y, 0, {"*"}}},
     {"/v1"}, {}, {},
     {"hw=no,sw=chosen,sys=lower->sw"}},
    {"within a type, higher integrator priority is asked first",
     {{"hw-a", H, 1, {"*"}}, {"hw-b", H, 5, {"*"}}},
     {"/v1"}, {}, {},
     {"hw-b=chosen,hw-a=lower->hw-b"}},
    {"equal type and priority: by name, deterministically",
     {{"zeta", S, 0, {"*"}}, {"alpha", S, 0, {"*"}}},
     {"/v1"}, {}, {},
     {"alpha=chosen,zeta=lower->alpha"}},
    {"priority never lifts software above hardware",
     {{"sw", S, 100, {"*"}}, {"hw", H, -5, {"*"}}},
     {"/v1"}, {}, {},
     {"hw=chosen,sw=lower->hw"}},
    {"each volume goes to its own first supporter; the set spans providers",
     {{"hw", H, 0, {"/a"}}, {"sw", S, 0, {"/a", "/b"}}, {"sys", Y, 0, {"*"}}},
     {"/a", "/b", "/c"}, {}, {},
     {"hw=chosen,sw=lower,sys=lower->hw", "hw=no,sw=chosen,sys=lower->sw",
      "hw=no,sw=no,sys=chosen->sys"}},
    {"a provider that cannot answer is passed over",
     {{"hw", H, 0, {"*"}, Code::kUnavailable}, {"sw", S, 0, {"*"}}},
     {"/v1"}, {}, {},
     {"hw=failed,sw=chosen->sw"}},
    {"an excluded provider is never asked",
     {{"hw", H, 0, {"*"}}, {"sw", S, 0, {"*"}}},
     {"/v1"}, {}, {"hw"},
     {"hw=excluded,sw=chosen->sw"}},
    {"a pin asks only the pinned provider, even a lower one",
     {{"hw", H, 0, {"*"}}, {"sw", S, 0, {"*"}}, {"sys", Y, 0, {"*"}}},
     {"/v1", "/v2"}, {{"/v1", "sys"}}, {},
     {"hw=excluded,sw=excluded,sys=chosen->sys", "hw=chosen,sw=lower,sys=lower->hw"}},
    {"a pinned provider that does not support the volume fails the plan",
     {{"hw", H, 0, {"*"}}, {"sys", Y, 0, {}}},
     {"/v1"}, {{"/v1", "sys"}}, {},
     {}, Code::kVolumeNotSupported, "sys has no /v1"},
    {"no supporter at all fails the plan with every reason",
     {{"hw", H, 0, {}}, {"sw", S, 0, {}}},
     {"/v1"}, {}, {},
     {}, Code::kVolumeNotSupported, "hw: hw has no /v1; sw: sw has no /v1"},
    {"excluding every supporter fails the plan",
     {{"hw", H, 0, {"*"}}},
     {"/v1"}, {}, {"hw"},
     {}, Code::kVolumeNotSupported, "excluded by policy"},
    {"no providers registered",
     {},
     {"/v1"}, {}, {},
     {}, Code::kVolumeNotSupported, "no providers are registered"},
    {"pinning an unknown provider is an argument error",
     {{"hw", H, 0, {"*"}}},
     {"/v1"}, {{"/v1", "acme"}}, {},
     {}, Code::kInvalidArgument, "unknown provider \"acme\""},
    {"excluding an unknown provider is an argument error",
     {{"hw", H, 0, {"*"}}},
     {"/v1"}, {}, {"acme"},
     {}, Code::kInvalidArgument, "cannot exclude unknown provider \"acme\""},
    {"pinned and excluded at once is an argument error",
     {{"hw", H, 0, {"*"}}},
     {"/v1"}, {{"/v1", "hw"}}, {"hw"},
     {}, Code::kInvalidArgument, "both pinned"},
    {"a pin for a volume outside the set is an argument error",
     {{"hw", H, 0, {"*"}}},
     {"/v1"}, {{"/v9", "hw"}}, {},
     {}, Code::kInvalidArgument, "/v9"},
    {"a volume named twice is an argument error",
     {{"hw", H, 0, {"*"}}},
     {"/v1", "/v1"}, {}, {},
     {}, Code::kInvalidArgument, "named twice"},
};

}  // namespace

BOOST_AUTO_TEST_CASE(plan_table) {
  for (const auto& c : kPlanCases) {
    BOOST_TEST_CONTEXT(c.what) {
      World w(c.providers);
      BrokerPolicy policy;
      policy.pins = c.pins;
      policy.excluded = c.excluded;
      auto plan = w.broker->MakePlan(Volumes(c.volumes), policy, 0);
      if (c.error) {
        BOOST_TEST_REQUIRE(!plan.ok());
        BOOST_TEST((plan.status().code() == *c.error), plan.status().ToString());
        BOOST_TEST(plan.status().message().find(c.error_contains) != std::string::npos,
                   plan.status().message());
        continue;
      }
      BOOST_TEST_REQUIRE(plan.ok(), plan.status().ToString());
      BOOST_TEST_REQUIRE(plan->explanations.size() == c.expected.size());
      for (size_t i = 0; i < c.expected.size(); ++i)
        BOOST_TEST(Render(plan->explanations[i]) == c.expected[i]);
      // Groups cover each volume exactly once, under its chosen provider.
      size_t grouped = 0;
      for (const auto& g : plan->groups) {
        for (size_t v : g.volumes) BOOST_TEST(plan->explanations[v].chosen == g.provider);
        grouped += g.volumes.size();
      }
      BOOST_TEST(grouped == c.volumes.size());
      // Excluded providers are never asked.
      for (const auto& name : c.excluded) BOOST_TEST(w.Get(name)->asked == 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(plan_does_not_ask_providers_after_the_chosen_one) {
  World w({{"hw", H, 0, {"*"}}, {"sw", S, 0, {"*"}}});
  auto plan = w.broker->MakePlan(Volumes({"/v1"}), {}, 0);
  BOOST_TEST_REQUIRE(plan.ok());
  BOOST_TEST(w.Get("sw")->asked == 0);
  BOOST_TEST(plan->explanations[0].candidates[1].reason == "lower priority than hw (hardware); not asked");
}

BOOST_AUTO_TEST_CASE(explain_asks_everyone_and_gives_each_reason) {
  World w({{"hw", H, 0, {}}, {"sw", S, 0, {"*"}}, {"sys", Y, 0, {}}, {"off", Y, 0, {"*"}}});
  BrokerPolicy policy;
  policy.excluded = {"off"};
  auto plan = w.broker->Explain(Volumes({"/v1", "/v2"}), policy, 0);
  BOOST_TEST_REQUIRE(plan.ok());
  const auto& rows = plan->explanations[0].candidates;
  BOOST_TEST_REQUIRE(rows.size() == 4u);
  BOOST_TEST(rows[0].provider == "hw");
  BOOST_TEST(rows[0].reason == "hw has no /v1");
  BOOST_TEST(rows[1].provider == "sw");
  BOOST_TEST(rows[1].reason.find("first provider that supports the volume") == 0);
  BOOST_TEST(rows[2].provider == "off");
  BOOST_TEST(rows[2].reason == "excluded by policy (--exclude off); not asked");
  BOOST_TEST(rows[3].provider == "sys");
  BOOST_TEST(rows[3].reason == "lower priority than sw (software); would not support it: sys has no /v1");
  BOOST_TEST(w.Get("sys")->asked == 2);
}

BOOST_AUTO_TEST_CASE(explain_gives_the_providers_own_reason_for_supporting_a_volume) {
  World w({{"hw", H, 0, {"*"}}, {"sw", S, 0, {"*"}}});
  w.Get("hw")->why_ = "array \"a\" holds NAA 600140";
  w.Get("sw")->why_ = "cow volume";
  auto plan = w.broker->Explain(Volumes({"/v1"}), {}, 0);
  BOOST_TEST_REQUIRE(plan.ok());
  const auto& rows = plan->explanations[0].candidates;
  BOOST_TEST_REQUIRE(rows.size() == 2u);
  BOOST_TEST(rows[0].reason ==
             "first provider that supports the volume (order: hardware, software, system; then "
             "priority; then name): array \"a\" holds NAA 600140");
  BOOST_TEST(rows[1].reason == "lower priority than hw (hardware); would support it (cow volume)");
}

BOOST_AUTO_TEST_CASE(explain_reports_unsupported_volumes_without_failing) {
  World w({{"hw", H, 0, {}}});
  auto plan = w.broker->Explain(Volumes({"/v1"}), {}, 0);
  BOOST_TEST_REQUIRE(plan.ok());
  BOOST_TEST(plan->explanations[0].chosen == nullptr);
  BOOST_TEST(plan->groups.empty());
}

// ---- failures while preparing ----

struct ReplanCase {
  std::string what;
  std::vector<ProviderSpec> providers;
  std::vector<std::string> volumes;
  std::map<std::string, std::string> pins;
  std::string failing;
  bool pre_commit_started;
  bool replan_enabled;
  std::vector<std::string> expected;  // after re-planning; empty when refused
  std::string refusal = "";
};

const std::vector<ReplanCase> kReplanCases = {
    {"a failed hardware provider's volumes move to software",
     {{"hw", H, 0, {"*"}}, {"sw", S, 0, {"*"}}, {"sys", Y, 0, {"*"}}},
     {"/a", "/b"}, {}, "hw", false, true,
     {"hw=failed,sw=chosen,sys=lower->sw", "hw=failed,sw=chosen,sys=lower->sw"}},
    {"only the failed provider's volumes move",
     {{"hw", H, 0, {"/a"}}, {"sw", S, 0, {"*"}}, {"sys", Y, 0, {"*"}}},
     {"/a", "/b"}, {}, "sw", false, true,
     {"hw=chosen,sw=lower,sys=lower->hw", "hw=no,sw=failed,sys=chosen->sys"}},
    {"the next provider must itself support the volume",
     {{"hw", H, 0, {"*"}}, {"sw", S, 0, {}}, {"sys", Y, 0, {"*"}}},
     {"/a"}, {}, "hw", false, true,
     {"hw=failed,sw=no,sys=chosen->sys"}},
    {"no further supporter: the failure stands",
     {{"hw", H, 0, {"*"}}, {"sw", S, 0, {}}},
     {"/a"}, {}, "hw", false, true,
     {}, "no other provider supports /a"},
    {"never after pre-commit started",
     {{"hw", H, 0, {"*"}}, {"sw", S, 0, {"*"}}},
     {"/a"}, {}, "hw", true, true,
     {}, "after pre-commit a failure fails the whole set"},
    {"never when the integrator turned it off",
     {{"hw", H, 0, {"*"}}, {"sw", S, 0, {"*"}}},
     {"/a"}, {}, "hw", false, false,
     {}, "re-planning is turned off"},
    {"a pinned volume is never moved",
     {{"hw", H, 0, {"*"}}, {"sw", S, 0, {"*"}}},
     {"/a"}, {{"/a", "hw"}}, "hw", false, true,
     {}, "pinned to it"},
};

BOOST_AUTO_TEST_CASE(replan_table) {
  for (const auto& c : kReplanCases) {
    BOOST_TEST_CONTEXT(c.what) {
      World w(c.providers);
      BrokerPolicy policy;
      policy.pins = c.pins;
      policy.replan_on_prepare_failure = c.replan_enabled;
      auto plan = w.broker->MakePlan(Volumes(c.volumes), policy, 0);
      BOOST_TEST_REQUIRE(plan.ok(), plan.status().ToString());
      Plan before = *plan;
      Status s = w.broker->Replan(&*plan, c.failing, Status::Unavailable("array offline"),
                                  c.pre_commit_started, policy, 0);
      if (!c.refusal.empty()) {
        BOOST_TEST(!s.ok());
        BOOST_TEST(s.Is(Code::kUnavailable), s.ToString());  // the provider's failure
        BOOST_TEST(s.message().find(c.refusal) != std::string::npos, s.message());
        BOOST_TEST(s.message().find("array offline") != std::string::npos, s.message());
        for (size_t i = 0; i < before.explanations.size(); ++i)  // plan unchanged
          BOOST_TEST(Render(plan->explanations[i]) == Render(before.explanations[i]));
        continue;
      }
      BOOST_TEST_REQUIRE(s.ok(), s.ToString());
      for (size_t i = 0; i < c.expected.size(); ++i)
        BOOST_TEST(Render(plan->explanations[i]) == c.expected[i]);
      BOOST_TEST(plan->failed.count(c.failing) == 1u);
      for (const auto& g : plan->groups) BOOST_TEST(g.provider->name() != c.failing);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_second_failure_moves_volumes_further_down) {
  World w({{"hw", H, 0, {"*"}}, {"sw", S, 0, {"*"}}, {"sys", Y, 0, {"*"}}});
  auto plan = w.broker->MakePlan(Volumes({"/a"}), {}, 0);
  BOOST_TEST_REQUIRE(plan.ok());
  BOOST_TEST(w.broker->Replan(&*plan, "hw", Status::Unavailable("x"), false, {}, 0).ok());
  BOOST_TEST(w.broker->Replan(&*plan, "sw", Status::Unavailable("y"), false, {}, 0).ok());
  BOOST_TEST(Render(plan->explanations[0]) == "hw=failed,sw=failed,sys=chosen->sys");
}
