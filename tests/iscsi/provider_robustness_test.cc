// The iSCSI provider when the world around a set misbehaves: an array that
// stalls past the commit window, an array restarted between sets, session
// tokens that expire, TLS with the right and the wrong CA, secrets that must
// never reach an output, a log or the catalog, and a registration a user got
// wrong. Each case runs over both dialects of the mock array: Swordfish with
// the built-in driver, and twophase (fence, then commit as a job) with the
// example driver.
#define BOOST_TEST_MODULE iscsi_provider_robustness_test
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "tests/iscsi/provider_fixture.hpp"
#include "tests/mock-array/test_pki.hpp"

namespace snapset::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

// snapset's exit codes (tools/exit_codes.hpp, docs/cli.md).
constexpr int kHoldWritesTimeout = 9;

std::vector<std::string> With(std::vector<std::string> head, const std::vector<std::string>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

// The first event of the timeline with this lane prefix and step, or null.
const rapidjson::Value* Event(const rapidjson::Value& timeline, const std::string& lane_prefix,
                              const std::string& step) {
  for (const auto& e : timeline["events"].GetArray()) {
    if (Field(e, "lane").rfind(lane_prefix, 0) == 0 && Field(e, "step") == step) return &e;
  }
  return nullptr;
}

// The dialect's group snapshot request: the one the window waits for.
std::string CommitOperation(const ProviderFixture& f) {
  return f.twophase() ? "ConsistencyGroup.Snapshot" : "ConsistencyGroup.CreateReplicaTarget";
}

void ACommitStalledPastTheWindow(const std::string& dialect) {
  if (!ProviderFixtureAvailable(/*cow=*/true)) return;
  ProviderFixtureOptions o;
  o.dialect = dialect;
  o.cow = true;  // a volume whose writes are really held, by the cow daemon's gate
  ProviderFixture f(o);
  const std::vector<std::string> volumes = With(f.Urls(), {"cow:db"});
  // Array b answers its group snapshot two seconds after the 10 s window
  // (twophase: the commit's POST, under the fence, which times out at the
  // window's deadline).
  f.Fault(1, R"({"Operation":")" + CommitOperation(f) + R"(","Mode":"Delay","DelayMs":12000})");

  const auto start = steady_clock::now();
  CommandResult r = f.Cli(With({"--json", "create"}, volumes));
  const auto took = steady_clock::now() - start;
  BOOST_TEST(r.exit_code == kHoldWritesTimeout, r.output);
  // The window, then the abort: not the 12 s of the stalled request.
  BOOST_TEST((took < seconds(25)),
             "create took " << std::chrono::duration_cast<milliseconds>(took).count() << " ms");
  rapidjson::Document doc = JsonOfOutput(r.output);
  BOOST_TEST(Field(doc["error"], "message").find("commit window") != std::string::npos, r.output);
  // The provider answers just before the window ends, naming the array that
  // did not answer.
  BOOST_TEST(Field(doc["error"], "message").find("array b") != std::string::npos, r.output);
  // Writes were held for the window and released at its deadline.
  const double held_s = static_cast<double>(doc["hold_ns"].GetInt64()) / 1e9;
  BOOST_TEST(held_s > 9.0, "writes held " << held_s << " s");
  BOOST_TEST(held_s < 11.5, "writes held " << held_s << " s");
  const rapidjson::Value* window = Event(doc["timeline"], "set", "commit window");
  const rapidjson::Value* released = Event(doc["timeline"], "volume:", "released");
  BOOST_TEST_REQUIRE(window != nullptr, r.output);
  BOOST_TEST_REQUIRE(released != nullptr, r.output);
  const double release_s =
      static_cast<double>((*released)["t_ns"].GetInt64() - (*window)["t_ns"].GetInt64()) / 1e9;
  BOOST_TEST(release_s > 9.5, "released " << release_s << " s into the window");
  BOOST_TEST(release_s < 11.0, "released " << release_s << " s into the window");
  for (const auto& abort : doc["aborts"].GetArray()) {
    BOOST_TEST(Field(abort, "outcome") == "ok", r.output);
  }

  // No LUN stays fenced past the window.
  f.ExpectEveryLunWritable();

  // The stalled request reaches the array after the abort: it must find no
  // group to snapshot, so no replica appears late.
  const auto stalled_done = start + seconds(15);
  if (steady_clock::now() < stalled_done) std::this_thread::sleep_until(stalled_done);
  f.ExpectNothingLeft();
  CommandResult verify = f.Cli({"list", "--verify"});
  BOOST_TEST(verify.exit_code == 0, verify.output);
}

BOOST_AUTO_TEST_CASE(
    a_commit_stalled_past_the_window_releases_writes_at_the_deadline_and_leaves_nothing) {
  ACommitStalledPastTheWindow("swordfish");
}

// Over twophase arrays the LUNs' writes are held by the arrays' fences too
// (the plan says array-fence): they are released at the deadline as well.
BOOST_AUTO_TEST_CASE(the_same_over_twophase_arrays_with_fences) {
  ACommitStalledPastTheWindow("twophase");
}

void AnArrayRestartedBetweenSets(const std::string& dialect) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixtureOptions o;
  o.dialect = dialect;
  ProviderFixture f(o);
  rapidjson::Document first = f.Create(f.Urls());
  f.RestartArray(0);  // sessions gone, new ports; the replicas persist
  rapidjson::Document second = f.Create(f.Urls());
  BOOST_TEST(second["snapshots"].Size() == 5u);
  BOOST_TEST(f.Snapshots(0) == 6);
  BOOST_TEST(f.Snapshots(1) == 4);
  CommandResult verify = f.Cli({"list", "--verify"});
  BOOST_TEST(verify.exit_code == 0, verify.output);
  for (const rapidjson::Document* set : {&first, &second}) {
    CommandResult deleted = f.Cli({"delete", "--set", Field(*set, "set_id")});
    BOOST_TEST(deleted.exit_code == 0, deleted.output);
  }
  f.ExpectNothingLeft();
}

