// SPDX-License-Identifier: Apache-2.0
// snapset writer API: what an application links to take part in snapshot
// sets, so that its data in a set is application-consistent, not just
// crash-consistent (DESIGN §11, docs/writer-protocol.md).
//
// A writer is a process that listens on a Unix socket in snapset's run
// directory (<run_dir>/writers/<name>.sock, /run/snapset by default). For
// each set the coordinator connects once and sends the events in order:
//
//   identify -> prepare-backup -> prepare-snapshot -> freeze
//            -> thaw -> post-snapshot            (abort at any point)
//
// and later, on a new connection, backup-complete; around a revert,
// pre-restore and post-restore. The connection of one set stays open from
// identify to post-snapshot, so a writer keeps whatever it holds (a database
// session, a lock) from freeze to thaw on the same thread of control: the
// held session. If that connection breaks before the set is cut and thawed
// (the coordinator died, or failed the writer), the library calls OnAbort,
// and a writer frozen longer than the window the coordinator gave it is
// aborted by the library itself: an application is never left frozen.
//
// Making a writer is one class:
//
//   class MyWriter : public snapset::writer::Writer {
//     snapset::writer::Metadata Identify() override { ... }
//     Outcome OnFreeze(const EventContext& e) override { lock(); return {}; }
//     Outcome OnThaw(const EventContext& e) override { unlock(); return {}; }
//     void OnAbort(const EventContext& e) override { unlock(); }
//   };
//   MyWriter w;
//   snapset::Status s = snapset::writer::Serve(w, {.name = "mydb"});
//
// Thread-safety: Serve() calls the handlers of one Writer one at a time,
// never two at once (connections are served by their own threads, but the
// handlers take turns). "status" requests are answered by the library
// without calling a handler, also while a handler runs.
#ifndef SNAPSET_WRITER_HPP
#define SNAPSET_WRITER_HPP

