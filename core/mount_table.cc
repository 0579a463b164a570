#include "core/mount_table.hpp"

#include <sys/sysmacros.h>

#include <fstream>
#include <sstream>

namespace snapset {

std::string UnescapeMountField(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7' && s[i + 2] >= '0' && s[i + 2] <= '7' &&
        s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(static_cast<char>(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) |
                                      (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

MountTable MountTable::Parse(std::string_view text) {
  MountTable table;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mount-point options [optional...] - fstype source super
    std::istringstream fields(line);
    std::string id, parent, majmin, root, mount_point, options, field;
    if (!(fields >> id >> parent >> majmin >> root >> mount_point >> options)) continue;
    while (fields >> field && field != "-") {
    }
    std::string fstype, source, super_options;
    if (field != "-" || !(fields >> fstype >> source)) continue;
    fields >> super_options;
    unsigned major = 0, minor = 0;
    if (std::sscanf(majmin.c_str(), "%u:%u", &major, &minor) != 2) continue;
    MountEntry e;
    e.device = makedev(major, minor);
    e.root = UnescapeMountField(root);
    e.mount_point = UnescapeMountField(mount_point);
    e.fstype = UnescapeMountField(fstype);
    e.source = UnescapeMountField(source);
    e.options = UnescapeMountField(options);
    e.super_options = UnescapeMountField(super_options);
    table.entries_.push_back(std::move(e));
  }
  return table;
}

Result<MountTable> MountTable::Read(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::Internal("cannot read the mount table " + path);
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str());
}

namespace {
bool IsUnder(std::string_view path, std::string_view mount_point) {
  if (mount_point == "/") return !path.empty() && path.front() == '/';
  if (path.size() < mount_point.size() || path.compare(0, mount_point.size(), mount_point) != 0)
    return false;
  return path.size() == mount_point.size() || path[mount_point.size()] == '/';
}
}  // namespace

std::optional<MountEntry> MountTable::Containing(std::string_view path) const {
  const MountEntry* best = nullptr;
  for (const auto& e : entries_) {
    if (!IsUnder(path, e.mount_point)) continue;
    // >= : a later mount on the same point hides the earlier one.
    if (!best || e.mount_point.size() >= best->mount_point.size()) best = &e;
  }
  if (!best) return std::nullopt;
  return *best;
}

std::optional<MountEntry> MountTable::OfDevice(dev_t device) const {
  const MountEntry* found = nullptr;
  for (const auto& e : entries_) {
    // Prefer the mount of the filesystem's root over bind mounts of subtrees.
    if (e.device == device && (!found || (e.root == "/" && found->root != "/"))) found = &e;
  }
  if (!found) return std::nullopt;
  return *found;
}

}  // namespace snapset