// An array whose fence request arrives only after the window (twophase only:
// Swordfish has no fence). The set fails by the window's deadline, naming
// the array, and no LUN's writes are held afterwards, not even by the late
// fence.
//
// The late fence request carries its end as a time (array ABI 1.1
// expires_realtime_ns): the array refuses it on arrival, so it holds no
// write after the set failed.
BOOST_AUTO_TEST_CASE(a_fence_request_stalled_past_the_window_leaves_no_lun_fenced) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixtureOptions o;
  o.dialect = "twophase";
  ProviderFixture f(o);
  // Array b makes its fence two seconds after the 10 s window.
  f.Fault(1, R"({"Operation":"Fence.Create","Mode":"Delay","DelayMs":12000})");
  const auto start = steady_clock::now();
  CommandResult r = f.Cli(With({"--json", "create"}, f.Urls()));
  const auto took = steady_clock::now() - start;
  BOOST_TEST(r.exit_code == kHoldWritesTimeout, r.output);
  BOOST_TEST((took < seconds(25)),
             "create took " << std::chrono::duration_cast<milliseconds>(took).count() << " ms");
  rapidjson::Document doc = JsonOfOutput(r.output);
  BOOST_TEST(Field(doc["error"], "message").find("array b") != std::string::npos, r.output);
  for (const auto& abort : doc["aborts"].GetArray()) {
    BOOST_TEST(Field(abort, "outcome") == "ok", r.output);
  }

  // Once the stalled request has reached the array, b's writes go on.
  const auto stalled_done = start + seconds(13);
  if (steady_clock::now() < stalled_done) std::this_thread::sleep_until(stalled_done);
  f.ExpectEveryLunWritable();
  f.ExpectNothingLeft();
  CommandResult verify = f.Cli({"list", "--verify"});
  BOOST_TEST(verify.exit_code == 0, verify.output);
}

BOOST_AUTO_TEST_CASE(an_array_restarted_between_sets_takes_the_next_set) {
  AnArrayRestartedBetweenSets("swordfish");
}

