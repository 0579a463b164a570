// The NAA volume matcher against two real mock arrays: each volume is found
// on the array that holds it; a volume created after a lookup is found with
// one inventory refresh; a snapshot is not a volume; an unknown NAA names
// every array; a stopped array hides only its own volumes; concurrent
// lookups are correct and refresh once.
#define BOOST_TEST_MODULE iscsi_volume_matcher
#include "providers/iscsi/volume_matcher.hpp"

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cctype>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "swordfish_driver.hpp"
#include "tests/mock-array/mock_array_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

using iscsi::NamedDialect;
using iscsi::VolumeMatch;
using iscsi::VolumeMatcher;
using snapset::rest::RestEndpoint;
using snapset::swordfish::SwordfishDriver;
using std::chrono::milliseconds;

constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct Created {
  std::string path, naa;
};

// One mock array (admin/admin) and a dialect of the matcher's own.
struct Array {
  Array() {
    process = std::make_unique<MockArrayProcess>(dir.str() + "/state");
    token = process->Login();
    dialect = std::make_unique<SwordfishDriver>(Endpoint());
  }
  RestEndpoint Endpoint() const {
    RestEndpoint e;
    e.base_url = process->rest();
    e.user = "admin";
    e.password = "admin";
    e.connect_timeout = milliseconds(1000);
    return e;
  }
  HttpResponse Send(const std::string& path, const std::string& body) const {
    HttpResponse r = Http("POST", process->Url(path), body, token);
    if (r.status == 202) r = PollTaskMonitor(process->Url(r.headers["location"]), token);
    return r;
  }
  Created Volume(const std::string& name) const {
    HttpResponse r = Send(kVolumes, R"({"Name":")" + name + R"(","CapacityBytes":1048576})");
    BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
    rapidjson::Document doc = r.Json();
    return {doc["@odata.id"].GetString(), doc["Identifiers"][0]["DurableName"].GetString()};
  }
  Created Snapshot(const Created& source, const std::string& name) const {
    HttpResponse r = Send(source.path + "/Actions/Volume.CreateReplicaTarget",
                          R"({"ReplicaType":"Snapshot","TargetVolumeName":")" + name + "\"}");
    BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
    rapidjson::Document doc = r.Json();
    return {doc["@odata.id"].GetString(), doc["Identifiers"][0]["DurableName"].GetString()};
  }
  TempDir dir;
  std::unique_ptr<MockArrayProcess> process;
  std::string token;
  std::unique_ptr<SwordfishDriver> dialect;
};

