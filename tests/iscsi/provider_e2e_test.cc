// The iSCSI hardware provider end to end, run the way a user runs it: two
// real mock arrays (REST + iSCSI through their own tgtd), the provider
// registered with snapset and loaded with dlopen, the `snapset` CLI, and a
// writer that keeps writing an increasing counter to every LUN through
// libiscsi while the set is taken.
#define BOOST_TEST_MODULE iscsi_provider_e2e_test
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
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

// Block 0 of a LUN holds "counter=N".
void WriteCounter(Lun& lun, uint64_t n) {
  BOOST_REQUIRE_EQUAL(lun.Write(0, Pattern("counter=" + std::to_string(n) + ";", kBlock), kBlock),
                      0);
}
uint64_t ReadCounter(Lun& lun) {
  const std::string text = Text(lun.Read(0, kBlock, kBlock), 40);
  BOOST_REQUIRE_MESSAGE(text.rfind("counter=", 0) == 0, "block 0 holds " << text);
  return std::stoull(text.substr(8));
}

// Writes counter 1, 2, 3, ... to every LUN in turn, round after round, each
// write acknowledged before the next starts. So at any instant, the LUNs of
// one array in write order hold c, ..., c, c-1, ..., c-1: a snapshot of that
// array taken at one instant shows exactly such a cut.
class CounterWriter {
 public:
  explicit CounterWriter(const std::vector<std::string>& urls) {
    thread_ = std::thread([this, urls] {
      std::vector<std::unique_ptr<Lun>> luns;  // owned by this thread (libiscsi)
      for (const std::string& url : urls) luns.push_back(std::make_unique<Lun>(url, HostLogin()));
      for (uint64_t round = 1; !stop_; ++round) {
        for (auto& lun : luns) WriteCounter(*lun, round);
        done_ = round;
      }
    });
    while (done_ < 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~CounterWriter() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // The last round every LUN has acknowledged.
  uint64_t done() const { return done_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> done_{0};
  std::thread thread_;
};

BOOST_AUTO_TEST_CASE(explain_picks_the_iscsi_provider_with_the_array_and_the_naa) {
  if (!ProviderFixtureAvailable(/*cow=*/true)) return;
  ProviderFixtureOptions o;
  o.cow = true;
  ProviderFixture f(o);
  const ArrayLun& lun = f.luns()[3];  // on array b
  CommandResult r = f.Cli({"providers", "explain", lun.url, "cow:db"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("array \"b\"") != std::string::npos, r.output);
  BOOST_TEST(r.output.find(lun.naa) != std::string::npos, r.output);
  // The cow volume has no NAA: the hardware provider says so and the
  // software provider takes it.
  BOOST_TEST(r.output.find("has no NAA designator") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("snapset-cowd at ") != std::string::npos, r.output);
}

// One set over two arrays of `dialect` and a cow volume: one instant per
// array, exposure, verify, delete, nothing left.
void OneSetOverTwoArrays(const std::string& dialect) {
  if (!ProviderFixtureAvailable(/*cow=*/true)) return;
  ProviderFixtureOptions o;
  o.cow = true;
  o.dialect = dialect;
  ProviderFixture f(o);
  const std::vector<std::string> urls = f.Urls();  // 3 on a, then 2 on b
  std::vector<std::string> volumes = urls;
  volumes.push_back("cow:db");

  CounterWriter writer(urls);
  const uint64_t before = writer.done();
  rapidjson::Document doc = f.Create(volumes);
  const uint64_t after = writer.done() + 1;  // a round may be under way
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  writer.Stop();
  const uint64_t last = writer.done();
  BOOST_TEST_REQUIRE(last > after, "the writer kept writing after the set");

  // The plan: the array LUNs to the hardware provider, the cow volume to
  // the software one.
  std::map<std::string, std::string> provider_of;
  for (const auto& p : doc["plan"].GetArray())
    provider_of[Field(p, "volume")] = Field(p, "provider");
  for (const std::string& url : urls) BOOST_TEST(provider_of[url] == "iscsi", url);
  BOOST_TEST(provider_of["cow:db"] == "software-cow");
  // Raw LUNs: held by their arrays' fences where the driver has them (the
  // twophase one), else crash-consistent (Swordfish has no fence).
  const bool fenced = dialect == "twophase";
  for (const auto& p : doc["plan"].GetArray()) {
    if (Field(p, "provider") != "iscsi") continue;
    BOOST_TEST(Field(p, "hold") == (fenced ? "array-fence" : "none"), Field(p, "volume"));
    BOOST_TEST(p["crash_consistent"].GetBool() == !fenced, Field(p, "volume"));
  }

  // Each array snapshot is exposed and read back over iSCSI.
  std::map<std::string, std::string> snapshot_of;  // volume -> snapshot id
  for (const auto& s : doc["snapshots"].GetArray()) {
    snapshot_of[Field(s, "volume")] = Field(s, "snapshot_id");
  }
  std::vector<uint64_t> seen;
  for (const std::string& url : urls) {
    const std::string id = snapshot_of[url];
    BOOST_TEST_REQUIRE(!id.empty(), "no snapshot of " << url);
    CommandResult shown = f.Cli({"--json", "show", id});
    BOOST_TEST_REQUIRE(shown.exit_code == 0, shown.output);
    BOOST_TEST(shown.output.find("\"snapshot_device\": \"naa.") != std::string::npos, shown.output);
    rapidjson::Document e = f.Json({"expose", id});
    const std::string where = Field(e, "exposed_as");
    BOOST_TEST_REQUIRE(where.rfind("iscsi://", 0) == 0, "exposed as " << where);
    Lun snap(where, HostLogin());
    seen.push_back(ReadCounter(snap));
    BOOST_TEST(snap.Write(0, Pattern("x", kBlock), kBlock) != 0, "a snapshot is read-only");
  }
  // One instant per array: its LUNs, in write order, show a cut c..c,
  // c-1..c-1; writes acknowledged before the create are in, writes begun
  // after it returned are not.
  auto one_instant = [&](size_t from, size_t to) {
    const uint64_t c = seen[from];
    bool dropped = false;
    for (size_t i = from; i < to; ++i) {
      if (seen[i] == c - 1) dropped = true;
      BOOST_TEST((seen[i] == (dropped ? c - 1 : c)),
                 "LUN " << i << " holds " << seen[i] << ", the first of its array " << c);
      BOOST_TEST(seen[i] >= before);
      BOOST_TEST(seen[i] <= after);
    }
  };
  one_instant(0, 3);
  one_instant(3, 5);
  // Fenced together, the two arrays' LUNs hold one instant across both: the
  // writer's order runs a1..a3, b1, b2. Each array saw its fence start.
  if (fenced) {
    one_instant(0, 5);
    for (int i = 0; i < 2; ++i) {
      HttpResponse requests = f.Rest(i, "GET", "/mock/requests");
      BOOST_TEST(requests.body.find("\"Fence.Create\"") != std::string::npos, requests.body);
    }
  }

  // --attach needs the kernel's iSCSI initiator; where it is missing (as on
  // these machines) it says so, and the exposure stays usable by URL.
  {
    const std::string id = snapshot_of[urls[0]];
    CommandResult attach = f.Cli({"expose", id, "--attach"});
    if (access("/sys/module/iscsi_tcp", F_OK) != 0) {
      BOOST_TEST(attach.exit_code != 0, attach.output);
      BOOST_TEST(attach.output.find("iscsi_tcp") != std::string::npos, attach.output);
      BOOST_TEST(attach.output.find("iscsi://") != std::string::npos, attach.output);
      rapidjson::Document shown = f.Json({"show", id});
      Lun still(Field(shown["snapshot"], "exposed_as"), HostLogin());
      BOOST_TEST(ReadCounter(still) == seen[0]);
    }
  }

  // The catalog and the arrays agree; deleting the set leaves nothing.
  CommandResult verify = f.Cli({"list", "--verify"});
  BOOST_TEST(verify.exit_code == 0, verify.output);
  for (const std::string& url : urls) {
    CommandResult u = f.Cli({"unexpose", snapshot_of[url]});
    BOOST_TEST(u.exit_code == 0, u.output);
  }
  CommandResult deleted = f.Cli({"delete", "--set", Field(doc, "set_id")});
  BOOST_TEST(deleted.exit_code == 0, deleted.output);
  f.ExpectNothingLeft();
}

BOOST_AUTO_TEST_CASE(one_set_over_two_arrays_and_a_cow_volume_holds_one_instant_per_array) {
  OneSetOverTwoArrays("swordfish");
}

// The same through the out-of-tree example driver and the mock's second
// dialect: a vendor's driver, loaded by path, gets the same guarantees.
BOOST_AUTO_TEST_CASE(the_same_over_twophase_arrays_through_the_example_driver) {
  OneSetOverTwoArrays("twophase");
}

}  // namespace
}  // namespace snapset::test