// A twophase array forgets its fences when it restarts, as a rebooted
// array would: the next set fences afresh.
BOOST_AUTO_TEST_CASE(the_same_over_twophase_arrays) { AnArrayRestartedBetweenSets("twophase"); }

void AnExpiredSessionToken(const std::string& dialect) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixtureOptions o;
  o.dialect = dialect;
  o.extra_a = {"--token-ttl-s", "2"};
  o.extra_b = {"--token-ttl-s", "2"};
  ProviderFixture f(o);
  rapidjson::Document first = f.Create(f.Urls());
  std::this_thread::sleep_for(seconds(3));
  rapidjson::Document second = f.Create(f.Urls());
  BOOST_TEST(second["snapshots"].Size() == 5u);
  std::this_thread::sleep_for(seconds(3));
  CommandResult verify = f.Cli({"list", "--verify"});
  BOOST_TEST(verify.exit_code == 0, verify.output);
  for (const rapidjson::Document* set : {&first, &second}) {
    CommandResult deleted = f.Cli({"delete", "--set", Field(*set, "set_id")});
    BOOST_TEST(deleted.exit_code == 0, deleted.output);
  }
  f.ExpectNothingLeft();
}

BOOST_AUTO_TEST_CASE(an_expired_session_token_does_not_fail_the_next_set) {
  AnExpiredSessionToken("swordfish");
}

// The twophase log-in (its own path, token field and X-TP-Session header)
// is redone the same way.
BOOST_AUTO_TEST_CASE(an_expired_twophase_session_token_does_not_fail_the_next_set) {
  AnExpiredSessionToken("twophase");
}

void HttpsArrays(const std::string& dialect) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixtureOptions o;
  o.dialect = dialect;
  o.tls = true;
  ProviderFixture f(o);
  rapidjson::Document made = f.Create(f.Urls());
  CommandResult deleted = f.Cli({"delete", "--set", Field(made, "set_id")});
  BOOST_TEST(deleted.exit_code == 0, deleted.output);

  // A CA that did not sign the arrays' certificate: no array is trusted.
  Pki other;
  BOOST_TEST_REQUIRE(other.ok);
  f.SetRegisteredCaFile(other.ca);
  CommandResult r = f.Cli(With({"create"}, f.Urls()));
  BOOST_TEST(r.exit_code != 0, r.output);
  BOOST_TEST(
      (r.output.find("certificate") != std::string::npos ||
       r.output.find("SSL") != std::string::npos || r.output.find("TLS") != std::string::npos),
      r.output);
  f.ExpectNothingLeft();
  // Nor can --verify vouch for arrays it cannot reach: it says so.
  CommandResult unverified = f.Cli({"list", "--verify"});
  BOOST_TEST(unverified.exit_code == 8, unverified.output);
  BOOST_TEST(unverified.output.find("certificate") != std::string::npos, unverified.output);
  // With the right CA again, the arrays and the catalog agree.
  f.SetRegisteredCaFile("");
  CommandResult verify = f.Cli({"list", "--verify"});
  BOOST_TEST(verify.exit_code == 0, verify.output);
}

BOOST_AUTO_TEST_CASE(https_arrays_work_with_their_ca_and_are_refused_with_another) {
  HttpsArrays("swordfish");
}

// The example driver reaches its arrays through the REST toolkit, whose TLS
// is the same: verified against ca_file, always.
BOOST_AUTO_TEST_CASE(https_twophase_arrays_work_with_their_ca_and_are_refused_with_another) {
  HttpsArrays("twophase");
}

// The registration's config for the fixture's arrays, with `a_extra` added
// to array a's entry and "insecure": true only when `insecure`.
std::string ConfigFor(ProviderFixture& f, const std::string& a_extra, bool insecure) {
  std::string arrays;
  for (int i = 0; i < 2; ++i) {
    const std::string name = i == 0 ? "a" : "b";
    arrays += std::string(i ? "," : "") + R"({"name":")" + name + R"(","driver":")" + f.driver() +
              R"(","rest_url":")" + f.array(i).rest() + R"(","credentials_file":")" +
              f.config_dir() + "/" + name + R"(.cred","portals":[")" + f.array(i).portal() + "\"]" +
              (insecure ? R"(,"insecure":true)" : "") +
              (i == 0 && !a_extra.empty() ? "," + a_extra : "") + "}";
  }
  return R"({"initiator_iqn":")" + std::string(kHostInitiator) + R"(","arrays":[)" + arrays + "]}";
}

