// The iSCSI provider when `snapset create` dies (kill -9) at any moment: the
// next snapset command recovers the set (abort on the provider, which
// removes a leftover temporary group, then the delete of every snapshot id
// the set planned), so the arrays keep exactly the replicas of complete sets
// and nothing else: no group, no replica the catalog does not know.
#define BOOST_TEST_MODULE iscsi_provider_crash_test
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/iscsi/provider_fixture.hpp"
#include "tests/support/spawn.hpp"

namespace snapset::test {
namespace {

void CreateKilledAtAnyMoment(const std::string& dialect) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixtureOptions o;
  o.dialect = dialect;
  ProviderFixture f(o);
  // A new seed each run explores other moments; it is logged so that a
  // failure can be replayed.
  const unsigned seed = std::random_device{}();
  BOOST_TEST_MESSAGE("seed " << seed);
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 12; ++trial) {
    BOOST_TEST_CONTEXT("seed " << seed << ", trial " << trial) {
      std::vector<std::string> args = {"create"};
      for (const std::string& url : f.Urls()) args.push_back(url);
      const pid_t pid = SpawnQuietly(f.CliArgv(args));
      BOOST_REQUIRE(pid > 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 100));
      kill(pid, SIGKILL);
      int status = 0;
      waitpid(pid, &status, 0);

      // The next command recovers what the dead one left: the catalog and
      // the arrays agree.
      CommandResult verify = f.Cli({"list", "--verify"});
      BOOST_TEST(verify.exit_code == 0, verify.output);
      rapidjson::Document listed = f.Json({"list"});
      int in_catalog[2] = {0, 0};
      for (const auto& s : listed["snapshots"].GetArray()) {
        const std::string volume = s["volume"].GetString();
        for (const ArrayLun& lun : f.luns()) {
          if (lun.url == volume) ++in_catalog[lun.array];
        }
      }
      for (int i = 0; i < 2; ++i) {
        BOOST_TEST(f.Groups(i) == 0, "array " << i << " keeps a temporary group");
        BOOST_TEST(f.Snapshots(i) == in_catalog[i], "array " << i);
      }
    }
  }
  // Whatever completed is whole and deletes cleanly.
  rapidjson::Document listed = f.Json({"list"});
  BOOST_TEST_MESSAGE(listed["snapshots"].Size() / f.luns().size()
                     << " of 12 killed sets had completed");
  for (const auto& s : listed["snapshots"].GetArray()) {
    CommandResult r = f.Cli({"delete", s["snapshot_id"].GetString()});
    BOOST_TEST(r.exit_code == 0, r.output);
  }
  for (int i = 0; i < 2; ++i) {
    BOOST_TEST(f.Snapshots(i) == 0);
    BOOST_TEST(f.ExtraConnections(i) == 0);
  }
}

BOOST_AUTO_TEST_CASE(create_killed_at_any_moment_leaves_only_the_replicas_of_complete_sets) {
  CreateKilledAtAnyMoment("swordfish");
}

// The same with the twophase arrays and the example driver: a kill may now
// also come while the arrays' fences hold the writes (they lift themselves
// by the window's end).
BOOST_AUTO_TEST_CASE(the_same_over_twophase_arrays_with_fences) {
  CreateKilledAtAnyMoment("twophase");
}

}  // namespace
}  // namespace snapset::test
