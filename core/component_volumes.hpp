// SPDX-License-Identifier: Apache-2.0
// Planning a set from writers' metadata (issue 15, point 4): which
// components a request selects, and which filesystems hold their files.
//
// Selection: `--writer NAME` selects every component of that writer;
// `--component PATH` the component of that logical path (in any writer, or
// WRITER:PATH to say which). A name that matches nothing, or a PATH that
// matches components of two writers, is an error that lists what exists.
//
// Volumes: every file group of a selected component (files, database and
// log files; not exclusions) lies on the mount that contains its path; a
// recursive group also takes every filesystem mounted below its path. The
// volume is named by its mount point, as a user names a filesystem volume.
#ifndef SNAPSET_CORE_COMPONENT_VOLUMES_HPP
#define SNAPSET_CORE_COMPONENT_VOLUMES_HPP

#include <snapset/status.hpp>
#include <snapset/writer.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/mount_table.hpp"

namespace snapset {

struct SelectedComponent {
  std::string writer;  // the writer's name (its socket or NAME.json)
  std::string logical_path;
};

// Errors: NotFound for a writer or component that no writer has (the
// message lists the writers and components there are), InvalidArgument for
// an ambiguous PATH.
Result<std::vector<SelectedComponent>> SelectComponents(
    const std::vector<std::pair<std::string, writer::Metadata>>& writers,
    const std::vector<std::string>& writer_names, const std::vector<std::string>& component_paths);

// One file group of a selected component and the filesystem under it.
struct ComponentFile {
  SelectedComponent component;
  std::string path;         // the group's path (and filespec)
  std::string mount_point;  // the volume that holds it
};

// Where the selected components' files are, in selection order; a
// recursive group gives one entry per filesystem at or below its path.
// Errors: NotFound for a file group on no mount (not possible with a root
// filesystem; a mount table read in a bare namespace).
Result<std::vector<ComponentFile>> ComponentFiles(
    const std::vector<std::pair<std::string, writer::Metadata>>& writers,
    const std::vector<SelectedComponent>& selected, const MountTable& mounts);

}  // namespace snapset

#endif  // SNAPSET_CORE_COMPONENT_VOLUMES_HPP
