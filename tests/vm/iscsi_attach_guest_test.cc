// SPDX-License-Identifier: Apache-2.0
// Attaching iSCSI LUNs with the real Open-iSCSI (iscsiadm, iscsid, the
// kernel's iscsi_tcp) and udev, against a mock array's real tgtd: what
// tests/tools/iscsi_attach_test.cc can only ask of a stand-in iscsiadm. Runs
// in the test bed's guest (tests/vm/guest_suite.sh), whose iscsid is up and
// whose initiator name is in /etc/iscsi/initiatorname.iscsi.
#define BOOST_TEST_MODULE iscsi_attach_guest_test
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/mock-array/connections.hpp"
#include "tests/mock-array/mock_array_process.hpp"
#include "tests/support/prerequisites.hpp"
#include "tools/iscsi_attach.hpp"

namespace snapset::test {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";
constexpr char kChapUser[] = "attach-test";
constexpr char kChapSecret[] = "attach-secret-1";

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// This host's initiator name, as iscsiadm logs in with it.
std::string HostInitiator() {
  std::ifstream in("/etc/iscsi/initiatorname.iscsi");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("InitiatorName=", 0) == 0) return line.substr(14);
  }
  return "";
}

bool GuestAvailable() {
  if (!MockArrayAvailable()) return false;
  Status kernel = cli::KernelIscsiAvailable();
  if (!Available(kernel.ok() ? "" : kernel.message())) return false;
  return Available(HostInitiator().empty() ? "an InitiatorName in /etc/iscsi/initiatorname.iscsi"
                                           : "");
}

// Exit status of `iscsiadm -m MODE`: 0 when it lists something, 21 when
// there is nothing (no session, no node record).
int Iscsiadm(const std::string& mode) {
  return RunCommand({"iscsiadm", "-m", mode}, seconds(30)).exit_code;
}

