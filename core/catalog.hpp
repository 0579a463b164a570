// The catalog: every snapshot set, its snapshots and its timeline, in one
// SQLite file, <state-dir>/catalog.db (WAL journal, synchronous=FULL, so a
// committed transaction survives power loss).
//
// Life of a set in the catalog:
//   BeginSet      -> state "creating", with its planned snapshots (id,
//                    volume, provider): enough to abort it on every provider
//                    after a crash
//   CompleteSet   -> state "complete", snapshots carry their properties
//   AbortSet      -> state "aborted", snapshots removed, reason and timeline
//                    kept (so `snapset show` can explain a failed set)
//   RecordAbortIncomplete
//                 -> state "abort-incomplete": a provider's abort failed, so
//                    something of the set may still exist there. The plan
//                    stays (recovery deletes each planned snapshot again),
//                    with what each failing provider said remains; every
//                    later start retries, then AbortSet.
// A snapshot is a user's only while its set is complete: lists show
// complete sets only, unless asked for all.
//
// Thread-safety: one Catalog object may be used from several threads (calls
// are serialized inside); several processes may open the same file (SQLite
// locking, busy timeout 5 s).
#ifndef SNAPSET_CORE_CATALOG_HPP
#define SNAPSET_CORE_CATALOG_HPP

#include <snapset/status.hpp>

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace snapset {

enum class SetState { kCreating, kComplete, kAborted, kAbortIncomplete };
// "creating", "complete", "aborted", "abort-incomplete"
const char* SetStateName(SetState s);

struct SnapshotRecord {
  std::string snapshot_id;
  std::string set_id;
  std::string volume;         // Volume::name
  std::string provider_id;    // registration UUID
  std::string provider_name;  // at creation time
  int64_t created_ns = 0;     // CLOCK_REALTIME
  uint32_t attributes = 0;    // SNAPSET_ATTR_*
  std::string exposed_as;     // "" when not exposed
  std::string snapshot_device;
  std::string volume_device;  // DeviceKey of the volume at the cut; "" if unknown
  // Lost: its provider no longer holds it or can no longer read it (why,
  // in the provider's words, and when snapset learnt it). "" and 0: not.
  std::string lost_reason;
  int64_t lost_ns = 0;
};

// What a failed abort left on one provider.
struct LeftoverRecord {
  std::string provider_id;  // registration UUID
  std::string provider_name;
  std::string detail;  // the provider's answer: what remains, and where
};

// A writer that took part in a complete set.
struct WriterRecord {
  std::string name;
  std::string kind;   // "process", "express", "hook"
  std::string state;  // its state at the end: "waiting-for-backup-complete"
  std::string metadata_json;     // its metadata document; "" for hooks
  std::string backup_blob_json;  // its backup documents, "{}" for none
};

struct SetRecord {
  std::string set_id;
  SetState state = SetState::kCreating;
  int64_t created_ns = 0;  // CLOCK_REALTIME at BeginSet
  uint32_t context = 0;    // SNAPSET_ATTR_* asked for
  pid_t requestor_pid = 0; // for auto-release: deleted when it ends
  std::string error;       // why it was aborted
  std::string timeline_json;
  std::vector<SnapshotRecord> snapshots;
  std::vector<LeftoverRecord> leftovers;  // abort-incomplete only
  std::vector<WriterRecord> writers;      // complete sets
};

class Catalog {
 public:
  // Creates <state_dir> (0700; parents with the default mode; an existing
  // directory keeps its mode) and the database if missing.
  // Errors: InvalidArgument for an empty state_dir, Unavailable if the
  // directory or file cannot be created or opened or is locked too long,
  // Internal if it is not a snapset catalog of this schema version (the
  // message names the file and what to do). A refused file is not modified.
  static Result<std::unique_ptr<Catalog>> Open(const std::string& state_dir);
  ~Catalog();

  const std::string& path() const { return path_; }

  // Records `set` as creating, with set.snapshots as its plan, in one
  // transaction. created_ns 0 means now; a snapshot's created_ns 0 means
  // its set's (here and in CompleteSet), and its set_id may be left empty.
  // AlreadyExists if the set id is present (any state) or a snapshot id is
  // used by any set; nothing is written then. InvalidArgument if set.state
  // is not kCreating, an id is empty or a snapshot names another set.
  Status BeginSet(const SetRecord& set);
  // Replaces the set's snapshots with `snapshots` (with their properties,
  // kept in the given order) and marks it complete, in one transaction.
  // NotFound / BadState (not creating) / InvalidArgument (no snapshots, or
  // as in BeginSet) / AlreadyExists (a snapshot id of another set); on any
  // error the set stays creating with its plan.
  // `writers` are the set's writers, kept in the given order.
  Status CompleteSet(const std::string& set_id, const std::vector<SnapshotRecord>& snapshots,
                     const std::string& timeline_json,
                     const std::vector<WriterRecord>& writers = {});
  // Marks a creating or abort-incomplete set aborted, drops its snapshots
  // and leftovers, keeps the reason and timeline. NotFound / BadState
  // (complete). Aborting an aborted set is OK (abort is idempotent): its
  // first non-empty reason stays (it is the cause), the timeline is
  // replaced unless `timeline_json` is empty.
  Status AbortSet(const std::string& set_id, const std::string& error,
                  const std::string& timeline_json);
  // Marks a creating or abort-incomplete set abort-incomplete: its plan
  // stays, its leftovers become `leftovers` (at least one); reason and
  // timeline as in AbortSet. NotFound / BadState (complete or aborted) /
  // InvalidArgument (no leftover).
  Status RecordAbortIncomplete(const std::string& set_id, const std::string& error,
                               const std::vector<LeftoverRecord>& leftovers,
                               const std::string& timeline_json);

  // Any state: a creating or abort-incomplete set carries its plan, an
  // aborted one none.
  // NotFound.
  Result<SetRecord> GetSet(const std::string& set_id) const;
  // A snapshot of a complete set; NotFound otherwise (planned ones too).
  Result<SnapshotRecord> GetSnapshot(const std::string& snapshot_id) const;
  // Sets newest first (created_ns, then set id); `include_all` adds
  // creating and aborted ones.
  Result<std::vector<SetRecord>> ListSets(bool include_all = false) const;
  // Sets still "creating" (in progress, or left so by a requestor that
  // died) or "abort-incomplete", oldest first, each with its plan and
  // leftovers: what recovery looks at.
  Result<std::vector<SetRecord>> ListUnfinished() const;
  // Snapshots of complete sets on `volume`, oldest first (snapshot
  // created_ns, then the set's, then set id and plan order).
  Result<std::vector<SnapshotRecord>> SnapshotsOfVolume(const std::string& volume) const;

  // Removes one snapshot; a complete set with no snapshots left is removed
  // too. NotFound / BadState (its set is still creating).
  Status DeleteSnapshot(const std::string& snapshot_id);
  // Removes a set and all its rows, whatever its state. NotFound.
  Status DeleteSet(const std::string& set_id);
  // Records where a snapshot is exposed ("" = not exposed); attributes are
  // left as the provider reported them. NotFound / BadState as DeleteSnapshot.
  Status SetExposed(const std::string& snapshot_id, const std::string& exposed_as);
  // Records the snapshot as lost, with the reason, unless it is already
  // (the first reason stays). A snapshot that is not there: nothing to do.
  Status MarkLost(const std::string& snapshot_id, const std::string& reason);

 private:
  Catalog() = default;
  mutable std::mutex mu_;
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace snapset

#endif  // SNAPSET_CORE_CATALOG_HPP
