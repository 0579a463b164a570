// snapset requestor API: what a backup application uses to take a
// consistent point-in-time snapshot of a set of volumes, all or none, and to
// manage the snapshots afterwards (DESIGN §4, §9).
//
//   auto r = snapset::Requestor::Open({.config_dir = "/etc/snapset",
//                                      .state_dir = "/var/lib/snapset"});
//   snapset::SetRequest req;
//   req.volumes = {"/srv/db", "/srv/logs"};
//   snapset::SetResult result = (*r)->CreateSet(req);
//   if (!result.status.ok()) ...   // nothing was created
//
// Thread-safety: one Requestor may create several sets at once from several
// threads, as long as the sets share no volume (a second set touching a
// volume of a set still being created gets BadState "set in progress", also
// across processes). Management calls may run concurrently.
#ifndef SNAPSET_REQUESTOR_HPP
#define SNAPSET_REQUESTOR_HPP

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <snapset/snapshot_info.hpp>
#include <snapset/status.hpp>
#include <snapset/timeline.hpp>
#include <string>
#include <vector>

namespace snapset {

// The longest commit window: writes are never held longer (DESIGN §4).
inline constexpr std::chrono::milliseconds kMaxCommitWindow{10000};
// The longest writer window, from freeze to thaw: writers are never held
// frozen longer (DESIGN §4).
inline constexpr std::chrono::milliseconds kMaxWriterWindow{60000};

struct RequestorOptions {
  std::string config_dir = "/etc/snapset";    // providers.d, writers.d
  std::string state_dir = "/var/lib/snapset"; // catalog.db, locks
  std::string run_dir = "/run/snapset";        // writers/*.sock: writer processes
  int log_level = 1;                           // SNAPSET_LOG_*: warnings by default
  std::string thaw_guard;                      // guard binary; "" = next to the program
};

// One snapshot set to create. The context is the flags below.
struct SetRequest {
  // As a user names them. May be empty when `writers` or `components` say
  // which volumes: those that hold the selected components' files.
  std::vector<std::string> volumes;
  // Components selected from the writers' metadata: every component of
  // each writer named here, and each component PATH (or WRITER:PATH). With
  // `volumes` given, a selected component with a file on another volume
  // refuses the set before anything is frozen.
  std::vector<std::string> writers;
  std::vector<std::string> components;
  std::map<std::string, std::string> pins;        // volume -> provider name
  std::vector<std::string> excluded;              // provider names
  bool persistent = true;       // survives the requestor
  bool auto_release = false;    // deleted when the requestor ends
  bool with_writers = true;     // run the writers: processes, writers.d
  bool replan_on_prepare_failure = true;
  std::chrono::milliseconds window = kMaxCommitWindow;      // configurable down only
  std::chrono::milliseconds writer_window = kMaxWriterWindow;  // configurable down only
  // Bound on each provider call outside the commit window; a provider that
  // does not answer in time is abandoned and unhealthy for the process.
  std::chrono::milliseconds provider_timeout{60000};
  size_t max_volumes = 64;
  std::string set_id;  // caller-supplied UUID: CreateSet is idempotent on it
};

// Which provider takes a volume, and how its writes are held.
struct PlannedVolume {
  std::string volume;         // canonical name
  std::string provider;       // provider name
  // "fsfreeze", the provider's hold ("write-gate", "array-fence"), both
  // joined by "+", or "none"
  std::string hold;
  bool crash_consistent = false;  // no hold possible: only the provider's atomicity
};

struct SnapshotResult {
  std::string snapshot_id;
  std::string volume;
  std::string provider;
  std::string provider_id;
  bool crash_consistent = false;
};

struct AbortOutcome {
  std::string provider;
  Status status;  // the provider's answer to abort_snapshots
};

struct SetResult {
  Status status;                      // OK only if the whole set was created
  std::string set_id;
  std::vector<PlannedVolume> plan;    // empty when planning itself failed
  std::vector<SnapshotResult> snapshots;  // empty unless status is OK
  std::vector<AbortOutcome> aborts;   // each provider that saw a failed set
  int64_t hold_ns = 0;                // first hold to last release
  TimelineData timeline;
};

// A snapshot as the catalog records it.
struct SnapshotEntry {
  std::string snapshot_id;
  std::string set_id;
  std::string volume;
  std::string provider;
  std::string provider_id;
  int64_t created_ns = 0;   // CLOCK_REALTIME
  uint32_t attributes = 0;  // SNAPSET_ATTR_*
  std::string exposed_as;
  std::string snapshot_device;
  // Lost: its provider no longer holds it, or can no longer read it (a
  // software provider's overflow deleted it). Why, in the provider's words,
  // and when snapset learnt it (RefreshLost). "" and 0: not lost.
  std::string lost_reason;
  int64_t lost_ns = 0;
};

// What Requestor::Diff found: the byte ranges of a snapshot that may differ
// from its base (an older snapshot of the same volume), or, without a base,
// that may hold data. Sorted, merged, each at most as coarse as the
// provider tracks changes (software-cow: its chunk size).
struct SnapshotDelta {
  std::string snapshot_id;
  std::string base_snapshot_id;  // "" : allocated ranges
  std::string volume;
  std::string provider;
  uint64_t volume_size = 0;
  std::vector<ByteRange> ranges;
  uint64_t changed_bytes() const {
    uint64_t n = 0;
    for (const auto& r : ranges) n += r.length;
    return n;
  }
};

// What Requestor::RefreshLost learnt.
struct LostRefresh {
  std::vector<SnapshotEntry> newly_lost;  // found lost now, reason filled in
  // Providers that could not be asked (provider name, why): their
  // snapshots keep the state the catalog had.
  std::vector<std::pair<std::string, std::string>> unanswered;
};

// What a failed abort left on one provider (abort-incomplete sets).
struct SetLeftover {
  std::string provider;
  std::string provider_id;
  std::string detail;  // the provider's answer: what remains, and where
};

// A writer that took part in a complete set, as the catalog keeps it.
struct SetWriterEntry {
  std::string name;
  std::string kind;   // "process", "express", "hook"
  std::string state;  // at the end of the set: "waiting-for-backup-complete"
  // Its metadata document (docs/writer-metadata.schema.json); "" for hooks.
  std::string metadata_json;
  // Named documents the writer returned for the set ("backup_label"): a
  // backup keeps them with the data, a restore gives them back.
  std::map<std::string, std::string> backup_blob;
};

struct SetEntry {
  std::string set_id;
  std::string state;  // "creating", "complete", "aborted", "abort-incomplete"
  int64_t created_ns = 0;
  uint32_t context = 0;
  std::string error;
  std::vector<SnapshotEntry> snapshots;  // abort-incomplete: its plan
  std::vector<SetLeftover> leftovers;    // abort-incomplete only
  std::vector<SetWriterEntry> writers;   // complete sets
  TimelineData timeline;
};

// One difference between the catalog and a provider (list --verify).
struct VerifyFinding {
  std::string snapshot_id;  // the snapshot concerned; "" for an object of a set
  std::string provider;
  std::string problem;  // "in the catalog but not on the provider", ...
  // An orphan: something snapset made on a provider that no catalog entry
  // explains (a snapshot of no set, a group or fence of a set that ended),
  // which RemoveOrphans removes. Not an orphan: a snapshot the catalog has
  // and the provider lost, or an object an abort-incomplete set still owns
  // (every start retries that abort).
  bool orphan = false;
  std::string kind = "snapshot";  // or the provider's kind: "group", "fence", "exposure"
  std::string name;               // an object's name where it lives ("" for a snapshot)
  std::string location;           // where it lives, as the provider says ("array a1")
  std::string set_id;             // the set it was made for, when known
};

// One orphan, and what removing it gave.
struct OrphanRemoval {
  VerifyFinding orphan;
  Status status;  // OK when removed (or, in a dry run, when it would be tried)
};

// How to revert.
struct RevertOptions {
  // Unmount the volumes' filesystems (and detach a cow volume's loop
  // device) after the writers' pre-restore, and mount them again, with the
  // same options, before their post-restore. Without it a mounted volume
  // is refused. A filesystem that is busy, mounted twice or a subtree is
  // refused before any volume changes.
  bool remount = false;
};

// What a revert did.
struct RevertResult {
  Status status;  // OK only if every volume asked for was reverted
  std::string set_id;
  std::vector<std::string> reverted;      // snapshot ids whose volume now holds them
  std::vector<std::string> not_reverted;  // the others, when status is not OK
  // The writers' answer to post-restore: the revert stands either way.
  Status post_restore;
  TimelineData timeline;
};

class Requestor {
 public:
  static Result<std::unique_ptr<Requestor>> Open(const RequestorOptions& options);
  virtual ~Requestor() = default;

