#define BOOST_TEST_MODULE iscsi_identity
#include <boost/test/unit_test.hpp>

#include <snapset/provider.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include "core/iscsi_identity.hpp"
#include "core/volume.hpp"
#include "tests/support/loopback_port.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/tgtd.hpp"

namespace snapset {
namespace {

using std::chrono::milliseconds;
using test::Tgtd;

constexpr uint64_t kDiskBytes = 64ull << 20;
constexpr std::string_view kIqn = "iqn.2026-11.io.snapset:test";
constexpr std::string_view kExpectedForm = "iscsi://host[:port]/target-iqn/lun";

// The NAA designator tgt derives from a LUN's scsi_id (usr/spc.c,
// update_vpd_83()): it reads scsi_id as one hexadecimal number, a character
// at a time (a character that is not a hex digit counts as 0), keeps the low
// 128 bits, right-adjusted, and overwrites the top four bits with 6, the NAA
// field of IEEE Registered Extended. So for a 32-digit scsi_id it is "6"
// followed by the last 31 digits, lower case. Seen on the wire with
// iscsi-inq against tgt 1.0.85.
std::string TgtNaaFromScsiId(std::string_view scsi_id) {
  std::string digits(32, '0');
  for (char c : scsi_id) {
    const unsigned char u = static_cast<unsigned char>(c);
    digits.erase(digits.begin());
    digits.push_back(std::isxdigit(u) ? static_cast<char>(std::tolower(u))
                                      : '0');
  }
  digits[0] = '6';
  return digits;
}

std::string RandomHex(size_t digits) {
  static std::mt19937_64 generator{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (size_t i = 0; i < digits; ++i) hex.push_back(kDigits[generator() % 16]);
  return hex;
}

// Where tgtd cannot run, its tests are skipped and say why. Not under CI
// (CI=true): there they run, so that a missing dependency fails loudly.
boost::test_tools::assertion_result TgtdUsable(boost::unit_test::test_unit_id) {
  if (snapset::test::InCi()) return true;
  const Status status = Tgtd::CheckPrerequisites();
  boost::test_tools::assertion_result result(status.ok());
  if (!status.ok()) {
    result.message() << status.message()
                     << " (with CI=true this fails instead)";
  }
  return result;
}

class TempDir {
 public:
  TempDir() {
    std::string path =
        (std::filesystem::temp_directory_path() / "snapset-test-XXXXXX")
            .string();
    BOOST_REQUIRE_MESSAGE(mkdtemp(path.data()) != nullptr,
                          "mkdtemp " << path << ": " << strerror(errno));
    path_ = path;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A private tgtd and a directory for the files behind its LUNs.
class Target {
 public:
  Target() {
    Result<std::unique_ptr<Tgtd>> started = Tgtd::Start();
    BOOST_REQUIRE_MESSAGE(started.ok(), started.status().ToString());
    tgtd_ = std::move(*started);
  }

  // Exports a fresh sparse disk of kDiskBytes as `lun`; returns its URL.
  std::string AddDisk(int lun, const std::string& scsi_id,
                      const std::string& serial) {
    const auto file = files_.path() / ("lun" + std::to_string(lun) + ".img");
    std::ofstream(file).close();
    std::filesystem::resize_file(file, kDiskBytes);
    const Status status =
        tgtd_->AddLun(std::string(kIqn), lun, file.string(), scsi_id, serial);
    BOOST_REQUIRE_MESSAGE(status.ok(), status.ToString());
    return tgtd_->url(kIqn, lun);
  }

  Tgtd& tgtd() { return *tgtd_; }

 private:
  TempDir files_;  // outlives tgtd_, which holds the files open
  std::unique_ptr<Tgtd> tgtd_;
};

IscsiOptions WithTimeout(milliseconds timeout) {
  IscsiOptions options;
  options.timeout = timeout;
  return options;
}

Volume ResolveOrFail(const std::string& url) {
  Result<Volume> volume = ResolveIscsiVolume(url, WithTimeout(milliseconds(5000)));
  BOOST_REQUIRE_MESSAGE(volume.ok(), volume.status().ToString());
  return std::move(volume).value();
}

std::string UrlAt(int port) {
  return "iscsi://127.0.0.1:" + std::to_string(port) + "/" +
         std::string(kIqn) + "/1";
}

BOOST_AUTO_TEST_CASE(tgt_naa_rule_matches_what_tgt_sent) {
  // scsi_id given to tgt 1.0.85 -> NAA-6 designator it then reported.
  BOOST_TEST(TgtNaaFromScsiId("0123456789abcdef0123456789abcdef") ==
             "6123456789abcdef0123456789abcdef");
  BOOST_TEST(TgtNaaFromScsiId("fedcba9876543210fedcba9876543210") ==
             "6edcba9876543210fedcba9876543210");
  BOOST_TEST(TgtNaaFromScsiId("ABC") == "60000000000000000000000000000abc");
  BOOST_TEST(TgtNaaFromScsiId("1xyz2") == "60000000000000000000000000010002");
}

BOOST_AUTO_TEST_CASE(malformed_urls_are_invalid_arguments) {
  for (const std::string url :
       {"", "http://127.0.0.1/iqn.2026-11.io.snapset:test/1",
        "iscsi://127.0.0.1/iqn.2026-11.io.snapset:test",
        "iscsi://127.0.0.1/iqn.2026-11.io.snapset:test/one",
        "iscsi://127.0.0.1/iqn.2026-11.io.snapset:test/1/2",
        "iscsi://127.0.0.1/iqn.2026-11.io.snapset:test/-1",
        "iscsi://127.0.0.1:99999/iqn.2026-11.io.snapset:test/1",
        "iscsi:///iqn.2026-11.io.snapset:test/1"}) {
    BOOST_TEST_CONTEXT("url '" << url << "'") {
      const Result<Volume> volume = ResolveIscsiVolume(url);
      BOOST_TEST(volume.status().IsInvalidArgument(),
                 volume.status().ToString());
      BOOST_TEST(volume.status().message().find(kExpectedForm) !=
                     std::string::npos,
                 volume.status().message());
    }
  }
}

BOOST_AUTO_TEST_CASE(messages_never_show_the_password) {
  const Result<Volume> volume =
      ResolveIscsiVolume("iscsi://admin%hunter2@127.0.0.1/iqn.x:y/one");
  BOOST_TEST(volume.status().IsInvalidArgument());
  BOOST_TEST(volume.status().message().find("hunter2") == std::string::npos,
             volume.status().message());
}

BOOST_AUTO_TEST_CASE(closed_port_is_unavailable_before_the_timeout) {
  const test::LoopbackPort closed(test::LoopbackPort::kRefusing);
  const auto timeout = milliseconds(3000);
  const auto start = std::chrono::steady_clock::now();
  const Result<Volume> volume =
      ResolveIscsiVolume(UrlAt(closed.port()), WithTimeout(timeout));
  const auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(volume.status().Is(Code::kUnavailable), volume.status().ToString());
  BOOST_TEST(volume.status().message().find(UrlAt(closed.port())) !=
                 std::string::npos,
             volume.status().message());
  BOOST_TEST(took < timeout);
}

BOOST_AUTO_TEST_CASE(silent_portal_is_unavailable_at_the_timeout) {
  // The kernel accepts the connection; nobody ever answers the login.
  const test::LoopbackPort silent(test::LoopbackPort::kSilent);
  const auto timeout = milliseconds(700);
  const auto start = std::chrono::steady_clock::now();
  const Result<Volume> volume =
      ResolveIscsiVolume(UrlAt(silent.port()), WithTimeout(timeout));
  const auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(volume.status().Is(Code::kUnavailable), volume.status().ToString());
  BOOST_TEST(volume.status().message().find("timed out") != std::string::npos,
             volume.status().message());
  BOOST_TEST(took >= timeout);
  BOOST_TEST(took < timeout + milliseconds(500));
}

BOOST_AUTO_TEST_SUITE(with_tgtd, *boost::unit_test::precondition(TgtdUsable))

BOOST_AUTO_TEST_CASE(resolves_size_block_size_serial_and_naa) {
  Target target;
  const std::string scsi_id = RandomHex(32);
  const std::string serial = "snapset-" + RandomHex(8);
  const std::string url = target.AddDisk(1, scsi_id, serial);

  const Volume volume = ResolveOrFail(url);
  BOOST_TEST((volume.kind == VolumeKind::kIscsi));
  BOOST_TEST(std::string_view(VolumeKindName(volume.kind)) == "iscsi");
  BOOST_TEST(volume.name == url);
  BOOST_TEST(volume.device_path == url);
  BOOST_TEST(volume.size_bytes == kDiskBytes);
  BOOST_TEST(volume.block_size == 512u);
  BOOST_TEST(volume.identity.serial == serial);
  BOOST_TEST(volume.identity.Naa() == TgtNaaFromScsiId(scsi_id),
             "scsi_id " << scsi_id);
}

BOOST_AUTO_TEST_CASE(designators_come_in_wire_order) {
  Target target;
  const std::string scsi_id = RandomHex(32);
  const Volume volume = ResolveOrFail(target.AddDisk(1, scsi_id, "wire"));
  // tgt sends T10 vendor ID (scsi_id as text), then NAA-3 (from the target
  // and LUN numbers), then NAA-6 (from scsi_id); libiscsi lists them
  // backwards.
  const auto& designators = volume.identity.designators;
  BOOST_REQUIRE_EQUAL(designators.size(), 3u);
  BOOST_TEST(designators[0].type == SNAPSET_DESIGNATOR_TYPE_T10_VENDOR_ID);
  BOOST_TEST(std::string(designators[0].value.begin(),
                         designators[0].value.begin() + 32) == scsi_id);
  BOOST_TEST(designators[1].type == SNAPSET_DESIGNATOR_TYPE_NAA);
  BOOST_TEST(designators[1].value.size() == 8u);
  BOOST_TEST((designators[1].value[0] >> 4) == 3);
  BOOST_TEST(designators[2].type == SNAPSET_DESIGNATOR_TYPE_NAA);
  BOOST_TEST(designators[2].value.size() == 16u);
  BOOST_TEST((designators[2].value[0] >> 4) == 6);
  for (const Designator& d : designators) BOOST_TEST(d.association == 0);
}

BOOST_AUTO_TEST_CASE(missing_lun_is_not_found) {
  Target target;
  target.AddDisk(1, RandomHex(32), "present");
  const std::string url = target.tgtd().url(kIqn, 7);
  const Result<Volume> volume =
      ResolveIscsiVolume(url, WithTimeout(milliseconds(5000)));
  BOOST_TEST(volume.status().IsNotFound(), volume.status().ToString());
  BOOST_TEST(volume.status().message().find(url) != std::string::npos,
             volume.status().message());
}

BOOST_AUTO_TEST_CASE(missing_target_is_unavailable) {
  Target target;
  target.AddDisk(1, RandomHex(32), "present");
  const std::string url = target.tgtd().url("iqn.2026-11.io.snapset:absent", 1);
  const Result<Volume> volume =
      ResolveIscsiVolume(url, WithTimeout(milliseconds(5000)));
  BOOST_TEST(volume.status().Is(Code::kUnavailable), volume.status().ToString());
}

// An array maps a LUN to one initiator name; the host must log in with
// that one, and hear which name it used when it is refused.
BOOST_AUTO_TEST_CASE(a_lun_mapped_to_another_initiator_is_refused_naming_the_name_used) {
  Target target;
  const std::string url = target.AddDisk(1, RandomHex(32), "mapped");
  constexpr char kMapped[] = "iqn.2026-11.com.example:backup-host";
  const Status restricted = target.tgtd().RestrictTo(std::string(kIqn), kMapped);
  BOOST_REQUIRE_MESSAGE(restricted.ok(), restricted.ToString());

  IscsiOptions other = WithTimeout(milliseconds(5000));
  other.initiator_iqn = "iqn.2026-11.com.example:someone-else";
  const Result<Volume> refused = ResolveIscsiVolume(url, other);
  BOOST_TEST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.status().message().find("as initiator iqn.2026-11.com.example:someone-else") !=
                 std::string::npos,
             refused.status().message());
  BOOST_TEST(refused.status().message().find("--initiator-iqn") != std::string::npos);

  IscsiOptions mapped = WithTimeout(milliseconds(5000));
  mapped.initiator_iqn = kMapped;
  const Result<Volume> read = ResolveIscsiVolume(url, mapped);
  BOOST_TEST(read.ok(), read.status().ToString());
}

// SNAPSET_INITIATOR_IQN (what --initiator-iqn sets) wins over the host's
// Open-iSCSI name and snapset's default, and is what IscsiOptions starts with.
BOOST_AUTO_TEST_CASE(the_environment_names_the_host_initiator) {
  ::setenv("SNAPSET_INITIATOR_IQN", "iqn.2026-11.com.example:from-env", 1);
  BOOST_TEST(HostInitiatorIqn() == "iqn.2026-11.com.example:from-env");
  BOOST_TEST(IscsiOptions().initiator_iqn == "iqn.2026-11.com.example:from-env");
  ::unsetenv("SNAPSET_INITIATOR_IQN");
  BOOST_TEST(HostInitiatorIqn() != "iqn.2026-11.com.example:from-env");
  BOOST_TEST(!HostInitiatorIqn().empty());
}

BOOST_AUTO_TEST_CASE(different_scsi_ids_give_different_naas) {
  Target target;
  const std::string first_id = RandomHex(32);
  const std::string second_id = RandomHex(32);
  const Volume first = ResolveOrFail(target.AddDisk(1, first_id, "first"));
  const Volume second = ResolveOrFail(target.AddDisk(2, second_id, "second"));
  BOOST_TEST(first.identity.Naa() == TgtNaaFromScsiId(first_id));
  BOOST_TEST(second.identity.Naa() == TgtNaaFromScsiId(second_id));
  BOOST_TEST(first.identity.Naa() != second.identity.Naa());
}

BOOST_AUTO_TEST_CASE(same_lun_of_two_tgtds_differs_by_naa) {
  // Same target and LUN numbers, so tgt's NAA-3 designators are equal; the
  // identity must come from scsi_id.
  Target one;
  Target two;
  const std::string id_one = RandomHex(32);
  const std::string id_two = RandomHex(32);
  const Volume a = ResolveOrFail(one.AddDisk(1, id_one, "one"));
  const Volume b = ResolveOrFail(two.AddDisk(1, id_two, "two"));
  BOOST_REQUIRE(a.identity.designators.size() == 3u);
  BOOST_REQUIRE(b.identity.designators.size() == 3u);
  BOOST_TEST(a.identity.designators[1].value ==
             b.identity.designators[1].value);
  BOOST_TEST(a.identity.Naa() == TgtNaaFromScsiId(id_one));
  BOOST_TEST(b.identity.Naa() == TgtNaaFromScsiId(id_two));
  BOOST_TEST(a.identity.Naa() != b.identity.Naa());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace snapset
