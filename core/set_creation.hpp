// Creating one snapshot set: the event sequence of DESIGN §4 with every
// provider event of DESIGN §3, all or none.
//
//   resolve, plan (broker), lock volumes, record "creating" in the catalog
//   begin_prepare_snapshot per volume, end_prepare_snapshots   (re-plan on
//                                                               failure)
//   writers freeze                        -- the writer window starts
//   pre_commit_snapshots
//   hold writes (FIFREEZE, registered with the thaw guard first)
//                                         -- the commit window starts
//   commit_snapshots                      -- all providers in parallel
//   release writes: when the last commit returns, or at the deadline
//   post_commit_snapshots
//   writers thaw
//   pre_final_commit_snapshots, post_final_commit_snapshots
//   record "complete" in the catalog
//
// Provider calls of one phase run in parallel, one thread each, bounded in
// time (BoundedCalls). Any failure before the set is complete aborts it on
// every provider that saw it and leaves nothing in the catalog but the
// aborted set's reason and timeline -- or, when a provider's abort fails,
// the set as "abort-incomplete" with its plan and what remains, which every
// later start retries.
#ifndef SNAPSET_CORE_SET_CREATION_HPP
#define SNAPSET_CORE_SET_CREATION_HPP

#include <snapset/requestor.hpp>

#include <functional>
#include <string>
#include <vector>

#include "core/catalog.hpp"
#include "core/host_log.hpp"
#include "core/provider_registry.hpp"

namespace snapset {

struct CreationEnv {
  ProviderRegistry* registry = nullptr;
  Catalog* catalog = nullptr;
  std::string config_dir;
  std::string state_dir;
  std::string run_dir;  // <run_dir>/writers/*.sock: the writer processes
  std::string thaw_guard;  // guard binary
  pid_t requestor_pid = 0;
};

Result<std::vector<PlannedVolume>> PlanSnapshotSet(const CreationEnv& env,
                                                   const SetRequest& request);

SetResult CreateSnapshotSet(const CreationEnv& env, const SetRequest& request,
                            const std::function<void(const std::vector<PlannedVolume>&)>& on_plan);

struct RecoveryReport {
  int aborted = 0;                    // sets whose abort is now complete
  std::vector<SetRecord> incomplete;  // sets whose abort failed again, with what remains
};

// Aborts, on their providers, the sets a crashed coordinator left
// "creating", deletes any of their planned snapshots a provider completed
// before the crash, and marks the sets aborted; retries the same on the
// providers whose abort failed for an "abort-incomplete" set. A set whose
// undoing fails on some provider is (or stays) abort-incomplete, with what
// that provider said remains. Sets whose volumes are still locked by a live
// process are left alone. Config error if a set needs a provider that is no
// longer registered.
Result<RecoveryReport> RecoverInterruptedSets(const CreationEnv& env);

// A fresh random (version 4) UUID.
std::string NewUuid();

}  // namespace snapset

#endif  // SNAPSET_CORE_SET_CREATION_HPP
