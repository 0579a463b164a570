// SPDX-License-Identifier: Apache-2.0
#include "core/component_volumes.hpp"

#include <algorithm>
#include <filesystem>

namespace snapset {

namespace {

const writer::Component* Find(const writer::Metadata& m, const std::string& logical_path) {
  for (const auto& c : m.components)
    if (c.logical_path == logical_path) return &c;
  return nullptr;
}

std::string WhatThereIs(const std::vector<std::pair<std::string, writer::Metadata>>& writers) {
  if (writers.empty()) return "no writer is running or declared";
  std::string out;
  for (const auto& [name, m] : writers) {
    out += (out.empty() ? "" : "; ") + name + " (";
    std::string comps;
    for (const auto& c : m.components) comps += (comps.empty() ? "" : ", ") + c.logical_path;
    out += (comps.empty() ? "no components" : "components " + comps) + ")";
  }
  return "the writers are: " + out;
}

bool Below(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

}  // namespace

Result<std::vector<SelectedComponent>> SelectComponents(
    const std::vector<std::pair<std::string, writer::Metadata>>& writers,
    const std::vector<std::string>& writer_names, const std::vector<std::string>& component_paths) {
  std::vector<SelectedComponent> out;
  auto add = [&](const std::string& w, const std::string& p) {
    for (const auto& s : out)
      if (s.writer == w && s.logical_path == p) return;
    out.push_back({w, p});
  };
  for (const auto& name : writer_names) {
    bool found = false;
    for (const auto& [w, m] : writers) {
      if (w != name && m.name != name) continue;
      found = true;
      for (const auto& c : m.components) add(w, c.logical_path);
    }
    if (!found) return Status::NotFound("no writer named " + name + "; " + WhatThereIs(writers));
  }
  for (const auto& spec : component_paths) {
    std::string only_writer, path = spec;
    // WRITER:PATH, when WRITER is one of the writers (a logical path may
    // hold ':' itself).
    if (auto colon = spec.find(':'); colon != std::string::npos) {
      const std::string w = spec.substr(0, colon);
      for (const auto& [name, m] : writers)
        if (name == w) only_writer = w;
      if (!only_writer.empty()) path = spec.substr(colon + 1);
    }
    std::vector<std::string> owners;
    for (const auto& [w, m] : writers)
      if ((only_writer.empty() || w == only_writer) && Find(m, path)) owners.push_back(w);
    if (owners.empty())
      return Status::NotFound("no writer has a component " + spec + "; " + WhatThereIs(writers));
    if (owners.size() > 1)
      return Status::InvalidArgument("component " + path + " is in writers " + owners[0] + " and " +
                                     owners[1] + "; say which: --component " + owners[0] + ":" +
                                     path);
    add(owners[0], path);
  }
  return out;
}

Result<std::vector<ComponentFile>> ComponentFiles(
    const std::vector<std::pair<std::string, writer::Metadata>>& writers,
    const std::vector<SelectedComponent>& selected, const MountTable& mounts) {
  std::vector<ComponentFile> out;
  for (const auto& s : selected) {
    const writer::Component* c = nullptr;
    for (const auto& [w, m] : writers)
      if (w == s.writer) c = Find(m, s.logical_path);
    if (!c) return Status::NotFound("writer " + s.writer + " has no component " + s.logical_path);
    std::vector<const writer::FileGroup*> groups;
    for (const auto* list : {&c->database_files, &c->log_files, &c->files})
      for (const auto& g : *list) groups.push_back(&g);
    for (const auto* g : groups) {
      // Lexically normal: metadata names paths that may not exist yet (a
      // WAL file), so they are not canonicalized.
      const std::string path = std::filesystem::path(g->path).lexically_normal().string();
      const std::string shown = path + (path.back() == '/' ? "" : "/") + g->filespec;
      auto m = mounts.Containing(path);
      if (!m)
        return Status::NotFound("file " + shown + " of component " + s.writer + ":" +
                                s.logical_path + " is on no mounted filesystem");
      std::vector<std::string> points = {m->mount_point};
      // Filesystems on devices only: /proc, tmpfs and the like below a
      // recursive path are not volumes anyone snapshots.
      if (g->recursive)
        for (const auto& e : mounts.entries())
          if (Below(e.mount_point, path) && e.source.rfind("/dev/", 0) == 0 &&
              std::find(points.begin(), points.end(), e.mount_point) == points.end())
            points.push_back(e.mount_point);
      for (const auto& p : points) out.push_back({s, shown, p});
    }
  }
  return out;
}

}  // namespace snapset
