// SPDX-License-Identifier: Apache-2.0
// Reverting volumes to a complete set, or to one of its snapshots
// (issue 15, point 6): the writers' pre-restore, the providers'
// revert_to_snapshot, the writers' post-restore.
//
// All or none, as far as a revert can be: everything that can refuse is
// asked before the first volume changes -- each snapshot is still on its
// provider, no volume carries a mounted filesystem (a revert replaces the
// blocks under it; with `remount`, those filesystems are unmounted after
// the writers' pre-restore and mounted again before their post-restore:
// core/remount.hpp), no set is being created on the volumes (their locks
// are held throughout), and every writer accepts pre-restore. A provider
// that fails after another one reverted cannot be undone (the old data is
// gone); the result then says which volumes were reverted and which not.
#ifndef SNAPSET_CORE_SET_REVERT_HPP
#define SNAPSET_CORE_SET_REVERT_HPP

#include <snapset/requestor.hpp>
#include <string>
#include <vector>

#include "core/catalog.hpp"
#include "core/set_creation.hpp"

namespace snapset {

// `only`: the snapshot ids of `set` to revert; empty for all of them.
RevertResult RevertToSet(const CreationEnv& env, const SetRecord& set,
                         const std::vector<std::string>& only, const RevertOptions& options,
                         std::chrono::milliseconds timeout);

}  // namespace snapset

#endif  // SNAPSET_CORE_SET_REVERT_HPP