  // Plans without creating anything: which provider takes which volume and
  // how writes are held. Same errors as CreateSet's planning.
  virtual Result<std::vector<PlannedVolume>> PlanSet(const SetRequest& request) = 0;

  // Creates the set, all or none. `on_plan`, if given, is called once the
  // plan is known, before any provider sees the set.
  virtual SetResult CreateSet(
      const SetRequest& request,
      const std::function<void(const std::vector<PlannedVolume>&)>& on_plan = nullptr) = 0;

  virtual Result<std::vector<SetEntry>> ListSets(bool include_failed = false) = 0;
  // Asks every provider holding snapshots of complete sets which of them it
  // still holds and can read (one list_snapshots each, bounded by a few
  // seconds), and records the others in the catalog as lost, with the
  // provider's reason: a software provider's overflow deletes snapshots on
  // its own. `snapset list` and `show` run it first. A provider that does
  // not answer changes nothing and is named in `unanswered`.
  virtual Result<LostRefresh> RefreshLost() = 0;
  // Changed blocks for incremental backup (provider ABI 1.3
  // changed_blocks): what `snapshot_id` may change against
  // `base_snapshot_id` ("" : its allocated ranges). InvalidArgument when
  // the base is not an older snapshot of the same volume and provider,
  // NotImplemented when the provider does not report changed blocks,
  // BadState for a lost snapshot.
  virtual Result<SnapshotDelta> Diff(const std::string& snapshot_id,
                                     const std::string& base_snapshot_id = "") = 0;
  virtual Result<SetEntry> GetSet(const std::string& set_id) = 0;
  virtual Result<SnapshotEntry> GetSnapshot(const std::string& snapshot_id) = 0;
  // Compares the catalog with what every provider holds. Lists providers
  // first, then reads the catalog, so that a set being created meanwhile is
  // never taken for an orphan.
  virtual Result<std::vector<VerifyFinding>> Verify() = 0;
  // The orphans Verify finds, removed from their providers one by one
  // (dry_run: only listed). An error for one does not stop the others.
  virtual Result<std::vector<OrphanRemoval>> RemoveOrphans(bool dry_run) = 0;

