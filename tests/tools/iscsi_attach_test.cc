// Attaching iSCSI exposures with Open-iSCSI: what a user is told on a host
// whose kernel has no iscsi_tcp (this project's machines), URL and CHAP-file
// checks, and, through a stand-in iscsiadm, the commands run and that a CHAP
// password never shows in a message.
#define BOOST_TEST_MODULE iscsi_attach
#include "tools/iscsi_attach.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace snapset::cli {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr const char* kIqn = "iqn.2026-11.io.snapset.test:snap-1";
constexpr const char* kUrl = "iscsi://127.0.0.1:3260/iqn.2026-11.io.snapset.test:snap-1/0";
constexpr const char* kPassword = "s3cret-Chap-Pass";
constexpr const char* kNaa = "6001405a1b2c3d4e5f60718293a4b5c6";
constexpr const char* kOtherNaa = "6001405ffffffffffffffffffffffff0";

bool HostHasIscsiTcp() { return fs::exists("/sys/module/iscsi_tcp"); }

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct TempDir {
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "iscsi-attach-test.XXXXXX").string();
    BOOST_REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

void WriteFile(const fs::path& p, const std::string& text, mode_t mode) {
  std::ofstream(p) << text;
  BOOST_REQUIRE(::chmod(p.c_str(), mode) == 0);
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Makes `node` a block device file (major 7: loop; only its number is ever
// looked at) and gives it, in a sysfs tree under `sysfs`, the wwid
// "naa.<naa>" the kernel would have read from the LUN.
void FakeDisk(const fs::path& node, unsigned minor, const fs::path& sysfs, const std::string& naa) {
  BOOST_REQUIRE_MESSAGE(::mknod(node.c_str(), S_IFBLK | 0600, makedev(7, minor)) == 0,
                        "mknod " << node << ": " << std::strerror(errno) << " (needs root)");
  const fs::path dir = sysfs / "dev" / "block" / ("7:" + std::to_string(minor));
  fs::create_directories(dir / "device");
  std::ofstream(dir / "size") << "32768\n";
  std::ofstream(dir / "device" / "wwid") << "naa." << naa << "\n";
}

// A host with iscsi_tcp "loaded" (a folder) and a shell script as iscsiadm
// that logs its arguments, offers kIqn at discovery and, on login, creates
// the links udev would to a disk (a real block device file); or it refuses
// the password update, quoting its arguments back as a confused tool might;
// or no device ever appears.
struct FakeOpenIscsi {
  enum Behaviour {
    kSucceeds,  // by-path and by-id/wwn-0x<kNaa> name the snapshot's disk
    kPasswordUpdateFailsEchoingArgs,
    kDeviceNeverAppears,
    kOtherDeviceHasTheWwn,  // the URL's LUN is another disk; wwn-0x<kNaa> names a third
    kWwnLinkNeverAppears,   // the snapshot's disk, named by path only
  };

  explicit FakeOpenIscsi(Behaviour behaviour) {
    fs::create_directories(dir.path / "module");
    fs::create_directories(dir.path / "by-path");
    fs::create_directories(dir.path / "by-id");
    host.module_dir = (dir.path / "module").string();
    host.by_path_dir = (dir.path / "by-path").string();
    host.by_id_dir = (dir.path / "by-id").string();
    host.sysfs_root = (dir.path / "sys").string();
    host.iscsiadm = (dir.path / "iscsiadm").string();
    host.poll_interval = std::chrono::milliseconds(10);
    host.wwn_link_grace = std::chrono::milliseconds(200);
    const std::string device =
        host.by_path_dir + "/ip-127.0.0.1:3260-iscsi-" + std::string(kIqn) + "-lun-0";
    // The disks the kernel would make, with the identity it would read.
    const std::string disk = (dir.path / "sdx").string();
    const std::string other = (dir.path / "sdy").string();
    FakeDisk(disk, 250, host.sysfs_root, behaviour == kOtherDeviceHasTheWwn ? kOtherNaa : kNaa);
    FakeDisk(other, 251, host.sysfs_root, kNaa);
    // udev's two names: by path, and by identity.
    const std::string wwn = host.by_id_dir + "/wwn-0x" + kNaa;
    std::string on_login = "exit 0";
    if (behaviour == kSucceeds) {
      on_login = "ln -s '" + disk + "' '" + device + "'; ln -s '" + disk + "' '" + wwn + "'";
    } else if (behaviour == kOtherDeviceHasTheWwn) {
      on_login = "ln -s '" + disk + "' '" + device + "'; ln -s '" + other + "' '" + wwn + "'";
    } else if (behaviour == kWwnLinkNeverAppears) {
      on_login = "ln -s '" + disk + "' '" + device + "'";
    }
    const std::string on_password = behaviour == kPasswordUpdateFailsEchoingArgs
                                        ? "echo \"iscsiadm: cannot store $*\"; exit 6"
                                        : "exit 0";
    WriteFile(
        host.iscsiadm,
        "#!/bin/sh\n"
        "echo \"$*\" >> '" +
            log().string() +
            "'\n"
            "case \"$*\" in\n"
            "  *auth.password*) " +
            on_password +
            " ;;\n"
            "  *'-m discovery'*) echo '127.0.0.1:3260,1 " +
            std::string(kIqn) +
            "' ;;\n"
            "  *--login*) " +
            on_login +
            " ;;\n"
            "  *--logout*|*'-o delete'*|*'-m session'*) echo 'No matching objects'; exit 21 ;;\n"
            "esac\n"
            "exit 0\n",
        0700);
  }
  fs::path log() const { return dir.path / "iscsiadm.log"; }

  TempDir dir;
  OpenIscsiHost host;
};

BOOST_AUTO_TEST_CASE(kernel_without_iscsi_tcp_is_named_as_the_reason) {
  Status s = KernelIscsiAvailable();
  if (HostHasIscsiTcp()) {
    // Such a host can attach once iscsiadm is there; without it, the
    // package to install is named.
    BOOST_TEST((s.ok() || Contains(s.message(), "open-iscsi")), s.ToString());
  } else {
    BOOST_TEST(s.Is(Code::kUnavailable), s.ToString());
    BOOST_TEST(Contains(s.message(), "module iscsi_tcp is missing"), s.message());
  }
}

BOOST_AUTO_TEST_CASE(attach_on_a_host_without_iscsi_tcp_says_so_and_how_to_read_the_url) {
  auto r = AttachIscsi(kUrl, std::nullopt, "", seconds(5));
  BOOST_REQUIRE(!r.ok());
  if (HostHasIscsiTcp()) {
    // Nothing listens for this target here; whatever failed, it is not the kernel.
    BOOST_TEST(!Contains(r.status().message(), "module iscsi_tcp is missing"),
               r.status().message());
  } else {
    BOOST_TEST(r.status().Is(Code::kUnavailable), r.status().ToString());
    BOOST_TEST(Contains(r.status().message(), "module iscsi_tcp is missing"), r.status().message());
    BOOST_TEST(Contains(r.status().message(), kUrl), r.status().message());
    BOOST_TEST(Contains(r.status().message(), "libiscsi"), r.status().message());
  }
}

BOOST_AUTO_TEST_CASE(a_missing_iscsiadm_names_the_package_to_install) {
  TempDir dir;
  OpenIscsiHost host;
  host.module_dir = dir.path.string();  // as if iscsi_tcp were loaded
  host.iscsiadm = "snapset-test-no-such-iscsiadm";
  Status s = KernelIscsiAvailable(host);
  BOOST_TEST(s.Is(Code::kUnavailable), s.ToString());
  BOOST_TEST(Contains(s.message(), "open-iscsi"), s.message());
}

BOOST_AUTO_TEST_CASE(well_formed_urls_give_portal_target_and_lun) {
  auto u = ParseIscsiUrl("iscsi://Array.Example/IQN.2026-11.io.example:Snap-7/12");
  BOOST_REQUIRE(u.ok());
  BOOST_TEST(u->host == "array.example");
  BOOST_TEST(u->port == 3260);
  BOOST_TEST(u->iqn == "iqn.2026-11.io.example:snap-7");
  BOOST_TEST(u->lun == 12u);
  BOOST_TEST(u->Portal() == "array.example:3260");
  auto v6 = ParseIscsiUrl("iscsi://[::1]:3261/iqn.2026-11.io.example:x/0");
  BOOST_REQUIRE(v6.ok());
  BOOST_TEST(v6->Portal() == "[::1]:3261");
}

BOOST_AUTO_TEST_CASE(malformed_urls_are_invalid_arguments_before_anything_runs) {
  const char* bad[] = {
      "iscsi://",
      "http://127.0.0.1/iqn.2026-11.io.example:x/0",
      "iscsi://127.0.0.1",
      "iscsi://127.0.0.1/iqn.2026-11.io.example:x",
      "iscsi:///iqn.2026-11.io.example:x/0",
      "iscsi://127.0.0.1:0/iqn.2026-11.io.example:x/0",
      "iscsi://127.0.0.1:70000/iqn.2026-11.io.example:x/0",
      "iscsi://127.0.0.1:/iqn.2026-11.io.example:x/0",
      "iscsi://::1/iqn.2026-11.io.example:x/0",
      "iscsi://127.0.0.1//0",
      "iscsi://127.0.0.1/not-an-iscsi-name/0",
      "iscsi://127.0.0.1/iqn.2026-11.io.example:a b/0",
      "iscsi://127.0.0.1/iqn.2026-11.io.example:x/16384",
      "iscsi://127.0.0.1/iqn.2026-11.io.example:x/-1",
      "iscsi://127.0.0.1/iqn.2026-11.io.example:x/lun0",
  };
  for (const char* url : bad) {
    auto parsed = ParseIscsiUrl(url);
    BOOST_TEST(parsed.status().Is(Code::kInvalidArgument), url);
    BOOST_TEST(Contains(parsed.status().message(), "iscsi://host[:port]/target-iqn/lun"), url);
    auto attached = AttachIscsi(url, std::nullopt, "", seconds(5));
    BOOST_TEST(attached.status().Is(Code::kInvalidArgument), url);
    BOOST_TEST(DetachIscsi(url, seconds(5)).Is(Code::kInvalidArgument), url);
  }
}

BOOST_AUTO_TEST_CASE(credentials_in_a_url_are_refused_and_not_repeated) {
  auto parsed = ParseIscsiUrl("iscsi://admin%hunter2@127.0.0.1/iqn.2026-11.io.example:x/0");
  BOOST_TEST(parsed.status().Is(Code::kInvalidArgument));
  BOOST_TEST(Contains(parsed.status().message(), "--chap-file"), parsed.status().message());
  BOOST_TEST(!Contains(parsed.status().message(), "hunter2"), parsed.status().message());
  BOOST_TEST(!Contains(parsed.status().message(), "admin"), parsed.status().message());
}

BOOST_AUTO_TEST_CASE(a_chap_file_others_can_read_is_refused_with_the_fix) {
  TempDir dir;
  const fs::path file = dir.path / "chap.json";
  WriteFile(file, R"({"CHAPUsername": "snap", "CHAPPassword": ")" + std::string(kPassword) + "\"}",
            0644);
  auto chap = LoadChapFile(file.string());
  BOOST_TEST(chap.status().Is(Code::kInvalidArgument));
  BOOST_TEST(Contains(chap.status().message(), file.string()), chap.status().message());
  BOOST_TEST(Contains(chap.status().message(), "chmod 600"), chap.status().message());
  BOOST_TEST(!Contains(chap.status().message(), kPassword));

  BOOST_REQUIRE(::chmod(file.c_str(), 0600) == 0);
  chap = LoadChapFile(file.string());
  BOOST_REQUIRE(chap.ok());
  BOOST_TEST(chap->username == "snap");
  BOOST_TEST(chap->password == kPassword);
}

BOOST_AUTO_TEST_CASE(a_chap_file_without_both_fields_is_refused_without_quoting_it) {
  TempDir dir;
  const fs::path file = dir.path / "chap.json";
  WriteFile(file, R"({"CHAPUser": "snap", "CHAPPassword": ")" + std::string(kPassword) + "\"}",
            0600);
  auto chap = LoadChapFile(file.string());
  BOOST_TEST(chap.status().Is(Code::kInvalidArgument));
  BOOST_TEST(Contains(chap.status().message(), "CHAPUsername"), chap.status().message());
  BOOST_TEST(!Contains(chap.status().message(), kPassword));
  BOOST_TEST(LoadChapFile((dir.path / "none.json").string()).status().Is(Code::kNotFound));
}

