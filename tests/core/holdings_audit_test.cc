// SPDX-License-Identifier: Apache-2.0
// The rules that tell an orphan from what the catalog explains
// (core/holdings_audit.hpp), one case per rule, without a provider.
#define BOOST_TEST_MODULE holdings_audit
#include "core/holdings_audit.hpp"

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

using namespace snapset;

namespace {

const std::string kProvider = "11111111-1111-4111-8111-111111111111";

SetRecord Set(const std::string& id, SetState state, std::vector<std::string> snapshots) {
  SetRecord set;
  set.set_id = id;
  set.state = state;
  for (const auto& s : snapshots) {
    SnapshotRecord r;
    r.snapshot_id = s;
    r.set_id = id;
    r.provider_id = kProvider;
    r.provider_name = "array";
    set.snapshots.push_back(r);
  }
  return set;
}

ProviderHoldings Holding(std::vector<std::string> snapshots, std::vector<ProviderObject> objects,
                         Status objects_listed = Status::Ok()) {
  ProviderHoldings h;
  h.provider_id = kProvider;
  h.provider_name = "array";
  h.snapshot_ids = std::move(snapshots);
  h.objects = std::move(objects);
  h.objects_listed = objects_listed;
  return h;
}

const VerifyFinding* Find(const std::vector<VerifyFinding>& all, const std::string& subject) {
  for (const auto& f : all)
    if (f.snapshot_id == subject || f.name == subject) return &f;
  return nullptr;
}

}  // namespace

BOOST_AUTO_TEST_CASE(what_the_catalog_explains_is_no_finding) {
  const std::vector<SetRecord> catalog = {Set("done", SetState::kComplete, {"s1"}),
                                          Set("running", SetState::kCreating, {"s2"})};
  auto findings = AuditHoldings(
      {Holding({"s1", "s2"}, {{"exposure", "snapset-s1", "array a", "", "s1"},
                              {"group", "snapset-running", "array a", "running", ""},
                              {"fence", "snapset-fence-running", "array a", "running", ""}})},
      catalog, catalog);
  for (const auto& f : findings) BOOST_TEST_MESSAGE(f.snapshot_id << f.name << ": " << f.problem);
  BOOST_TEST(findings.empty());
}

BOOST_AUTO_TEST_CASE(snapshots_and_objects_of_no_live_set_are_orphans) {
  const std::vector<SetRecord> catalog = {Set("gone", SetState::kAborted, {}),
                                          Set("done", SetState::kComplete, {"s1"})};
  auto findings = AuditHoldings(
      {Holding({"s1", "late"}, {{"group", "snapset-gone", "array a", "gone", ""},
                                {"group", "snapset-done", "array a", "done", ""},
                                {"group", "snapset-unknown", "array b", "unknown", ""},
                                {"exposure", "snapset-x", "array a", "", "x"}})},
      catalog, catalog);
  BOOST_TEST(findings.size() == 5u);
  for (const auto& f : findings) BOOST_TEST(f.orphan, f.snapshot_id << f.name);
  const VerifyFinding* late = Find(findings, "late");
  BOOST_TEST_REQUIRE(late);
  BOOST_TEST(late->kind == "snapshot");
  BOOST_TEST(late->problem == "on the provider but not in the catalog");
  const VerifyFinding* gone = Find(findings, "snapset-gone");
  BOOST_TEST_REQUIRE(gone);
  BOOST_TEST(gone->problem == "made for set gone, which is aborted");
  BOOST_TEST(gone->location == "array a");
  BOOST_TEST(gone->kind == "group");
  // A complete set's group should have gone at post_commit.
  BOOST_TEST(Find(findings, "snapset-done")->problem == "made for set done, which is complete");
  BOOST_TEST(Find(findings, "snapset-unknown")->problem ==
             "made for set unknown, which the catalog does not have");
  BOOST_TEST(Find(findings, "snapset-x")->problem ==
             "made for snapshot x, which is in no set of the catalog");
}