#include <snapset/status.hpp>

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snapset::writer {

// The protocol version this header speaks (docs/writer-protocol.md).
inline constexpr int kProtocolVersion = 1;

// Events, as in VSS (CVssWriter::OnIdentify, OnPrepareBackup, ...).
enum class Event {
  kIdentify,
  kPrepareBackup,
  kPrepareSnapshot,
  kFreeze,
  kThaw,
  kPostSnapshot,
  kAbort,
  kBackupComplete,
  kPreRestore,
  kPostRestore,
  kStatus,  // no handler: the library answers with the state and last error
};

// A writer's state, as in VSS (VSS_WRITER_STATE). A failed state names the
// event that failed.
enum class State {
  kStable,
  kWaitingForFreeze,          // after prepare-snapshot
  kWaitingForThaw,            // after freeze: the writer holds its writes
  kWaitingForPostSnapshot,    // after thaw
  kWaitingForBackupComplete,  // after post-snapshot
  kFailedAtIdentify,
  kFailedAtPrepareBackup,
  kFailedAtPrepareSnapshot,
  kFailedAtFreeze,
  kFailedAtThaw,
  kFailedAtPostSnapshot,
  kFailedAtBackupComplete,
  kFailedAtPreRestore,
  kFailedAtPostRestore,
};

// Why a writer failed, as in VSS (VSS_E_WRITERERROR_*). kNone: it did not.
enum class Failure {
  kNone,
  kInconsistentSnapshot,  // the snapshot does not hold a consistent image
  kOutOfResources,
  kTimeout,       // an event took longer than it was given
  kRetryable,     // a new set may succeed
  kNonRetryable,  // it will not, until someone fixes something
};

// Names used on the wire and in the CLI: "prepare-backup", "waiting-for-thaw",
// "failed-at-freeze", "inconsistent-snapshot", ...
std::string_view EventName(Event e);
std::string_view StateName(State s);
std::string_view FailureName(Failure f);
std::optional<Event> ParseEvent(std::string_view name);
std::optional<State> ParseState(std::string_view name);
std::optional<Failure> ParseFailure(std::string_view name);
// The state a failure of `e` leaves; kStable for an event that has none.
State FailedAt(Event e);
bool IsFailed(State s);

// Files of a component (VSS AddFilesToFileGroup / AddDatabaseFiles):
// `filespec` is a glob over file names in `path` ("*" for all),
// `recursive` takes the folders below too.
struct FileGroup {
  std::string path;  // absolute
  std::string filespec = "*";
  bool recursive = false;
};

// A unit of backup and restore: a database, a set of files.
struct Component {
  std::string logical_path;               // its name, unique in the writer: "main", "db/app"
  std::string caption;                    // for people; optional
  bool selectable = true;                 // may be backed up alone
  std::vector<FileGroup> files;           // plain files
  std::vector<FileGroup> database_files;  // the database itself
  std::vector<FileGroup> log_files;       // its write-ahead log
  std::vector<FileGroup> exclusions;      // never backed up (temporary files)
};

// What a writer says about itself at identify (docs/writer-metadata.schema.json).
struct Metadata {
  std::string writer_id;  // a UUID naming the kind of writer, the same on every host
  std::string name;       // "sqlite", "postgresql"
  std::string instance;   // which one of that kind: a database path, a cluster
  // "restore-if-not-there", "restore-if-can-replace", "stop-restore-start",
  // "restore-to-alternate-location" or "custom".
  std::string restore_method = "restore-if-can-replace";
  std::vector<std::string> backup_types = {"full"};  // "full", "incremental", "differential", "log"
  std::vector<Component> components;
};

// What an event is about.
struct EventContext {
  Event event = Event::kIdentify;
  std::string set_id;                   // "" for identify and status
  std::vector<std::string> volumes;     // the set's volumes, canonical names
  std::vector<std::string> components;  // selected logical paths; empty: all
  std::string backup_type = "full";
  // When the event must be answered: for freeze, the end of the writer
  // window (the writer must be thawed by then; the library aborts it after).
  std::chrono::steady_clock::time_point deadline;
  // The documents the writer returned for the set being restored
  // (pre-restore, post-restore), or returned so far in this set.
  std::map<std::string, std::string> backup_blob;
  // post-restore: whether the volumes now hold the set -- "reverted",
  // "not-reverted" (nothing changed: resume as before) or "partly-reverted"
  // (some volumes went back, others not: do not start on them). "" from a
  // coordinator that does not say.
  std::string restore_status;
};

// A handler's answer. Default: success.
struct Outcome {
  Failure failure = Failure::kNone;
  std::string message;  // what went wrong and what to do; required on failure
  // Documents to keep with the set, by name ("backup_label"): merged into
  // the set's backup blob, recorded in the catalog, given back at restore.
  std::map<std::string, std::string> backup_blob;

  static Outcome Ok() { return {}; }
  static Outcome Fail(Failure f, std::string m) { return {f, std::move(m), {}}; }
  bool ok() const { return failure == Failure::kNone; }
};

class Writer {
 public:
  virtual ~Writer() = default;
  // The metadata; called at every identify, so it may change (a new table).
  virtual Metadata Identify() = 0;
  virtual Outcome OnPrepareBackup(const EventContext&) { return {}; }
  // Flush what can be flushed without stopping the application (a WAL
  // checkpoint), so that freeze is short.
  virtual Outcome OnPrepareSnapshot(const EventContext&) { return {}; }
  // Hold the application's writes until OnThaw (or OnAbort).
  virtual Outcome OnFreeze(const EventContext&) { return {}; }
  virtual Outcome OnThaw(const EventContext&) { return {}; }
  virtual Outcome OnPostSnapshot(const EventContext&) { return {}; }
  // The set failed, or its connection broke: release anything held. May
  // come in any state of the set, also twice.
  virtual void OnAbort(const EventContext&) {}
  virtual Outcome OnBackupComplete(const EventContext&) { return {}; }
  virtual Outcome OnPreRestore(const EventContext&) { return {}; }
  virtual Outcome OnPostRestore(const EventContext&) { return {}; }
};

struct ServeOptions {
  // The writer's name: the socket is <run_dir>/writers/<name>.sock. Letters,
  // digits, '-', '_' and '.', not starting with '.'.
  std::string name;
  std::string run_dir = "/run/snapset";  // env SNAPSET_RUN_DIR overrides the default
  // Who may connect: root, this process's user, and these (SO_PEERCRED).
  std::vector<uid_t> allowed_uids;
  // Serve() returns OK once this becomes true (checked every 100 ms), or on
  // SIGINT/SIGTERM if handle_signals.
  const std::atomic<bool>* stop = nullptr;
  bool handle_signals = true;
  // How long a frozen writer waits for thaw past the deadline the
  // coordinator gave it before aborting itself.
  std::chrono::milliseconds freeze_grace{2000};
};

// Listens and serves until stopped. Creates <run_dir>/writers if missing
// (mode 0755), replaces a stale socket of the same name, and removes its
// socket on return. Errors: InvalidArgument for a bad name, Unavailable
// when another live writer already serves that name, Internal for a socket
// that cannot be made.
Status Serve(Writer& writer, const ServeOptions& options);

}  // namespace snapset::writer

#endif  // SNAPSET_WRITER_HPP