BOOST_AUTO_TEST_CASE(detach_with_nothing_attached_is_ok) {
  Status s = DetachIscsi(kUrl, seconds(10));
  BOOST_TEST(s.ok(), s.ToString());
}

BOOST_AUTO_TEST_CASE(attach_discovers_sets_chap_logs_in_and_returns_the_by_path_device) {
  FakeOpenIscsi fake(FakeOpenIscsi::kSucceeds);
  auto device = AttachIscsi(kUrl, ChapCredentials{"snap", kPassword}, "", seconds(10), fake.host);
  BOOST_REQUIRE_MESSAGE(device.ok(), device.status().ToString());
  BOOST_TEST(*device == fake.host.by_path_dir + "/ip-127.0.0.1:3260-iscsi-" + kIqn + "-lun-0");
  const std::string node = std::string("-m node -T ") + kIqn + " -p 127.0.0.1:3260";
  BOOST_TEST(ReadFile(fake.log()) == "-m discovery -t sendtargets -p 127.0.0.1:3260\n" + node +
                                         " -o update -n node.session.auth.authmethod -v CHAP\n" +
                                         node +
                                         " -o update -n node.session.auth.username -v snap\n" +
                                         node + " -o update -n node.session.auth.password -v " +
                                         kPassword + "\n" + node + " --login\n");
}