void ARegistrationWithAMistake(const std::string& dialect) {
  if (!ProviderFixtureAvailable()) return;
  ProviderFixtureOptions o;
  o.dialect = dialect;
  ProviderFixture f(o);
  const std::vector<std::string> create = With({"create"}, f.Urls());

  // A typo in a key never passes silently.
  f.WriteProviderConfig(ConfigFor(f, R"("timeout_ms": {"request": 3000})", true));
  for (const auto& args : {std::vector<std::string>{"providers", "list"}, create}) {
    CommandResult r = f.Cli(args);
    BOOST_TEST(r.exit_code != 0, r.output);
    BOOST_TEST(r.output.find("arrays[0].timeout_ms") != std::string::npos, r.output);
  }

  // Plain http needs the user to say so.
  f.WriteProviderConfig(ConfigFor(f, "", false));
  CommandResult http = f.Cli(create);
  BOOST_TEST(http.exit_code != 0, http.output);
  BOOST_TEST(http.output.find("arrays[0].rest_url") != std::string::npos, http.output);
  BOOST_TEST(http.output.find("insecure") != std::string::npos, http.output);

  // A credentials file others may read is refused, and the fix is named.
  f.WriteProviderConfig(ConfigFor(f, "", true));
  const std::string cred = f.config_dir() + "/a.cred";
  BOOST_TEST_REQUIRE(chmod(cred.c_str(), 0644) == 0);
  for (const auto& args : {std::vector<std::string>{"providers", "list"}, create}) {
    CommandResult r = f.Cli(args);
    BOOST_TEST(r.exit_code != 0, r.output);
    BOOST_TEST(r.output.find(cred) != std::string::npos, r.output);
    BOOST_TEST(r.output.find("chmod 600") != std::string::npos, r.output);
  }
  BOOST_TEST_REQUIRE(chmod(cred.c_str(), 0600) == 0);
  rapidjson::Document fixed = f.Create(f.Urls());
  CommandResult deleted = f.Cli({"delete", "--set", Field(fixed, "set_id")});
  BOOST_TEST(deleted.exit_code == 0, deleted.output);
  f.ExpectNothingLeft();
}

BOOST_AUTO_TEST_CASE(a_registration_with_a_mistake_is_refused_naming_the_field_or_file) {
  ARegistrationWithAMistake("swordfish");
}

