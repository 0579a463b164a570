#include "core/cow_stack.hpp"

#include <sys/sysmacros.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/mount_table.hpp"

namespace snapset {

namespace fs = std::filesystem;

namespace {

// The loop device's backing file as the kernel reports it, or "".
std::string BackingFile(const fs::path& block_dir) {
  std::ifstream in(block_dir / "loop" / "backing_file");
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  return line;
}

}  // namespace

std::string CowVolumeUnder(dev_t device, const std::string& sysfs_root, const MountTable& mounts) {
  const std::string majmin = std::to_string(major(device)) + ":" + std::to_string(minor(device));
  const std::string backing = BackingFile(fs::path(sysfs_root) / "dev" / "block" / majmin);
  if (backing.empty()) return "";
  for (const auto& m : mounts.entries()) {
    if (m.fstype != kCowdFuseType) continue;
    const std::string prefix = m.mount_point + "/";
    if (backing.rfind(prefix, 0) != 0) continue;
    const std::string rest = backing.substr(prefix.size());  // NAME/origin
    const auto slash = rest.find('/');
    if (slash != std::string::npos && rest.substr(slash) == "/origin")
      return "cow:" + rest.substr(0, slash);
  }
  return "";
}

CowStack CowStackOf(const std::string& name, const std::string& sysfs_root,
                    const MountTable& mounts) {
  std::vector<std::string> origins;
  for (const auto& m : mounts.entries())
    if (m.fstype == kCowdFuseType) origins.push_back(m.mount_point + "/" + name + "/origin");
  CowStack stack;
  if (origins.empty()) return stack;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(sysfs_root) / "block", ec)) {
    if (entry.path().filename().string().rfind("loop", 0) != 0) continue;
    const std::string backing = BackingFile(entry.path());
    if (std::find(origins.begin(), origins.end(), backing) == origins.end()) continue;
    std::ifstream size(entry.path() / "size");  // 512-byte sectors
    uint64_t sectors = 0;
    if (size >> sectors) stack.size_bytes = sectors * 512;
    std::ifstream dev(entry.path() / "dev");
    unsigned maj = 0, min = 0;
    char colon = 0;
    if (!(dev >> maj >> colon >> min) || colon != ':') continue;
    if (auto m = mounts.OfDevice(makedev(maj, min))) stack.mounts.push_back(m->mount_point);
  }
  return stack;
}

}  // namespace snapset