BOOST_AUTO_TEST_CASE(with_the_snapshots_naa_attach_returns_its_wwn_device) {
  FakeOpenIscsi fake(FakeOpenIscsi::kSucceeds);
  auto device = AttachIscsi(kUrl, std::nullopt, kNaa, seconds(10), fake.host);
  BOOST_REQUIRE_MESSAGE(device.ok(), device.status().ToString());
  BOOST_TEST(*device == fake.host.by_id_dir + "/wwn-0x" + kNaa);
}

BOOST_AUTO_TEST_CASE(without_a_wwn_link_the_snapshots_disk_is_returned_by_path) {
  FakeOpenIscsi fake(FakeOpenIscsi::kWwnLinkNeverAppears);
  auto device = AttachIscsi(kUrl, std::nullopt, kNaa, seconds(10), fake.host);
  BOOST_REQUIRE_MESSAGE(device.ok(), device.status().ToString());
  BOOST_TEST(*device == fake.host.by_path_dir + "/ip-127.0.0.1:3260-iscsi-" + kIqn + "-lun-0");
}

BOOST_AUTO_TEST_CASE(a_lun_that_is_not_the_snapshot_is_refused_and_logged_out) {
  FakeOpenIscsi fake(FakeOpenIscsi::kOtherDeviceHasTheWwn);
  const auto start = std::chrono::steady_clock::now();
  auto device = AttachIscsi(kUrl, std::nullopt, kNaa, seconds(20), fake.host);
  BOOST_REQUIRE(!device.ok());
  BOOST_TEST(device.status().Is(Code::kBadState), device.status().ToString());
  BOOST_TEST(Contains(device.status().message(), "not the snapshot"), device.status().ToString());
  BOOST_TEST(Contains(device.status().message(), kOtherNaa), device.status().ToString());
  // The kernel's identity settles it at once: no waiting for the deadline.
  BOOST_TEST((std::chrono::steady_clock::now() - start < seconds(10)));
  BOOST_TEST(ReadFile(fake.log()).find("--logout") != std::string::npos, ReadFile(fake.log()));
}