// One mock array with volumes whose NAAs are known, mapped to this host by
// connections the test makes. Logs out of everything at the end.
struct Array {
  Array() : process(dir.str() + "/array"), token(process.Login()) {}
  ~Array() {
    RunCommand({"iscsiadm", "-m", "node", "--logoutall=all"}, seconds(30));
    RunCommand({"iscsiadm", "-m", "node", "-o", "delete"}, seconds(30));
  }
  struct Made {
    std::string path, naa;
  };
  Made Volume(const std::string& name) {
    HttpResponse r = Http("POST", process.Url(kVolumes),
                          R"({"Name":")" + name + R"(","CapacityBytes":8388608})", token);
    BOOST_TEST_REQUIRE(r.status == 201, r.body);
    rapidjson::Document v = r.Json();
    std::string naa = v["Identifiers"][0]["DurableName"].GetString();
    std::transform(naa.begin(), naa.end(), naa.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    return {v["@odata.id"].GetString(), naa};
  }
  Connection Map(const std::vector<Made>& volumes, const std::string& chap_user = "",
                 const std::string& chap_secret = "") {
    ConnectionRequest request;
    request.initiator = HostInitiator();
    for (const Made& m : volumes) request.volumes.push_back(m.path);
    request.chap_user = chap_user;
    request.chap_password = chap_secret;
    return Connect(process, token, request);
  }

  TempDir dir;
  MockArrayProcess process;
  std::string token;
};

// The kernel's identity of the disk a link names: its sysfs wwid.
std::string WwidOf(const std::string& link) {
  struct stat st;
  if (::stat(link.c_str(), &st) != 0) return "";
  std::ifstream in("/sys/dev/block/" + std::to_string(major(st.st_rdev)) + ":" +
                   std::to_string(minor(st.st_rdev)) + "/device/wwid");
  std::string wwid;
  std::getline(in, wwid);
  return wwid;
}

BOOST_AUTO_TEST_CASE(the_snapshots_lun_attaches_by_its_wwn_name_and_detaches_without_a_trace) {
  if (!GuestAvailable()) return;
  Array array;
  const Array::Made snap = array.Volume("snap");
  const Connection c = array.Map({snap});
  auto device = cli::AttachIscsi(c.urls[0], std::nullopt, snap.naa, seconds(60));
  BOOST_TEST_REQUIRE(device.ok(), device.status().ToString());
  // udev's two names, one disk: the one the kernel says has the NAA.
  BOOST_TEST(*device == "/dev/disk/by-id/wwn-0x" + snap.naa);
  auto by_path = cli::AttachedDevicePath(c.urls[0]);
  BOOST_TEST_REQUIRE(by_path.ok());
  BOOST_TEST(fs::canonical(*device) == fs::canonical(*by_path));
  BOOST_TEST(WwidOf(*device) == "naa." + snap.naa);
  BOOST_TEST(Iscsiadm("session") == 0);

  Status detached = cli::DetachIscsi(c.urls[0], seconds(60));
  BOOST_TEST(detached.ok(), detached.ToString());
  BOOST_TEST(Iscsiadm("session") == 21, "a session is left");
  BOOST_TEST(Iscsiadm("node") == 21, "a node record is left");
  BOOST_TEST(!fs::exists(*by_path));
}

BOOST_AUTO_TEST_CASE(a_lun_that_is_not_the_snapshot_is_refused_and_logged_out) {
  if (!GuestAvailable()) return;
  Array array;
  const Array::Made source = array.Volume("source");
  const Array::Made snap = array.Volume("snap");
  // The URL names the source's LUN; the caller expects the snapshot's NAA.
  const Connection c = array.Map({source});
  const auto start = std::chrono::steady_clock::now();
  auto device = cli::AttachIscsi(c.urls[0], std::nullopt, snap.naa, seconds(60));
  BOOST_TEST_REQUIRE(!device.ok());
  BOOST_TEST(device.status().Is(Code::kBadState), device.status().ToString());
  BOOST_TEST(Contains(device.status().message(), "not the snapshot"), device.status().message());
  BOOST_TEST(Contains(device.status().message(), source.naa), device.status().message());
  BOOST_TEST(Contains(device.status().message(), "logged out again"), device.status().message());
  // Told by the kernel's identity, not by waiting for a link until the deadline.
  BOOST_TEST((std::chrono::steady_clock::now() - start < seconds(45)));
  BOOST_TEST(Iscsiadm("session") == 21, "a session is left");
  BOOST_TEST(Iscsiadm("node") == 21, "a node record is left");
}

BOOST_AUTO_TEST_CASE(target_chap_refuses_a_login_without_it_and_takes_the_right_one) {
  if (!GuestAvailable()) return;
  Array array;
  const Array::Made snap = array.Volume("snap");
  const Connection c = array.Map({snap}, kChapUser, kChapSecret);

  auto none = cli::AttachIscsi(c.urls[0], std::nullopt, snap.naa, seconds(60));
  BOOST_TEST(none.status().Is(Code::kUnavailable), none.status().ToString());
  BOOST_TEST(Contains(none.status().message(), "without CHAP"), none.status().message());
  BOOST_TEST(Iscsiadm("node") == 21, "the refused node record is left");

  auto wrong = cli::AttachIscsi(c.urls[0], cli::ChapCredentials{kChapUser, "not-the-secret"},
                                snap.naa, seconds(60));
  BOOST_TEST(wrong.status().Is(Code::kUnavailable), wrong.status().ToString());
  BOOST_TEST(Contains(wrong.status().message(), "refused"), wrong.status().message());
  BOOST_TEST(!Contains(wrong.status().message(), "not-the-secret"), wrong.status().message());
  BOOST_TEST(Iscsiadm("node") == 21, "a node record holding a password is left");

  auto right = cli::AttachIscsi(c.urls[0], cli::ChapCredentials{kChapUser, kChapSecret}, snap.naa,
                                seconds(60));
  BOOST_TEST_REQUIRE(right.ok(), right.status().ToString());
  BOOST_TEST(*right == "/dev/disk/by-id/wwn-0x" + snap.naa);
  BOOST_TEST(cli::DetachIscsi(c.urls[0], seconds(60)).ok());
  BOOST_TEST(Iscsiadm("session") == 21);
}

BOOST_AUTO_TEST_CASE(detaching_one_lun_of_a_target_keeps_the_session_for_the_other) {
  if (!GuestAvailable()) return;
  Array array;
  const Array::Made one = array.Volume("one");
  const Array::Made two = array.Volume("two");
  const Connection c = array.Map({one, two});
  auto first = cli::AttachIscsi(c.urls[0], std::nullopt, one.naa, seconds(60));
  BOOST_TEST_REQUIRE(first.ok(), first.status().ToString());
  auto second = cli::AttachIscsi(c.urls[1], std::nullopt, two.naa, seconds(60));  // same session
  BOOST_TEST_REQUIRE(second.ok(), second.status().ToString());

  BOOST_TEST(cli::DetachIscsi(c.urls[0], seconds(60)).ok());
  BOOST_TEST(Iscsiadm("session") == 0, "the other LUN lost its session");
  // The kernel removes the disk; udev then its links.
  RunCommand({"udevadm", "settle", "--timeout=30"}, seconds(40));
  BOOST_TEST(!fs::exists(*first));
  BOOST_TEST(fs::exists(*second));

  BOOST_TEST(cli::DetachIscsi(c.urls[1], seconds(60)).ok());
  BOOST_TEST(Iscsiadm("session") == 21);
}

}  // namespace
}  // namespace snapset::test
