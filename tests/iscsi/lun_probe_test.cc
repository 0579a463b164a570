// The LUN probe against real mock arrays: it reads the identity the REST API
// reports (NAA, serial, capacity) over iSCSI, VerifyLun tells a wrong LUN
// from the right one, logins the array refuses (ACL, CHAP) and portals that
// never answer are Unavailable by the deadline, malformed URLs are refused,
// and no CHAP secret shows in any error.
#define BOOST_TEST_MODULE iscsi_lun_probe
#include "providers/iscsi/lun_probe.hpp"

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cctype>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/mock-array/connections.hpp"
#include "tests/mock-array/mock_array_process.hpp"
#include "tests/support/loopback_port.hpp"
#include "tests/support/prerequisites.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

using iscsi::LunIdentity;
using iscsi::ProbeLun;
using iscsi::VerifyLun;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";
constexpr char kFaults[] = "/mock/faults";
constexpr char kChapUser[] = "host7";
constexpr char kChapSecret[] = "chap-s3cret-0f-h0st7";
constexpr char kWrongSecret[] = "wr0ng-chap-s3cret-x";
constexpr uint64_t kMiB = 1 << 20;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Every Status a test gets goes through here: it must name no CHAP secret.
// Also logged (--log_level=message), to read what a user would.
const Status& NoSecret(const Status& s) {
  BOOST_TEST_MESSAGE(s.ToString());
  BOOST_TEST(!Contains(s.message(), kChapSecret), s.message());
  BOOST_TEST(!Contains(s.message(), kWrongSecret), s.message());
  return s;
}
template <typename T>
const Status& NoSecret(const Result<T>& r) {
  return NoSecret(r.status());
}

#define REQUIRE_OK(expr)                                     \
  do {                                                       \
    const auto& _r = (expr);                                 \
    BOOST_REQUIRE_MESSAGE(_r.ok(), NoSecret(_r).ToString()); \
  } while (0)

Clock::time_point In(milliseconds ms) { return Clock::now() + ms; }
Clock::time_point Patient() { return In(milliseconds(20000)); }

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
}

iscsi::LunLogin AsInitiator(const std::string& iqn = kTestInitiator) {
  iscsi::LunLogin login;
  login.initiator_iqn = iqn;
  return login;
}

iscsi::LunLogin WithChap(const std::string& password) {
  iscsi::LunLogin login = AsInitiator();
  login.chap_user = kChapUser;
  login.chap_password = password;
  return login;
}

struct CreatedVolume {
  std::string path, naa, serial;
  uint64_t bytes = 0;
};

// One real mock array per test, logged in as its default administrator.
struct Array {
  Array() {
    if (!MockArrayAvailable()) return;
    process = std::make_unique<MockArrayProcess>(dir.str() + "/state");
    token = process->Login();
  }
  bool ok() const { return process != nullptr; }

  // The identity the REST API reports, as a provider would read it.
  CreatedVolume CreateVolume(const std::string& name, uint64_t bytes, int block = 512) const {
    HttpResponse r = Http("POST", process->Url(kVolumes),
                          R"({"Name":")" + name + R"(","CapacityBytes":)" + std::to_string(bytes) +
                              R"(,"BlockSizeBytes":)" + std::to_string(block) + "}",
                          token);
    if (r.status == 202) r = PollTaskMonitor(process->Url(r.headers["location"]), token);
    BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
    rapidjson::Document doc = r.Json();
    return {doc["@odata.id"].GetString(), doc["Identifiers"][0]["DurableName"].GetString(),
            doc["Oem"]["Snapset"]["SerialNumber"].GetString(), bytes};
  }
  // The iscsi:// URL of `volume` mapped to kTestInitiator, with CHAP when
  // `chap` is set.
  std::string Expose(const CreatedVolume& volume, bool chap = false) const {
    ConnectionRequest request;
    request.volumes = {volume.path};
    if (chap) {
      request.chap_user = kChapUser;
      request.chap_password = kChapSecret;
    }
    return Connect(*process, token, request).urls.at(0);
  }
  void ArmFault(const std::string& body) const {
    HttpResponse r = Http("POST", process->Url(kFaults), body, token);
    BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  }

  TempDir dir;
  std::unique_ptr<MockArrayProcess> process;
  std::string token;
};

// An array whose iSCSI service hangs: the handshake completes, nothing answers.
std::string SilentUrl(const LoopbackPort& portal) {
  return "iscsi://127.0.0.1:" + std::to_string(portal.port()) +
         "/iqn.2026-11.io.snapset.test:silent/1";
}

