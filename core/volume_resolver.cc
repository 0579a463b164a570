#include "core/volume_resolver.hpp"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include "core/cow_stack.hpp"
#include "core/mount_table.hpp"
#include "core/scsi_vpd.hpp"

namespace snapset {

namespace fs = std::filesystem;

namespace {

constexpr const char* kAcceptedForms =
    "a volume is a mount point or a path inside a mounted filesystem, a block device "
    "(/dev/...), iscsi://host[:port]/target-iqn/lun, or cow:NAME";

bool ReadText(const fs::path& p, std::string* out) {
  std::ifstream in(p);
  if (!in) return false;
  std::stringstream s;
  s << in.rdbuf();
  *out = s.str();
  while (!out->empty() && std::isspace(static_cast<unsigned char>(out->back()))) out->pop_back();
  return true;
}

bool ReadBytes(const fs::path& p, std::vector<uint8_t>* out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !out->empty();
}

bool ValidCowName(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

// Identity from the VPD pages the SCSI layer exposes, or the wwid attribute
// (NVMe, or SCSI without readable pages).
void ReadIdentity(const fs::path& disk, ScsiIdentity* id) {
  std::vector<uint8_t> page;
  if (ReadBytes(disk / "device" / "vpd_pg83", &page)) {
    if (auto d = ParseDeviceIdentificationPage(page); d.ok()) id->designators = std::move(*d);
  }
  if (ReadBytes(disk / "device" / "vpd_pg80", &page)) {
    if (auto s = ParseUnitSerialPage(page); s.ok()) id->serial = std::move(*s);
  }
  if (id->designators.empty()) {
    std::string wwid;
    if (ReadText(disk / "device" / "wwid", &wwid) || ReadText(disk / "wwid", &wwid))
      id->designators = DesignatorsFromWwid(wwid);
  }
  if (id->serial.empty()) {
    std::string serial;
    if (ReadText(disk / "device" / "serial", &serial) || ReadText(disk / "serial", &serial))
      id->serial = TrimSerial(serial);
  }
}

}  // namespace

Status ReadBlockDevice(const std::string& sysfs_root, dev_t device, Volume* v) {
  const std::string majmin = std::to_string(major(device)) + ":" + std::to_string(minor(device));
  std::error_code ec;
  fs::path dir = fs::canonical(fs::path(sysfs_root) / "dev" / "block" / majmin, ec);
  if (ec)
    return Status::NotFound("block device " + majmin + " is not in " + sysfs_root +
                            "/dev/block (" + ec.message() + ")");
  // A partition keeps queue/ and device/ in its parent disk's directory.
  fs::path disk = fs::exists(dir / "partition") ? dir.parent_path() : dir;

  std::string text;
  if (!ReadText(dir / "size", &text))
    return Status::Internal("cannot read " + (dir / "size").string());
  v->size_bytes = std::stoull(text) * 512;  // sysfs counts 512-byte sectors
  if (ReadText(disk / "queue" / "logical_block_size", &text)) {
    v->block_size = static_cast<uint32_t>(std::stoul(text));
  } else {
    v->block_size = 512;
  }
  if (v->device_path.empty()) v->device_path = "/dev/" + dir.filename().string();
  ReadIdentity(disk, &v->identity);
  if (ReadText(disk / "loop" / "backing_file", &text)) v->backing_file = text;
  return Status::Ok();
}

Result<Volume> ResolveVolume(std::string_view name, const ResolverOptions& options) {
  if (name.empty()) return Status::InvalidArgument(std::string("empty volume name; ") + kAcceptedForms);

  if (name.rfind("cow:", 0) == 0) {
    std::string_view cow = name.substr(4);
    if (!ValidCowName(cow))
      return Status::InvalidArgument("\"" + std::string(name) +
                                     "\" is not a valid software-cow volume name; use cow:NAME "
                                     "with 1 to 64 letters, digits, '.', '_' or '-'");
    Volume v;
    v.kind = VolumeKind::kCow;
    v.name = std::string(name);
    v.device_path = v.name;
    // What is stacked on it (and its size, when a loop device is over it).
    std::optional<MountTable> own;
    if (!options.mounts) {
      auto read = MountTable::Read(options.mountinfo);
      if (!read.ok()) return read.status();
      own = std::move(*read);
    }
    const MountTable& table = options.mounts ? *options.mounts : *own;
    CowStack stack = CowStackOf(std::string(cow), options.sysfs_root, table);
    v.size_bytes = stack.size_bytes;
    v.upper = std::move(stack.mounts);
    return v;
  }
  if (name.rfind("iscsi://", 0) == 0) return ResolveIscsiVolume(name, options.iscsi);
  if (name.find("://") != std::string_view::npos)
    return Status::InvalidArgument("unsupported URL scheme in \"" + std::string(name) + "\"; " +
                                   kAcceptedForms);

  const std::string path(name);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return Status::NotFound("no such file, device or mount point: " + path + " (" +
                              kAcceptedForms + ")");
    return Status::InvalidArgument("cannot examine " + path + ": " + std::strerror(errno));
  }

  std::optional<MountTable> own;
  if (!options.mounts) {
    auto read = MountTable::Read(options.mountinfo);
    if (!read.ok()) return read.status();
    own = std::move(*read);
  }
  const MountTable* table = options.mounts ? options.mounts : &*own;

  Volume v;
  if (S_ISBLK(st.st_mode)) {
    v.kind = VolumeKind::kBlock;
    v.device_path = fs::canonical(path).string();
    v.name = v.device_path;
    SNAPSET_RETURN_IF_ERROR(ReadBlockDevice(options.sysfs_root, st.st_rdev, &v));
    if (auto m = table->OfDevice(st.st_rdev)) {
      v.kind = VolumeKind::kFilesystem;
      v.name = m->mount_point;
      v.mount_point = m->mount_point;
      v.filesystem = m->fstype;
    }
    v.lower = CowVolumeUnder(st.st_rdev, options.sysfs_root, *table);
    return v;
  }
  if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
    return Status::InvalidArgument(path + " is neither a block device nor a path in a mounted "
                                   "filesystem (" + kAcceptedForms + ")");

  std::error_code ec;
  const std::string real = fs::canonical(path, ec).string();
  if (ec) return Status::InvalidArgument("cannot resolve " + path + ": " + ec.message());
  auto m = table->Containing(real);
  if (!m) return Status::NotFound(path + " is not inside any mounted filesystem");
  v.kind = VolumeKind::kFilesystem;
  v.name = m->mount_point;
  v.mount_point = m->mount_point;
  v.filesystem = m->fstype;

  // A block-backed filesystem takes its size and identity from the device;
  // others (tmpfs, FUSE, network filesystems) from statvfs.
  struct stat src;
  if (!m->source.empty() && m->source.front() == '/' && ::stat(m->source.c_str(), &src) == 0 &&
      S_ISBLK(src.st_mode)) {
    v.device_path = fs::canonical(m->source, ec).string();
    SNAPSET_RETURN_IF_ERROR(ReadBlockDevice(options.sysfs_root, src.st_rdev, &v));
    v.lower = CowVolumeUnder(src.st_rdev, options.sysfs_root, *table);
    return v;
  }
  v.device_path = m->source;
  struct statvfs vfs;
  if (::statvfs(v.mount_point.c_str(), &vfs) == 0) {
    v.size_bytes = uint64_t(vfs.f_blocks) * vfs.f_frsize;
    v.block_size = static_cast<uint32_t>(vfs.f_frsize);
  }
  return v;
}

}  // namespace snapset