BOOST_AUTO_TEST_CASE(what_an_incomplete_abort_left_is_reported_but_not_an_orphan) {
  std::vector<SetRecord> catalog = {Set("stuck", SetState::kAbortIncomplete, {"p1"})};
  auto findings = AuditHoldings(
      {Holding({"p1"}, {{"group", "snapset-stuck", "array a", "stuck", ""}})}, catalog, catalog);
  BOOST_TEST_REQUIRE(findings.size() == 2u);
  for (const auto& f : findings) {
    BOOST_TEST(!f.orphan);
    BOOST_TEST(f.set_id == "stuck");
    BOOST_TEST(f.problem.find("incomplete abort of set stuck") != std::string::npos, f.problem);
  }
}

BOOST_AUTO_TEST_CASE(a_set_begun_or_completed_while_the_providers_were_listed_is_no_finding) {
  // Before the listing: nothing. After: a set in progress, one complete.
  const std::vector<SetRecord> before = {Set("finishing", SetState::kCreating, {"f1"})};
  const std::vector<SetRecord> after = {Set("new", SetState::kCreating, {"n1"}),
                                        Set("finishing", SetState::kComplete, {"f1"})};
  // The listing saw the new set's snapshot, not the finishing set's yet.
  auto findings = AuditHoldings({Holding({"n1"}, {})}, before, after);
  BOOST_TEST(findings.empty());
}

BOOST_AUTO_TEST_CASE(a_lost_snapshot_and_an_unregistered_provider_are_reported_not_orphans) {
  SetRecord other = Set("elsewhere", SetState::kComplete, {"e1"});
  other.snapshots[0].provider_id = "22222222-2222-4222-8222-222222222222";
  other.snapshots[0].provider_name = "old";
  const std::vector<SetRecord> catalog = {Set("done", SetState::kComplete, {"s1"}), other};
  auto findings = AuditHoldings({Holding({}, {})}, catalog, catalog);
  BOOST_TEST_REQUIRE(findings.size() == 2u);
  BOOST_TEST(Find(findings, "s1")->problem == "in the catalog but not on the provider");
  BOOST_TEST(Find(findings, "e1")->problem.find("no longer registered") != std::string::npos);
  for (const auto& f : findings) BOOST_TEST(!f.orphan);
}

BOOST_AUTO_TEST_CASE(
    a_snapshot_the_provider_lists_as_unreadable_is_reported_and_a_lost_one_says_so) {
  SetRecord set = Set("done", SetState::kComplete, {"s1", "s2", "s3"});
  set.snapshots[2].lost_reason = "deleted by overflow";
  set.snapshots[2].lost_ns = 1;
  const std::vector<SetRecord> catalog = {set};
  ProviderHoldings h = Holding({"s1", "s2"}, {});
  h.invalid["s2"] = "the diff area failed";
  auto findings = AuditHoldings({h}, catalog, catalog);
  BOOST_TEST_REQUIRE(findings.size() == 2u);
  BOOST_TEST(!Find(findings, "s1"));
  BOOST_TEST(Find(findings, "s2")->problem ==
             "on the provider, but it cannot be read: the diff area failed");
  BOOST_TEST(Find(findings, "s3")->problem ==
             "in the catalog but not on the provider (recorded lost: deleted by overflow)");
  for (const auto& f : findings) BOOST_TEST(!f.orphan);
}

BOOST_AUTO_TEST_CASE(a_provider_that_cannot_list_is_reported_and_one_without_objects_is_not) {
  const std::vector<SetRecord> catalog = {Set("done", SetState::kComplete, {"s1"})};
  ProviderHoldings down = Holding({}, {}, Status::Unavailable("array a did not answer"));
  down.snapshots_listed = Status::Unavailable("array a did not answer");
  auto findings = AuditHoldings({down}, catalog, catalog);
  BOOST_TEST_REQUIRE(findings.size() == 2u);
  for (const auto& f : findings) {
    BOOST_TEST(!f.orphan);
    BOOST_TEST(f.problem.find("array a did not answer") != std::string::npos, f.problem);
  }
  ProviderHoldings plain = Holding({"s1"}, {}, Status::NotImplemented("no list_objects"));
  BOOST_TEST(AuditHoldings({plain}, catalog, catalog).empty());
}