BOOST_AUTO_TEST_CASE(probe_reads_the_naa_serial_and_capacity_the_array_reports) {
  Array array;
  if (!array.ok()) return;
  const CreatedVolume volume = array.CreateVolume("db", 3 * kMiB, 4096);
  const std::string url = array.Expose(volume);
  Result<LunIdentity> identity = ProbeLun(url, AsInitiator(), Patient());
  REQUIRE_OK(identity);
  BOOST_TEST(identity->naa == Lower(volume.naa));
  BOOST_TEST(identity->serial == volume.serial);
  BOOST_TEST(identity->capacity_bytes == 3 * kMiB);
  BOOST_TEST(identity->block_size == 4096u);
}

BOOST_AUTO_TEST_CASE(verify_accepts_the_right_identity_in_any_case) {
  Array array;
  if (!array.ok()) return;
  const CreatedVolume volume = array.CreateVolume("db", 2 * kMiB);
  const std::string url = array.Expose(volume);
  REQUIRE_OK(VerifyLun(url, AsInitiator(), volume.naa, volume.bytes, Patient()));
  REQUIRE_OK(VerifyLun(url, AsInitiator(), "naa." + Upper(volume.naa), volume.bytes, Patient()));
}

BOOST_AUTO_TEST_CASE(verify_names_both_naas_when_the_lun_is_another_volume) {
  Array array;
  if (!array.ok()) return;
  const CreatedVolume exposed = array.CreateVolume("exposed", 2 * kMiB);
  const CreatedVolume expected = array.CreateVolume("expected", 2 * kMiB);
  const std::string url = array.Expose(exposed);
  const Status s = VerifyLun(url, AsInitiator(), expected.naa, expected.bytes, Patient());
  BOOST_TEST(NoSecret(s).IsBadState(), s.ToString());
  BOOST_TEST(Contains(s.message(), url), s.message());
  BOOST_TEST(Contains(s.message(), Lower(expected.naa)), s.message());
  BOOST_TEST(Contains(s.message(), Lower(exposed.naa)), s.message());
}

BOOST_AUTO_TEST_CASE(verify_names_both_capacities_when_the_size_differs) {
  Array array;
  if (!array.ok()) return;
  const CreatedVolume volume = array.CreateVolume("db", 2 * kMiB);
  const std::string url = array.Expose(volume);
  const Status s = VerifyLun(url, AsInitiator(), volume.naa, 4 * kMiB, Patient());
  BOOST_TEST(NoSecret(s).IsBadState(), s.ToString());
  BOOST_TEST(Contains(s.message(), url), s.message());
  BOOST_TEST(Contains(s.message(), Lower(volume.naa)), s.message());
  BOOST_TEST(Contains(s.message(), std::to_string(4 * kMiB)), s.message());
  BOOST_TEST(Contains(s.message(), std::to_string(2 * kMiB)), s.message());
}

BOOST_AUTO_TEST_CASE(an_initiator_the_acl_does_not_allow_is_unavailable_quickly) {
  Array array;
  if (!array.ok()) return;
  const std::string url = array.Expose(array.CreateVolume("db", kMiB));
  const auto start = Clock::now();
  Result<LunIdentity> r =
      ProbeLun(url, AsInitiator("iqn.2026-11.io.snapset.test:stranger"), In(milliseconds(10000)));
  BOOST_TEST(NoSecret(r).Is(Code::kUnavailable), r.status().ToString());
  BOOST_TEST(Contains(r.status().message(), url), r.status().message());
  BOOST_TEST(Contains(r.status().message(), "logging in"), r.status().message());
  BOOST_TEST(MsSince(start) < 3000);  // refused, not timed out
}

BOOST_AUTO_TEST_CASE(chap_logs_in_with_the_right_secret_only_and_never_shows_one) {
  Array array;
  if (!array.ok()) return;
  const CreatedVolume volume = array.CreateVolume("db", kMiB);
  const std::string url = array.Expose(volume, /*chap=*/true);
  Result<LunIdentity> right = ProbeLun(url, WithChap(kChapSecret), Patient());
  REQUIRE_OK(right);
  BOOST_TEST(right->naa == Lower(volume.naa));

  const auto start = Clock::now();
  Result<LunIdentity> wrong = ProbeLun(url, WithChap(kWrongSecret), In(milliseconds(10000)));
  BOOST_TEST(NoSecret(wrong).Is(Code::kUnavailable), wrong.status().ToString());
  BOOST_TEST(Contains(wrong.status().message(), url), wrong.status().message());
  BOOST_TEST(MsSince(start) < 3000);

  Result<LunIdentity> none = ProbeLun(url, AsInitiator(), In(milliseconds(10000)));
  BOOST_TEST(NoSecret(none).Is(Code::kUnavailable), none.status().ToString());
  const Status verify = VerifyLun(url, WithChap(kWrongSecret), volume.naa, volume.bytes, Patient());
  BOOST_TEST(NoSecret(verify).Is(Code::kUnavailable), verify.ToString());
}