// The NAA as snapset_volume carries it: lower-case hex, no prefix.
std::string Naa(const std::string& durable_name) {
  std::string s = durable_name.rfind("naa.", 0) == 0 ? durable_name.substr(4) : durable_name;
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Arrays "a" (volumes db, log) and "b" (volume web).
struct TwoArrays {
  TwoArrays() {
    if (!MockArrayAvailable()) return;
    a = std::make_unique<Array>();
    b = std::make_unique<Array>();
    db = a->Volume("db");
    log = a->Volume("log");
    web = b->Volume("web");
  }
  bool ok() const { return a != nullptr; }
  std::unique_ptr<VolumeMatcher> Matcher(milliseconds timeout = milliseconds(10000)) const {
    return std::make_unique<VolumeMatcher>(
        std::vector<NamedDialect>{{"a", a->dialect.get()}, {"b", b->dialect.get()}}, timeout);
  }
  std::unique_ptr<Array> a, b;
  Created db, log, web;
};

VolumeMatch Found(VolumeMatcher& m, const std::string& naa) {
  Result<VolumeMatch> r = m.Find(naa);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return *r;
}

Status NotFound(VolumeMatcher& m, const std::string& naa) {
  Result<VolumeMatch> r = m.Find(naa);
  BOOST_REQUIRE_MESSAGE(!r.ok(), "matched: " + (r.ok() ? r->reason : ""));
  return r.status();
}

BOOST_AUTO_TEST_CASE(each_volume_is_found_on_the_array_that_holds_it) {
  TwoArrays t;
  if (!t.ok()) return;
  std::unique_ptr<VolumeMatcher> m = t.Matcher();
  for (const auto& [array, created, name] :
       {std::tuple{"a", t.db, "db"}, std::tuple{"a", t.log, "log"},
        std::tuple{"b", t.web, "web"}}) {
    const VolumeMatch match = Found(*m, Naa(created.naa));
    BOOST_TEST(match.array == array);
    BOOST_TEST(match.volume.name == name);
    BOOST_TEST(match.volume.id == created.path);
    BOOST_TEST(match.volume.naa == Naa(created.naa));
    BOOST_TEST(!match.volume.is_snapshot());
    BOOST_TEST(Has(match.reason, std::string("array \"") + array + "\""), match.reason);
    BOOST_TEST(Has(match.reason, Naa(created.naa)), match.reason);
    BOOST_TEST(Has(match.reason, std::string("volume \"") + name + "\""), match.reason);
  }
  // The first lookup loaded both inventories; the others were cache hits.
  BOOST_TEST(m->refreshes("a") == 1);
  BOOST_TEST(m->refreshes("b") == 1);
  // Upper case and a naa. prefix name the same unit.
  std::string upper = Naa(t.web.naa);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  BOOST_TEST(Found(*m, "naa." + upper).array == "b");
  BOOST_TEST(m->refreshes("b") == 1);
}

BOOST_AUTO_TEST_CASE(a_volume_created_after_a_lookup_is_found_with_one_refresh) {
  TwoArrays t;
  if (!t.ok()) return;
  std::unique_ptr<VolumeMatcher> m = t.Matcher();
  BOOST_TEST(Found(*m, Naa(t.db.naa)).array == "a");
  const Created late = t.b->Volume("late");
  const int requests_a = int(t.a->dialect->counters().requests);
  const VolumeMatch match = Found(*m, Naa(late.naa));
  BOOST_TEST(match.array == "b");
  BOOST_TEST(match.volume.name == "late");
  // One miss: each array's inventory asked for exactly once more.
  BOOST_TEST(m->refreshes("a") == 2);
  BOOST_TEST(m->refreshes("b") == 2);
  BOOST_TEST(int(t.a->dialect->counters().requests) > requests_a);
  // Now cached: no more refreshes.
  BOOST_TEST(Found(*m, Naa(late.naa)).array == "b");
  BOOST_TEST(m->refreshes("b") == 2);
}

BOOST_AUTO_TEST_CASE(a_snapshot_is_not_matched_as_a_volume) {
  TwoArrays t;
  if (!t.ok()) return;
  const Created snap = t.a->Snapshot(t.db, "db.monday");
  std::unique_ptr<VolumeMatcher> m = t.Matcher();
  const Status s = NotFound(*m, Naa(snap.naa));
  BOOST_TEST(s.IsVolumeNotSupported(), s.ToString());
  BOOST_TEST(Has(s.message(), "array \"a\""), s.message());
  BOOST_TEST(Has(s.message(), "snapshot \"db.monday\""), s.message());
  BOOST_TEST(Has(s.message(), "volume \"db\""), s.message());
  BOOST_TEST(Has(s.message(), "not a source"), s.message());
  // Its source still is one.
  BOOST_TEST(Found(*m, Naa(t.db.naa)).volume.name == "db");
  // A snapshot found in the cache needs no refresh: it will not become a volume.
  BOOST_TEST(!m->Find(Naa(snap.naa)).ok());
  BOOST_TEST(m->refreshes("a") == 1);
}

BOOST_AUTO_TEST_CASE(an_unknown_naa_names_every_array_and_what_it_holds) {
  TwoArrays t;
  if (!t.ok()) return;
  std::unique_ptr<VolumeMatcher> m = t.Matcher();
  const std::string unknown = "6" + std::string(31, '0');
  const Status s = NotFound(*m, unknown);
  BOOST_TEST(s.IsVolumeNotSupported(), s.ToString());
  BOOST_TEST(Has(s.message(), "no configured array holds NAA " + unknown), s.message());
  BOOST_TEST(Has(s.message(), "\"a\" (2 volumes, 0 snapshots)"), s.message());
  BOOST_TEST(Has(s.message(), "\"b\" (1 volume, 0 snapshots)"), s.message());
  // Each miss refreshes each array once, no more.
  BOOST_TEST(m->refreshes("a") == 1);
  BOOST_TEST(m->refreshes("b") == 1);
  BOOST_TEST(!m->Find(unknown).ok());
  BOOST_TEST(m->refreshes("a") == 2);
  BOOST_TEST(m->refreshes("b") == 2);
  // Not an NAA at all: refused before any array is asked.
  const Result<VolumeMatch> bad = m->Find("6001405xyz");
  BOOST_TEST(bad.status().IsInvalidArgument(), bad.status().ToString());
  BOOST_TEST(m->refreshes("a") == 2);
}

BOOST_AUTO_TEST_CASE(a_stopped_array_hides_only_its_own_volumes) {
  TwoArrays t;
  if (!t.ok()) return;
  std::unique_ptr<VolumeMatcher> warm = t.Matcher(milliseconds(3000));
  BOOST_TEST(Found(*warm, Naa(t.web.naa)).array == "b");
  t.b->process->Stop();

  // A fresh matcher: b cannot be asked, so its volume is found nowhere;
  // "cannot tell now" (it may be on b), with the reason; a's volumes are
  // still found.
  std::unique_ptr<VolumeMatcher> m = t.Matcher(milliseconds(3000));
  BOOST_TEST(Found(*m, Naa(t.db.naa)).array == "a");
  const Status s = NotFound(*m, Naa(t.web.naa));
  BOOST_TEST((s.code() == Code::kUnavailable), s.ToString());
  BOOST_TEST(Has(s.message(), "\"a\" (2 volumes"), s.message());
  BOOST_TEST(Has(s.message(), "\"b\" (unreachable: "), s.message());
  BOOST_TEST(Has(s.message(), t.b->process->rest()), s.message());

  // The matcher that knew b answers from its cache (see the header), and
  // b's failing refresh does not hide a volume new on a.
  BOOST_TEST(Found(*warm, Naa(t.web.naa)).array == "b");
  const Created late = t.a->Volume("late");
  BOOST_TEST(Found(*warm, Naa(late.naa)).array == "a");
  BOOST_TEST(warm->refreshes("b") == 2);
}

BOOST_AUTO_TEST_CASE(concurrent_lookups_are_answered_right_and_refresh_once) {
  TwoArrays t;
  if (!t.ok()) return;
  std::unique_ptr<VolumeMatcher> m = t.Matcher();
  const std::vector<std::pair<std::string, std::string>> wanted = {
      {Naa(t.db.naa), "a"}, {Naa(t.log.naa), "a"}, {Naa(t.web.naa), "b"}};
  std::vector<std::string> got(12);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      Result<VolumeMatch> r = m->Find(wanted[i % wanted.size()].first);
      got[i] = r.ok() ? r->array : r.status().ToString();
    });
  }
  for (std::thread& th : threads) th.join();
  for (size_t i = 0; i < got.size(); ++i) BOOST_TEST(got[i] == wanted[i % wanted.size()].second);
  BOOST_TEST(m->refreshes("a") == 1);
  BOOST_TEST(m->refreshes("b") == 1);
}

BOOST_AUTO_TEST_CASE(an_array_configured_twice_is_an_error_not_a_guess) {
  TwoArrays t;
  if (!t.ok()) return;
  SwordfishDriver again(t.a->Endpoint());
  VolumeMatcher m({{"a", t.a->dialect.get()}, {"a-again", &again}});
  const Status s = NotFound(m, Naa(t.db.naa));
  BOOST_TEST(s.IsBadState(), s.ToString());
  BOOST_TEST(Has(s.message(), "\"a\" and \"a-again\""), s.message());
}

}  // namespace
}  // namespace snapset::test