  // Deletes on the provider, then from the catalog.
  virtual Status DeleteSnapshot(const std::string& snapshot_id) = 0;
  virtual Status DeleteSet(const std::string& set_id) = 0;
  virtual Result<std::string> DeleteOldest(const std::string& volume) = 0;  // -> snapshot id

  // Tells the set's writers that the backup application has copied the set
  // (VSS BackupComplete): they leave waiting-for-backup-complete, and may,
  // say, truncate logs now kept elsewhere. NotFound / BadState (not a
  // complete set) / the first writer's failure, naming it; every writer is
  // told even when one fails.
  virtual Status BackupComplete(const std::string& set_id) = 0;

  // Reverts the volumes of a complete set to it (RevertSet), or one volume
  // to one snapshot (RevertSnapshot), on providers that offer revert: the
  // set's writers get pre-restore (any refusal stops the revert before a
  // volume changes) and post-restore. Refused before anything changes: a
  // volume with a mounted filesystem (unmount it first, or ask for
  // RevertOptions::remount), a set being created on a volume, a snapshot
  // its provider no longer has.
  virtual RevertResult RevertSet(const std::string& set_id, const RevertOptions& options) = 0;
  virtual RevertResult RevertSnapshot(const std::string& snapshot_id,
                                      const RevertOptions& options) = 0;
  RevertResult RevertSet(const std::string& set_id) { return RevertSet(set_id, {}); }
  RevertResult RevertSnapshot(const std::string& snapshot_id) {
    return RevertSnapshot(snapshot_id, {});
  }

  virtual Result<std::string> ExposeSnapshot(const std::string& snapshot_id) = 0;
  virtual Status UnexposeSnapshot(const std::string& snapshot_id) = 0;

  // Waits until every log line the requestor and its providers queued so
  // far reached stderr: a program calls it before it prints its own
  // results, so that the two do not interleave.
  virtual void FlushLog() {}
};

}  // namespace snapset

#endif  // SNAPSET_REQUESTOR_HPP