BOOST_AUTO_TEST_CASE(a_portal_that_never_answers_is_unavailable_at_the_deadline) {
  const LoopbackPort portal(LoopbackPort::kSilent);
  const auto start = Clock::now();
  Result<LunIdentity> r = ProbeLun(SilentUrl(portal), AsInitiator(), In(milliseconds(1500)));
  const int64_t elapsed = MsSince(start);
  BOOST_TEST(NoSecret(r).Is(Code::kUnavailable), r.status().ToString());
  BOOST_TEST(Contains(r.status().message(), SilentUrl(portal)), r.status().message());
  BOOST_TEST(Contains(r.status().message(), "timed out after"), r.status().message());
  BOOST_TEST(elapsed >= 1400);        // it waited for an answer ...
  BOOST_TEST(elapsed < 1500 + 2000);  // ... but not past the deadline
}

BOOST_AUTO_TEST_CASE(a_deadline_already_passed_is_unavailable_at_once) {
  const LoopbackPort portal(LoopbackPort::kSilent);
  const auto start = Clock::now();
  Result<LunIdentity> r = ProbeLun(SilentUrl(portal), AsInitiator(), Clock::now());
  BOOST_TEST(NoSecret(r).Is(Code::kUnavailable), r.status().ToString());
  BOOST_TEST(MsSince(start) < 1000);
}

BOOST_AUTO_TEST_CASE(an_offline_target_is_unavailable_by_the_deadline) {
  Array array;
  if (!array.ok()) return;
  const CreatedVolume volume = array.CreateVolume("db", kMiB);
  const std::string url = array.Expose(volume);
  array.ArmFault(R"({"Operation":"iSCSI","Mode":"TargetOffline"})");
  const auto start = Clock::now();
  const Status s = VerifyLun(url, AsInitiator(), volume.naa, volume.bytes, In(milliseconds(2000)));
  BOOST_TEST(NoSecret(s).Is(Code::kUnavailable), s.ToString());
  BOOST_TEST(Contains(s.message(), url), s.message());
  BOOST_TEST(MsSince(start) < 2000 + 2000);
}

BOOST_AUTO_TEST_CASE(a_lun_the_target_does_not_have_is_not_found) {
  Array array;
  if (!array.ok()) return;
  const std::string url = array.Expose(array.CreateVolume("db", kMiB));
  const std::string missing = url.substr(0, url.rfind('/')) + "/9";
  Result<LunIdentity> r = ProbeLun(missing, AsInitiator(), Patient());
  BOOST_TEST(NoSecret(r).IsNotFound(), r.status().ToString());
  BOOST_TEST(Contains(r.status().message(), missing), r.status().message());
}

BOOST_AUTO_TEST_CASE(malformed_urls_and_logins_are_invalid_arguments) {
  const std::string target = "iqn.2026-11.io.snapset.test:t";
  const std::vector<std::string> urls = {
      "",
      "not-a-url",
      "http://127.0.0.1:3260/" + target + "/1",
      "iscsi://127.0.0.1:3260/" + target,
      "iscsi://127.0.0.1:3260//1",
      "iscsi://127.0.0.1:99999/" + target + "/1",
      "iscsi://127.0.0.1:3260/" + target + "/99999",
      "iscsi://" + std::string(kChapUser) + "%" + kChapSecret + "@127.0.0.1:3260/" + target + "/1",
  };
  for (const std::string& url : urls) {
    Result<LunIdentity> r = ProbeLun(url, AsInitiator(), Patient());
    BOOST_TEST(NoSecret(r).IsInvalidArgument(), "'" << url << "': " << r.status().ToString());
  }
  const std::string good = "iscsi://127.0.0.1:3260/" + target + "/1";
  BOOST_TEST(ProbeLun(good, AsInitiator(""), Patient()).status().IsInvalidArgument());
  BOOST_TEST(VerifyLun(good, AsInitiator(), "not-an-naa", kMiB, Patient()).IsInvalidArgument());
}

}  // namespace
}  // namespace snapset::test