// The same mistakes in an entry whose driver is the example one, loaded by
// path: the driver checks its keys with the REST toolkit, and the messages
// name the same field or file.
BOOST_AUTO_TEST_CASE(the_same_with_the_twophase_driver) { ARegistrationWithAMistake("twophase"); }

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void NoSecretReachesAnOutput(const std::string& dialect) {
  if (!ProviderFixtureAvailable()) return;
  constexpr char kPassword[] = "Pw-7d41c9e2-not-for-print";
  constexpr char kChapSecret[] = "Cs5b2e9d0c71aa";  // tgt: 12..16 characters
  TempDir secrets;
  const std::string chap_file =
      secrets.Write("a.chap", R"({"CHAPUsername":"chap-host","CHAPPassword":")" +
                                  std::string(kChapSecret) + "\"}");
  BOOST_TEST_REQUIRE(chmod(chap_file.c_str(), 0600) == 0);
  ProviderFixtureOptions o;
  o.dialect = dialect;
  o.user = "ops-admin";
  o.password = kPassword;
  o.config_a = R"("chap_file": ")" + chap_file + "\"";
  ProviderFixture f(o);
  const std::vector<std::string> urls = f.Urls();
  std::vector<std::string> tokens = {f.token(0), f.token(1), f.Login(0), f.Login(1)};

  std::vector<CommandResult> runs;
  auto run = [&](const std::vector<std::string>& args) {
    runs.push_back(f.Cli(args));
    return runs.back();
  };
  std::string set_id;
  std::string snapshot;  // one on array a, the array with CHAP
  for (bool json : {false, true}) {
    const std::vector<std::string> mode =
        json ? std::vector<std::string>{"--json"} : std::vector<std::string>{"-vv"};
    CommandResult made = run(With(With(mode, {"create"}), urls));
    BOOST_TEST_REQUIRE(made.exit_code == 0, made.output);
    rapidjson::Document listed = f.Json({"list"});
    for (const auto& s : listed["snapshots"].GetArray()) {
      if (Field(s, "volume") == urls[0]) {
        snapshot = Field(s, "snapshot_id");
        set_id = Field(s, "set_id");
      }
    }
    BOOST_TEST_REQUIRE(!snapshot.empty());
    run(With(mode, {"list"}));
    run(With(mode, {"list", "--verify"}));
    run(With(mode, {"show", snapshot}));
    run(With(mode, {"show", set_id, "--timeline"}));
    CommandResult exposed = run(With(mode, {"expose", snapshot}));
    BOOST_TEST(exposed.exit_code == 0, exposed.output);
    run(With(mode, {"show", snapshot}));
    CommandResult unexposed = run(With(mode, {"unexpose", snapshot}));
    BOOST_TEST(unexposed.exit_code == 0, unexposed.output);
    run(With(mode, {"providers", "explain", urls[0], urls[4]}));
    run(With(mode, {"providers", "list"}));
    CommandResult deleted = run(With(mode, {"delete", "--set", set_id}));
    BOOST_TEST(deleted.exit_code == 0, deleted.output);
    // A failed set: its error and abort outcomes are printed too.
    f.Fault(0, R"({"Operation":")" + CommitOperation(f) + R"(","Mode":"Error","Status":500})");
    CommandResult failed = run(With(With(mode, {"create"}), urls));
    BOOST_TEST(failed.exit_code != 0, failed.output);
    f.ClearFaults(0);
    // A log-in the array refuses: its message must not quote the password.
    f.Fault(1, R"({"Operation":"Session.Create","Mode":"Error","Status":401,"Count":0})");
    CommandResult refused = run(With(With(mode, {"create"}), urls));
    BOOST_TEST(refused.exit_code != 0, refused.output);
    f.ClearFaults(1);
  }
  f.ExpectNothingLeft();

  std::vector<std::pair<std::string, std::string>> where;  // what, text
  for (size_t i = 0; i < runs.size(); ++i) {
    where.emplace_back("output of run " + std::to_string(i), runs[i].output);
  }
  // The catalog (catalog.db, as bytes) and anything else snapset keeps.
  for (const auto& e : std::filesystem::recursive_directory_iterator(f.state_dir())) {
    if (e.is_regular_file()) where.emplace_back(e.path().string(), ReadAll(e.path()));
  }
  BOOST_TEST(std::filesystem::exists(f.state_dir() + "/catalog.db"));
  std::vector<std::string> secret_values = {kPassword, kChapSecret};
  secret_values.insert(secret_values.end(), tokens.begin(), tokens.end());
  for (const auto& [what, text] : where) {
    for (const std::string& secret : secret_values) {
      const size_t at = text.find(secret);
      BOOST_TEST(at == std::string::npos,
                 what << " holds a secret (" << secret.substr(0, 4) << "...) at offset " << at);
    }
  }
}

BOOST_AUTO_TEST_CASE(no_secret_reaches_an_output_a_log_or_the_catalog) {
  NoSecretReachesAnOutput("swordfish");
}

// The example driver's own messages (its refusals quote the array's
// answers) go through the REST toolkit's redaction too.
BOOST_AUTO_TEST_CASE(no_secret_reaches_an_output_over_twophase_arrays) {
  NoSecretReachesAnOutput("twophase");
}

}  // namespace
}  // namespace snapset::test
