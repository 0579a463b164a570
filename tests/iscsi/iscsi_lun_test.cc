// SPDX-License-Identifier: Apache-2.0
// The SDK's iSCSI LUN toolkit (include/snapset/iscsi_lun.hpp) as a vendor
// uses it: URLs parsed and normalised, credentials refused or taken but
// never shown, NAAs ranked as the host ranks them, serials trimmed, and a
// probe of a real target (a private tgtd) that reads the identity, names the
// initiator a target refuses, and ends by its deadline however the portal
// behaves.
#define BOOST_TEST_MODULE iscsi_lun
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <snapset/iscsi_lun.hpp>
#include <string>
#include <vector>

#include "tests/support/loopback_port.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/tgtd.hpp"

namespace snapset::test {
namespace {

using iscsi::LunDesignator;
using iscsi::LunIdentity;
using iscsi::LunLogin;
using iscsi::LunUrl;
using iscsi::ParseLunUrl;
using iscsi::ProbeLun;
using iscsi::UrlCredentials;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kIqn[] = "iqn.2026-11.io.snapset.test:lun";
constexpr char kInitiator[] = "iqn.2026-11.io.snapset.test:initiator";
constexpr char kForm[] = "expected iscsi://host[:port]/target-iqn/lun";
constexpr uint64_t kDiskBytes = 8ull << 20;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

LunLogin As(const std::string& initiator = kInitiator) {
  LunLogin login;
  login.initiator_iqn = initiator;
  return login;
}

Clock::time_point In(milliseconds ms) { return Clock::now() + ms; }

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
}

// ---- URLs ----

BOOST_AUTO_TEST_CASE(a_url_is_normalised_to_one_canonical_name) {
  struct Case {
    std::string url, host;
    int port;
    std::string target;
    int lun;
    std::string canonical;
  };
  const std::vector<Case> cases = {
      {"iscsi://Array-1.Example.COM/iqn.2026-11.com.example:t/3", "array-1.example.com", 3260,
       "iqn.2026-11.com.example:t", 3,
       "iscsi://array-1.example.com:3260/iqn.2026-11.com.example:t/3"},
      {"iscsi://10.0.0.7:3261/iqn.x:y/0", "10.0.0.7", 3261, "iqn.x:y", 0,
       "iscsi://10.0.0.7:3261/iqn.x:y/0"},
      {"iscsi://[FD00::1]:03260/iqn.x:y/16383", "[fd00::1]", 3260, "iqn.x:y", 16383,
       "iscsi://[fd00::1]:3260/iqn.x:y/16383"},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT("url " << c.url) {
      Result<LunUrl> url = ParseLunUrl(c.url);
      BOOST_TEST_REQUIRE(url.ok(), url.status().ToString());
      BOOST_TEST(url->host == c.host);
      BOOST_TEST(url->port == c.port);
      BOOST_TEST(url->target_iqn == c.target);
      BOOST_TEST(url->lun == c.lun);
      BOOST_TEST(url->canonical == c.canonical);
      BOOST_TEST(url->chap_user.empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_malformed_url_is_an_invalid_argument_saying_why_and_the_form) {
  struct Case {
    std::string url, why;
  };
  const std::vector<Case> cases = {
      {"", "invalid iSCSI URL ''"},
      {"http://127.0.0.1/iqn.x:y/1", "invalid iSCSI URL"},
      {"iscsi://127.0.0.1/iqn.x:y", "invalid iSCSI URL"},
      {"iscsi://127.0.0.1//1", "no target IQN"},
      {"iscsi://127.0.0.1/iqn.x:y/one", "invalid iSCSI URL"},
      {"iscsi://127.0.0.1/iqn.x:y/16384", "LUN must be from 0 to 16383"},
      {"iscsi://127.0.0.1:0/iqn.x:y/1", "port must be a number from 1 to 65535"},
      {"iscsi://127.0.0.1:99999/iqn.x:y/1", "port must be a number from 1 to 65535"},
      {"iscsi:///iqn.x:y/1", "invalid iSCSI URL"},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT("url '" << c.url << "'") {
      const Status s = ParseLunUrl(c.url).status();
      BOOST_TEST(s.IsInvalidArgument(), s.ToString());
      BOOST_TEST(Contains(s.message(), c.why), s.message());
      BOOST_TEST(s.message().ends_with(kForm), s.message());
    }
  }
}

BOOST_AUTO_TEST_CASE(credentials_in_a_url_are_refused_unless_allowed_and_never_shown) {
  const std::string url = "iscsi://host7%s3cret-pw@127.0.0.1:3260/iqn.x:y/2";
  const Status refused = ParseLunUrl(url).status();
  BOOST_TEST(refused.IsInvalidArgument(), refused.ToString());
  BOOST_TEST(Contains(refused.message(), "credentials belong in the login"), refused.message());
  BOOST_TEST(!Contains(refused.message(), "s3cret-pw"), refused.message());

  Result<LunUrl> allowed = ParseLunUrl(url, UrlCredentials::kAllowed);
  BOOST_TEST_REQUIRE(allowed.ok(), allowed.status().ToString());
  BOOST_TEST(allowed->chap_user == "host7");
  BOOST_TEST(allowed->chap_password == "s3cret-pw");
  BOOST_TEST(allowed->canonical == "iscsi://127.0.0.1:3260/iqn.x:y/2");

  // A malformed one, where they are allowed, shows that form, and still no secret.
  const Status bad =
      ParseLunUrl("iscsi://host7%s3cret-pw@127.0.0.1/iqn.x:y/two", UrlCredentials::kAllowed)
          .status();
  BOOST_TEST(bad.IsInvalidArgument(), bad.ToString());
  BOOST_TEST(!Contains(bad.message(), "s3cret-pw"), bad.message());
  BOOST_TEST(Contains(bad.message(), "(credentials as user%password@host)"), bad.message());
}

// ---- names: NAA and serial ----

LunDesignator Naa(std::vector<uint8_t> value) {
  return LunDesignator{SNAPSET_DESIGNATOR_TYPE_NAA, 1, 0, std::move(value)};
}

BOOST_AUTO_TEST_CASE(the_most_unique_naa_names_the_lun_the_first_among_equals) {
  const LunDesignator vendor{SNAPSET_DESIGNATOR_TYPE_T10_VENDOR_ID, 2, 0, {0x61, 0x62}};
  const LunDesignator local = Naa({0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01});
  const LunDesignator ieee_extended = Naa({0x21, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08});
  const LunDesignator registered = Naa({0x50, 0x01, 0x40, 0x50, 0x00, 0x00, 0x00, 0x01});
  const LunDesignator extended = Naa({0x60, 0x01, 0x40, 0x5a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56,
                                      0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12});
  const LunDesignator extended_too = Naa({0x6f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  const LunDesignator empty = Naa({});
  struct Case {
    std::string what;
    std::vector<LunDesignator> designators;
    std::string naa;
  };
  const std::vector<Case> cases = {
      {"none", {}, ""},
      {"no NAA", {vendor}, ""},
      {"only an empty NAA", {empty}, ""},
      {"tgt: vendor, NAA-3, NAA-6", {vendor, local, extended}, "6001405abcdef0123456789abcdef012"},
      {"5 beats 2 beats 3", {local, ieee_extended, registered}, "5001405000000001"},
      {"2 beats 3", {local, ieee_extended}, "2102030405060708"},
      {"first of equals", {extended_too, extended}, "6fffffffffffffffffffffffffffffff"},
      {"empty NAA is skipped", {empty, local}, "3000000000000101"},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.what) { BOOST_TEST(iscsi::PreferredNaa(c.designators) == c.naa); }
  }
  BOOST_TEST(iscsi::NaaRank(extended.value) == 4);
  BOOST_TEST(iscsi::NaaRank(registered.value) == 3);
  BOOST_TEST(iscsi::NaaRank(ieee_extended.value) == 2);
  BOOST_TEST(iscsi::NaaRank(local.value) == 1);
  BOOST_TEST(iscsi::NaaRank(std::vector<uint8_t>{0x10, 0x01}) == 0);  // NAA field 1: not ranked
  BOOST_TEST(iscsi::NaaRank(empty.value) == -1);
}

BOOST_AUTO_TEST_CASE(a_serial_loses_its_padding_only) {
  BOOST_TEST(iscsi::TrimSerial("   beaf10") == "beaf10");
  BOOST_TEST(iscsi::TrimSerial(std::string_view("\tSN 42 \0\0", 9)) == "SN 42");
  BOOST_TEST(iscsi::TrimSerial("    ") == "");
  BOOST_TEST(iscsi::TrimSerial("") == "");
}

// ---- the probe, against portals that misbehave ----

std::string UrlAt(const LoopbackPort& portal) {
  return "iscsi://127.0.0.1:" + std::to_string(portal.port()) + "/" + kIqn + "/1";
}

BOOST_AUTO_TEST_CASE(an_empty_initiator_is_refused_before_the_url_is_read) {
  const Status s = ProbeLun("not a url", As(""), In(milliseconds(1000))).status();
  BOOST_TEST(s.IsInvalidArgument(), s.ToString());
  BOOST_TEST(s.message() == "iSCSI initiator name is empty");
}

BOOST_AUTO_TEST_CASE(a_refused_connection_is_unavailable_at_once_naming_the_url) {
  const LoopbackPort closed(LoopbackPort::kRefusing);
  const auto start = Clock::now();
  const Status s = ProbeLun(UrlAt(closed), As(), In(milliseconds(3000))).status();
  BOOST_TEST(s.Is(Code::kUnavailable), s.ToString());
  BOOST_TEST(Contains(s.message(), UrlAt(closed) + ": failed connecting: "), s.message());
  BOOST_TEST(MsSince(start) < 3000);
}

BOOST_AUTO_TEST_CASE(a_portal_that_never_answers_times_out_at_the_deadline_naming_the_step) {
  const LoopbackPort silent(LoopbackPort::kSilent);
  const auto start = Clock::now();
  const Status s = ProbeLun(UrlAt(silent), As(), In(milliseconds(700))).status();
  const int64_t took = MsSince(start);
  BOOST_TEST(s.Is(Code::kUnavailable), s.ToString());
  BOOST_TEST(s.message() == UrlAt(silent) + ": timed out after 700 ms logging in");
  BOOST_TEST(took >= 690);
  BOOST_TEST(took < 700 + 500);
}

BOOST_AUTO_TEST_CASE(a_deadline_already_passed_fails_at_once) {
  const LoopbackPort silent(LoopbackPort::kSilent);
  const auto start = Clock::now();
  const Status s = ProbeLun(UrlAt(silent), As(), Clock::now()).status();
  BOOST_TEST(s.Is(Code::kUnavailable), s.ToString());
  BOOST_TEST(Contains(s.message(), "timed out after 0 ms"), s.message());
  BOOST_TEST(MsSince(start) < 500);
}

BOOST_AUTO_TEST_CASE(a_name_that_does_not_resolve_is_unavailable_naming_it) {
  const Status s = ProbeLun(std::string("iscsi://no-such-host.invalid/") + kIqn + "/1", As(),
                            In(milliseconds(5000)))
                       .status();
  BOOST_TEST(s.Is(Code::kUnavailable), s.ToString());
  BOOST_TEST(Contains(s.message(), "no-such-host.invalid"), s.message());
}

// ---- the probe, against a real target ----

boost::test_tools::assertion_result TgtdUsable(boost::unit_test::test_unit_id) {
  if (InCi()) return true;
  const Status status = Tgtd::CheckPrerequisites();
  boost::test_tools::assertion_result result(status.ok());
  if (!status.ok()) result.message() << status.message() << " (with CI=true this fails instead)";
  return result;
}

// A private tgtd with LUN 1 of kIqn: an 8 MiB disk with a scsi_id and serial.
struct Target {
  Target() {
    Result<std::unique_ptr<Tgtd>> started = Tgtd::Start();
    BOOST_REQUIRE_MESSAGE(started.ok(), started.status().ToString());
    tgtd = std::move(*started);
    const auto file = files.path() / "lun1.img";
    std::ofstream(file).close();
    std::filesystem::resize_file(file, kDiskBytes);
    const Status added = tgtd->AddLun(kIqn, 1, file.string(), kScsiId, "snapset-lun-1");
    BOOST_REQUIRE_MESSAGE(added.ok(), added.ToString());
  }
  std::string Url(int lun = 1) const { return tgtd->url(kIqn, lun); }

  static constexpr char kScsiId[] = "0123456789abcdef0123456789abcdef";
  TempDir files;  // outlives tgtd, which holds the files open
  std::unique_ptr<Tgtd> tgtd;
};

BOOST_AUTO_TEST_SUITE(with_tgtd, *boost::unit_test::precondition(TgtdUsable))

BOOST_AUTO_TEST_CASE(the_probe_reads_designators_naa_serial_and_capacity) {
  Target target;
  Result<LunIdentity> lun = ProbeLun(target.Url(), As(), In(milliseconds(10000)));
  BOOST_TEST_REQUIRE(lun.ok(), lun.status().ToString());
  // tgt sends T10 vendor ID, NAA-3 (from target and LUN numbers), NAA-6
  // (from scsi_id, its top digit made 6), in that order on the wire.
  BOOST_TEST_REQUIRE(lun->designators.size() == 3u);
  BOOST_TEST(lun->designators[0].type == SNAPSET_DESIGNATOR_TYPE_T10_VENDOR_ID);
  BOOST_TEST((lun->designators[1].value.at(0) >> 4) == 3);
  BOOST_TEST(lun->naa == "6123456789abcdef0123456789abcdef");
  BOOST_TEST(lun->naa == iscsi::PreferredNaa(lun->designators));
  BOOST_TEST(lun->serial == "snapset-lun-1");
  BOOST_TEST(lun->capacity_bytes == kDiskBytes);
  BOOST_TEST(lun->block_size == 512u);
}

BOOST_AUTO_TEST_CASE(a_missing_lun_is_not_found) {
  Target target;
  const Status s = ProbeLun(target.Url(7), As(), In(milliseconds(10000))).status();
  BOOST_TEST(s.IsNotFound(), s.ToString());
  BOOST_TEST(s.message() == target.Url(7) + ": no such LUN at the target");
}

BOOST_AUTO_TEST_CASE(a_refused_log_in_names_the_initiator_and_the_callers_hint) {
  Target target;
  const Status restricted = target.tgtd->RestrictTo(kIqn, kInitiator);
  BOOST_REQUIRE_MESSAGE(restricted.ok(), restricted.ToString());
  LunLogin stranger = As("iqn.2026-11.io.snapset.test:stranger");
  stranger.refused_hint = "map it in the array's console";
  const auto start = Clock::now();
  const Status s = ProbeLun(target.Url(), stranger, In(milliseconds(10000))).status();
  BOOST_TEST(s.Is(Code::kUnavailable), s.ToString());
  BOOST_TEST(s.message().starts_with(target.Url() + ": failed logging in: "), s.message());
  BOOST_TEST(s.message().ends_with(" (as initiator iqn.2026-11.io.snapset.test:stranger; an array "
                                   "that does not map the LUN to that name refuses the log-in: "
                                   "map it in the array's console)"),
             s.message());
  BOOST_TEST(MsSince(start) < 3000);  // refused, not timed out
  BOOST_TEST(ProbeLun(target.Url(), As(), In(milliseconds(10000))).ok());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace snapset::test
