// SPDX-License-Identifier: Apache-2.0
// Express writers (VSS's name for writers without a process of their own):
// a file <config-dir>/writers.d/NAME.json that declares a writer's metadata
// document and, optionally, a command per event:
//
//   {
//     "metadata": { "name": "app", "components": [ ... ] },
//     "commands": { "freeze": ["/usr/bin/app-ctl", "pause"],
//                   "thaw":   ["/usr/bin/app-ctl", "resume"] }
//   }
//
// Commands run as hooks do (core/hook_writers.hpp: no shell, environment
// SNAPSET_SET_ID / SNAPSET_VOLUMES / SNAPSET_PHASE, own process group,
// killed at the deadline). An event without a command succeeds. Events that
// may have commands: prepare-backup, prepare-snapshot, freeze, thaw,
// post-snapshot, abort, backup-complete, pre-restore, post-restore.
#ifndef SNAPSET_CORE_EXPRESS_WRITER_HPP
#define SNAPSET_CORE_EXPRESS_WRITER_HPP

#include <snapset/status.hpp>
#include <snapset/writer.hpp>

#include <map>
#include <string>
#include <vector>

namespace snapset {

struct ExpressWriter {
  std::string name;  // NAME of NAME.json
  std::string path;  // the declaration
  writer::Metadata metadata;
  std::map<writer::Event, std::vector<std::string>> commands;
};

// Reads one declaration. The file and each command's program must be safe
// to run with the coordinator's privileges (CheckTrustedFile). Errors:
// InvalidArgument naming the file and the field that is wrong, Config for
// an unsafe file.
Result<ExpressWriter> LoadExpressWriter(const std::string& path);

// Every NAME.json in <config_dir>/writers.d, in name order (none if the
// folder is missing). The first bad one is an error: a writer that silently
// does not run is worse.
Result<std::vector<ExpressWriter>> DiscoverExpressWriters(const std::string& config_dir);

}  // namespace snapset

#endif  // SNAPSET_CORE_EXPRESS_WRITER_HPP
