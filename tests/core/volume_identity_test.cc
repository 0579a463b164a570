// Volume identity as a hardware provider relies on it: what a user-given
// name resolves to, on real loop devices and filesystems, and the SCSI
// identity parsed from the kernel's VPD pages.
#define BOOST_TEST_MODULE volume_identity
#include <boost/test/unit_test.hpp>

#include <snapset/provider.h>

#include <sys/sysmacros.h>

#include <filesystem>
#include <fstream>

#include "core/mount_table.hpp"
#include "core/scsi_vpd.hpp"
#include "core/volume_resolver.hpp"
#include "tests/support/command.hpp"
#include "tests/support/loop_filesystem.hpp"
#include "tests/support/prerequisites.hpp"
#include "tests/support/temp_dir.hpp"

using namespace snapset;
using snapset::test::LoopFilesystem;
using snapset::test::TempDir;

namespace {

// A VPD 0x83 page as an array returns it: an NAA-6 logical-unit designator,
// a relative target port designator (association 1, must be ignored), and a
// T10 vendor id designator.
std::vector<uint8_t> SamplePage83() {
  return {
      0x00, 0x83, 0x00, 0x28,  // header: page 0x83, 40 bytes of designators
      // NAA: code set binary, association LU (0), type 3, 16 bytes
      0x01, 0x03, 0x00, 0x10, 0x60, 0x01, 0x40, 0x51, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
      0x01, 0x23, 0x45, 0x67, 0x89,
      // relative target port: association 1 (target port), type 4
      0x61, 0x94, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01,
      // T10 vendor id, ASCII, association LU
      0x02, 0x01, 0x00, 0x08, 'A', 'C', 'M', 'E', ' ', 'L', 'U', '1'};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vpd)

BOOST_AUTO_TEST_CASE(page_83_keeps_logical_unit_designators_in_wire_order) {
  auto d = ParseDeviceIdentificationPage(SamplePage83());
  BOOST_TEST_REQUIRE(d.ok(), d.status().ToString());
  BOOST_TEST_REQUIRE(d->size() == 2u);
  BOOST_TEST((*d)[0].type == SNAPSET_DESIGNATOR_TYPE_NAA);
  BOOST_TEST((*d)[1].type == SNAPSET_DESIGNATOR_TYPE_T10_VENDOR_ID);
  ScsiIdentity id;
  id.designators = *d;
  BOOST_TEST(id.Naa() == "6001405123456789abcdef0123456789");
}

BOOST_AUTO_TEST_CASE(a_truncated_page_is_an_error_not_a_guess) {
  auto page = SamplePage83();
  page.resize(page.size() - 3);
  auto d = ParseDeviceIdentificationPage(page);
  BOOST_TEST(d.status().IsInvalidArgument());
  auto wrong = SamplePage83();
  wrong[1] = 0x80;
  BOOST_TEST(ParseDeviceIdentificationPage(wrong).status().IsInvalidArgument());
}

BOOST_AUTO_TEST_CASE(page_80_serial_is_trimmed) {
  std::vector<uint8_t> page = {0x00, 0x80, 0x00, 0x0c, ' ', ' ', 'S', 'N', '0', '0', '4',
                               '2', ' ', ' ', ' ', ' '};
  auto s = ParseUnitSerialPage(page);
  BOOST_TEST_REQUIRE(s.ok());
  BOOST_TEST(*s == "SN0042");
}

BOOST_AUTO_TEST_CASE(wwid_naa_becomes_a_designator) {
  auto d = DesignatorsFromWwid("naa.600140512345678901234567890abcde\n");
  BOOST_TEST_REQUIRE(d.size() == 1u);
  ScsiIdentity id;
  id.designators = d;
  BOOST_TEST(id.Naa() == "600140512345678901234567890abcde");
  BOOST_TEST(DesignatorsFromWwid("t10.ATA QEMU HARDDISK").empty());
}

BOOST_AUTO_TEST_CASE(block_device_identity_is_read_from_sysfs) {
  // A sysfs tree shaped as the kernel lays out a SCSI disk and a partition.
  TempDir sys;
  auto disk = sys.path() / "devices" / "host0" / "sdx";
  std::filesystem::create_directories(disk / "device");
  std::filesystem::create_directories(disk / "queue");
  std::filesystem::create_directories(disk / "sdx1");
  std::ofstream(disk / "size") << "2097152\n";
  std::ofstream(disk / "queue" / "logical_block_size") << "4096\n";
  auto p83 = SamplePage83();
  std::ofstream(disk / "device" / "vpd_pg83", std::ios::binary)
      .write(reinterpret_cast<const char*>(p83.data()), std::streamsize(p83.size()));
  const char p80[] = {0x00, (char)0x80, 0x00, 0x08, 'S', 'E', 'R', '-', '1', ' ', ' ', ' '};
  std::ofstream(disk / "device" / "vpd_pg80", std::ios::binary).write(p80, sizeof p80);
  std::ofstream(disk / "sdx1" / "size") << "2048\n";
  std::ofstream(disk / "sdx1" / "partition") << "1\n";
  std::filesystem::create_directories(sys.path() / "dev" / "block");
  std::filesystem::create_directory_symlink(disk, sys.path() / "dev" / "block" / "8:16");
  std::filesystem::create_directory_symlink(disk / "sdx1", sys.path() / "dev" / "block" / "8:17");

  Volume v;
  BOOST_TEST_REQUIRE(ReadBlockDevice(sys.str(), makedev(8, 16), &v).ok());
  BOOST_TEST(v.size_bytes == 2097152ull * 512);
  BOOST_TEST(v.block_size == 4096u);
  BOOST_TEST(v.device_path == "/dev/sdx");
  BOOST_TEST(v.identity.Naa() == "6001405123456789abcdef0123456789");
  BOOST_TEST(v.identity.serial == "SER-1");

  // A partition has its own size but its disk's block size and identity.
  Volume part;
  BOOST_TEST_REQUIRE(ReadBlockDevice(sys.str(), makedev(8, 17), &part).ok());
  BOOST_TEST(part.size_bytes == 2048ull * 512);
  BOOST_TEST(part.block_size == 4096u);
  BOOST_TEST(part.device_path == "/dev/sdx1");
  BOOST_TEST(part.identity.Naa() == "6001405123456789abcdef0123456789");

  Volume none;
  BOOST_TEST(ReadBlockDevice(sys.str(), makedev(8, 99), &none).IsNotFound());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(mount_table)

BOOST_AUTO_TEST_CASE(mountinfo_is_parsed_with_escapes_and_stacking) {
  const char* text =
      "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
      "40 22 7:3 / /mnt/my\\040data rw,nosuid,relatime shared:5 - ext4 /dev/loop3 "
      "rw,errors=remount-ro\n"
      "41 22 7:4 / /srv rw - xfs /dev/loop4 rw\n"
      "42 41 7:5 / /srv rw - ext4 /dev/loop5 rw\n"
      "43 22 7:3 /sub /bind rw - ext4 /dev/loop3 rw\n"
      "garbage line\n";
  MountTable t = MountTable::Parse(text);
  BOOST_TEST(t.entries().size() == 5u);
  auto m = t.Containing("/mnt/my data/file.db");
  BOOST_TEST_REQUIRE(m.has_value());
  BOOST_TEST(m->mount_point == "/mnt/my data");
  BOOST_TEST(m->source == "/dev/loop3");
  // What mounting it again takes.
  BOOST_TEST(m->options == "rw,nosuid,relatime");
  BOOST_TEST(m->super_options == "rw,errors=remount-ro");
  // /mnt/my is not inside "/mnt/my data".
  BOOST_TEST(t.Containing("/mnt/my")->mount_point == "/");
  // The later of two mounts on /srv hides the earlier.
  BOOST_TEST(t.Containing("/srv/x")->source == "/dev/loop5");
  // A device's own mount is preferred over a bind mount of a subtree.
  BOOST_TEST(t.OfDevice(makedev(7, 3))->mount_point == "/mnt/my data");
  BOOST_TEST(!t.OfDevice(makedev(7, 9)).has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(resolve)

BOOST_AUTO_TEST_CASE(names_that_resolve_to_nothing_are_refused_clearly) {
  auto missing = ResolveVolume("/no/such/volume");
  BOOST_TEST(missing.status().IsNotFound());
  BOOST_TEST(missing.status().message().find("iscsi://host[:port]/target-iqn/lun") !=
             std::string::npos);
  BOOST_TEST(ResolveVolume("nfs://server/export").status().IsInvalidArgument());
  BOOST_TEST(ResolveVolume("cow:").status().IsInvalidArgument());
  BOOST_TEST(ResolveVolume("cow:bad name").status().IsInvalidArgument());
  BOOST_TEST(ResolveVolume("").status().IsInvalidArgument());
  auto chr = ResolveVolume("/dev/null");
  BOOST_TEST(chr.status().IsInvalidArgument());
  BOOST_TEST(chr.status().message().find("/dev/null is neither a block device") == 0);
}

BOOST_AUTO_TEST_CASE(cow_names_are_left_to_the_software_cow_provider) {
  auto v = ResolveVolume("cow:db-01");
  BOOST_TEST_REQUIRE(v.ok());
  BOOST_TEST((v->kind == VolumeKind::kCow));
  BOOST_TEST(v->name == "cow:db-01");
  BOOST_TEST(v->size_bytes == 0u);
}

BOOST_AUTO_TEST_CASE(ext4_on_a_loop_device_by_mount_point_path_and_device) {
  if (!test::LoopFilesystemsAvailable()) return;
  auto fs = LoopFilesystem::Create(64ull << 20, "ext4");
  BOOST_TEST_REQUIRE(fs.ok(), fs.status().ToString());
  const std::string mnt = (*fs)->mount_point();
  std::filesystem::create_directories(mnt + "/data/dir");
  std::ofstream(mnt + "/data/dir/file.db") << "x";

  for (const std::string& name :
       {mnt, mnt + "/", mnt + "/data/dir", mnt + "/data/dir/file.db", (*fs)->device()}) {
    BOOST_TEST_CONTEXT("resolving " << name) {
      auto v = ResolveVolume(name);
      BOOST_TEST_REQUIRE(v.ok(), v.status().ToString());
      BOOST_TEST((v->kind == VolumeKind::kFilesystem));
      BOOST_TEST(v->name == mnt);
      BOOST_TEST(v->mount_point == mnt);
      BOOST_TEST(v->filesystem == "ext4");
      BOOST_TEST(v->device_path == (*fs)->device());
      BOOST_TEST(v->size_bytes == 64ull << 20);
      BOOST_TEST(v->block_size == 512u);
      BOOST_TEST(v->identity.Naa().empty());  // loop devices have no SCSI identity
    }
  }
}

BOOST_AUTO_TEST_CASE(an_unmounted_loop_device_is_a_block_volume) {
  if (!test::LoopFilesystemsAvailable()) return;
  TempDir dir;
  const std::string file = dir.str() + "/raw.img";
  std::filesystem::resize_file(std::filesystem::path(dir.Write("raw.img", "")), 8ull << 20);
  auto loop = snapset::test::RunCommand({"losetup", "--find", "--show", file});
  BOOST_TEST_REQUIRE(loop.exit_code == 0, loop.output);
  const std::string dev = loop.output.substr(0, loop.output.find('\n'));
  auto v = ResolveVolume(dev);
  snapset::test::RunCommand({"losetup", "--detach", dev});
  BOOST_TEST_REQUIRE(v.ok(), v.status().ToString());
  BOOST_TEST((v->kind == VolumeKind::kBlock));
  BOOST_TEST(v->name == dev);
  BOOST_TEST(v->size_bytes == 8ull << 20);
  BOOST_TEST(v->mount_point.empty());
}

BOOST_AUTO_TEST_SUITE_END()
