// SPDX-License-Identifier: Apache-2.0
// Reverting array LUNs, run the way a user runs it: a set over LUNs of two
// real mock arrays, the LUNs written after it, then `snapset revert` through
// the iSCSI provider and each array's driver (array.h revert). The blocks
// read back over iSCSI are the set's; the arrays refuse what they must (a
// snapshot of another volume, a fenced LUN) and a refused set revert
// changes no volume. Over both dialects: the built-in Swordfish driver and
// the out-of-tree twophase example driver. And all or none when one array's
// driver has no revert: the set is refused before any LUN changes.
#define BOOST_TEST_MODULE iscsi_provider_revert_test
#include <boost/test/unit_test.hpp>
#include <map>
#include <string>
#include <vector>

#include "tests/iscsi/provider_fixture.hpp"
#include "tests/mock-array/iscsi_lun.hpp"

namespace snapset::test {
namespace {

constexpr int kBlock = 512;

LunLogin HostLogin() {
  LunLogin login;
  login.initiator = kHostInitiator;
  login.timeout_s = 10;
  return login;
}

// Block 0 of every LUN holds "TAG:URL;".
void Mark(const std::vector<std::string>& urls, const std::string& tag) {
  for (const std::string& url : urls) {
    Lun lun(url, HostLogin());
    BOOST_REQUIRE_EQUAL(lun.Write(0, Pattern(tag + ":" + url + ";", kBlock), kBlock), 0);
  }
}
// What block 0 of `url` holds, read afresh over iSCSI.
std::string Block0(const std::string& url) {
  Lun lun(url, HostLogin());
  const std::string text = Text(lun.Read(0, kBlock, kBlock), 200);
  return text.substr(0, text.find(';'));
}

// The array's own ids (as /mock/state gives them) of LUN `lun` and of a
// snapshot of another LUN of the same array.
struct Ids {
  std::string lun, foreign_snapshot;
};
Ids ArrayIds(ProviderFixture& f, const ArrayLun& lun) {
  Ids ids;
  rapidjson::Document state = f.State(lun.array);
  for (const auto& v : state["Volumes"].GetArray())
    if (Field(v, "DurableName") == lun.naa) ids.lun = Field(v, "Id");
  for (const auto& v : state["Volumes"].GetArray())
    if (v["SourceId"].IsString() && Field(v, "SourceId") != ids.lun)
      ids.foreign_snapshot = Field(v, "Id");
  BOOST_TEST_REQUIRE(!ids.lun.empty());
  BOOST_TEST_REQUIRE(!ids.foreign_snapshot.empty());
  return ids;
}

// The array's revert request for LUN `lun` to its snapshot `snapshot` (ids
// as /mock/state gives them), in the fixture's dialect.
HttpResponse RevertByRest(ProviderFixture& f, const ArrayLun& lun, const std::string& lun_id,
                          const std::string& snapshot) {
  if (f.twophase())
    return f.Rest(lun.array, "POST", "/api/v2/luns/lun-" + lun_id + "/restore",
                  R"({"snapshot":"snap-)" + snapshot + R"("})");
  const std::string volumes = lun.path.substr(0, lun.path.rfind('/'));
  return f.Rest(lun.array, "POST", lun.path + "/Actions/Oem/Snapset.RevertToSnapshot",
                R"({"Snapshot":{"@odata.id":")" + volumes + "/" + snapshot + R"("}})");
}

void RevertOverTwoArrays(const std::string& dialect) {
  ProviderFixtureOptions o;
  o.dialect = dialect;
  o.luns_a = 2;
  o.luns_b = 1;
  ProviderFixture f(o);
  const std::vector<std::string> urls = f.Urls();  // 2 on a, then 1 on b

  Mark(urls, "set");
  rapidjson::Document made = f.Create(urls);
  const std::string set_id = Field(made, "set_id");
  std::map<std::string, std::string> snapshot_of;  // url -> snapshot id
  for (const auto& s : made["snapshots"].GetArray())
    snapshot_of[Field(s, "volume")] = Field(s, "snapshot_id");
  Mark(urls, "later");

  // The array refuses a snapshot that is not of the volume, and changes
  // nothing.
  const Ids ids = ArrayIds(f, f.luns()[0]);
  HttpResponse foreign = RevertByRest(f, f.luns()[0], ids.lun, ids.foreign_snapshot);
  BOOST_TEST(foreign.status == 404, foreign.body);
  BOOST_TEST(foreign.body.find("is not of volume") != std::string::npos, foreign.body);
  BOOST_TEST(Block0(urls[0]) == "later:" + urls[0]);

  // The set: every LUN holds what it held when the set was cut, read over
  // the same mapping (the LUN keeps its NAA and its target).
  CommandResult reverted = f.Cli({"--json", "revert", "--set", set_id});
  BOOST_TEST_REQUIRE(reverted.exit_code == 0, reverted.output);
  BOOST_TEST(reverted.output.find("\"reverted\"") != std::string::npos, reverted.output);
  for (const std::string& url : urls) BOOST_TEST(Block0(url) == "set:" + url);
  for (int i = 0; i < 2; ++i) {
    HttpResponse log = f.Rest(i, "GET", "/mock/requests");
    BOOST_TEST(log.body.find("\"Volume.RevertToSnapshot\"") != std::string::npos, log.body);
  }

  // One snapshot: only its LUN goes back.
  Mark(urls, "again");
  CommandResult one = f.Cli({"revert", "--snapshot", snapshot_of[urls[2]]});
  BOOST_TEST_REQUIRE(one.exit_code == 0, one.output);
  BOOST_TEST(Block0(urls[2]) == "set:" + urls[2]);
  BOOST_TEST(Block0(urls[0]) == "again:" + urls[0]);

  // Twophase: a fence holds LUN 0's writes; its array refuses to revert
  // it, and since it is the set's first volume nothing is reverted.
  if (f.twophase()) {
    HttpResponse fence =
        f.Rest(0, "POST", "/api/v2/fences",
               R"({"label":"held","luns":["lun-)" + ids.lun + R"("],"timeout_ms":30000})");
    BOOST_TEST_REQUIRE(fence.status == 201, fence.body);
    CommandResult refused = f.Cli({"revert", "--set", set_id});
    BOOST_TEST(refused.exit_code != 0, refused.output);
    BOOST_TEST(refused.output.find("fenced") != std::string::npos, refused.output);
    BOOST_TEST(refused.output.find("nothing was reverted") != std::string::npos, refused.output);
    for (const std::string& url : {urls[0], urls[1]}) BOOST_TEST(Block0(url) == "again:" + url);
    rapidjson::Document fenced;
    fenced.Parse(fence.body.c_str());
    HttpResponse lifted = f.Rest(0, "DELETE", "/api/v2/fences/" + Field(fenced, "id"));
    BOOST_TEST(lifted.status == 204, lifted.body);
  }

  CommandResult deleted = f.Cli({"delete", "--set", set_id});
  BOOST_TEST(deleted.exit_code == 0, deleted.output);
  f.ExpectNothingLeft();
}

BOOST_AUTO_TEST_CASE(a_set_over_two_swordfish_arrays_reverts_and_a_foreign_snapshot_is_refused) {
  RevertOverTwoArrays("swordfish");
}

BOOST_AUTO_TEST_CASE(the_same_through_the_twophase_example_driver_and_a_fence_refuses_it) {
  RevertOverTwoArrays("twophase");
}

BOOST_AUTO_TEST_CASE(a_set_with_a_lun_whose_driver_cannot_revert_is_refused_before_any_changes) {
  ProviderFixtureOptions o;
  o.luns_a = 1;
  o.luns_b = 1;
  o.driver_b = SNAPSET_NO_REVERT_DRIVER;
  ProviderFixture f(o);
  const std::vector<std::string> urls = f.Urls();  // a's, then b's
  Mark(urls, "set");
  rapidjson::Document made = f.Create(urls);
  const std::string set_id = Field(made, "set_id");
  std::map<std::string, std::string> snapshot_of;
  for (const auto& s : made["snapshots"].GetArray())
    snapshot_of[Field(s, "volume")] = Field(s, "snapshot_id");
  Mark(urls, "later");

  // What a user sees first: the snapshot on b says it cannot be reverted to.
  CommandResult on_b = f.Cli({"show", snapshot_of[urls[1]]});
  BOOST_TEST(on_b.output.find("no-revert") != std::string::npos, on_b.output);
  CommandResult on_a = f.Cli({"show", snapshot_of[urls[0]]});
  BOOST_TEST(on_a.output.find("no-revert") == std::string::npos, on_a.output);

  CommandResult refused = f.Cli({"revert", "--set", set_id});
  BOOST_TEST(refused.exit_code != 0, refused.output);
  BOOST_TEST(refused.output.find("cannot be reverted to") != std::string::npos, refused.output);
  BOOST_TEST(refused.output.find(snapshot_of[urls[1]]) != std::string::npos, refused.output);
  BOOST_TEST(refused.output.find("nothing was reverted") != std::string::npos, refused.output);
  for (const std::string& url : urls) BOOST_TEST(Block0(url) == "later:" + url);
  HttpResponse log = f.Rest(0, "GET", "/mock/requests");
  BOOST_TEST(log.body.find("\"Volume.RevertToSnapshot\"") == std::string::npos, log.body);

  // What the message advises: the other volume alone.
  CommandResult one = f.Cli({"revert", "--snapshot", snapshot_of[urls[0]]});
  BOOST_TEST_REQUIRE(one.exit_code == 0, one.output);
  BOOST_TEST(Block0(urls[0]) == "set:" + urls[0]);
  BOOST_TEST(Block0(urls[1]) == "later:" + urls[1]);
  CommandResult deleted = f.Cli({"delete", "--set", set_id});
  BOOST_TEST(deleted.exit_code == 0, deleted.output);
  f.ExpectNothingLeft();
}

}  // namespace
}  // namespace snapset::test