BOOST_AUTO_TEST_CASE(a_failed_chap_setting_redacts_the_password_and_forgets_the_node_record) {
  FakeOpenIscsi fake(FakeOpenIscsi::kPasswordUpdateFailsEchoingArgs);
  auto device = AttachIscsi(kUrl, ChapCredentials{"snap", kPassword}, "", seconds(10), fake.host);
  BOOST_REQUIRE(!device.ok());
  BOOST_TEST(device.status().Is(Code::kUnavailable));
  BOOST_TEST(Contains(device.status().message(), "cannot store"), device.status().message());
  BOOST_TEST(Contains(device.status().message(), "-v ***"), device.status().message());
  BOOST_TEST(!Contains(device.status().message(), kPassword), device.status().message());
  const std::string log = ReadFile(fake.log());
  BOOST_TEST(Contains(log, "-o delete"), log);
  BOOST_TEST(!Contains(log, "--login"), log);
}

BOOST_AUTO_TEST_CASE(a_device_that_never_appears_is_a_bounded_failure_that_logs_out) {
  FakeOpenIscsi fake(FakeOpenIscsi::kDeviceNeverAppears);
  const auto start = std::chrono::steady_clock::now();
  auto device = AttachIscsi(kUrl, std::nullopt, "", seconds(1), fake.host);
  BOOST_TEST(device.status().Is(Code::kUnavailable));
  BOOST_TEST(Contains(device.status().message(), "did not appear"), device.status().message());
  BOOST_TEST((std::chrono::steady_clock::now() - start < seconds(10)));
  const std::string log = ReadFile(fake.log());
  BOOST_TEST(Contains(log, "node.session.auth.authmethod -v None"), log);
  BOOST_TEST(Contains(log, "--logout"), log);
}

BOOST_AUTO_TEST_CASE(detach_without_a_session_still_forgets_the_node_record) {
  FakeOpenIscsi fake(FakeOpenIscsi::kSucceeds);
  Status s = DetachIscsi(kUrl, seconds(10), fake.host);
  BOOST_TEST(s.ok(), s.ToString());
  const std::string log = ReadFile(fake.log());
  BOOST_TEST(Contains(log, "-m session"), log);
  BOOST_TEST(Contains(log, std::string("-m node -T ") + kIqn + " -p 127.0.0.1:3260 -o delete"),
             log);
}

}  // namespace
}  // namespace snapset::cli
