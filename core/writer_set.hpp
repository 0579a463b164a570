// SPDX-License-Identifier: Apache-2.0
// The writers of one snapshot set (DESIGN §4, §11): every writer process
// found in the run directory, every express writer of writers.d/NAME.json,
// and the hooks of writers.d, driven through VSS's events in order:
//
//   Discover           connect to each writer socket, check its owner, identify
//   PrepareBackup      the set id, its volumes, the selected components
//   PrepareSnapshot
//   Freeze             the writer window starts (60 s by default)
//   Thaw               the window ends; each writer's state is collected:
//                      any failure fails the set ("interrogate the writers")
//   PostSnapshot       the set is cut and complete on every provider
//   Abort              from any point: frozen writers are thawed (express,
//                      hooks) or told to abort (processes), and connections close
//
// A writer process keeps its connection from Discover to PostSnapshot: its
// held session. A writer that fails, hangs past its deadline, crashes,
// disconnects or answers garbage fails the set with an error that names it
// and the event; its connection is closed, so the writer library aborts its
// side even if no abort can reach it.
//
// Thread-safety: none; the set's thread drives it.
#ifndef SNAPSET_CORE_WRITER_SET_HPP
#define SNAPSET_CORE_WRITER_SET_HPP

#include <snapset/status.hpp>
#include <snapset/writer.hpp>

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/catalog.hpp"  // WriterRecord
#include "core/timeline.hpp"

namespace snapset {

struct WriterSetOptions {
  std::string config_dir;  // writers.d, writers.json
  std::string run_dir;     // <run_dir>/writers/*.sock
  // The writer window: from the start of Freeze() to the end of Thaw().
  std::chrono::milliseconds window{60000};
  // Bound on every other event (identify, prepare-*, post-snapshot, abort).
  std::chrono::milliseconds event_timeout{60000};
};

// Who may serve a writer socket: root and the users of writers.json's
// "allowed_users" (names or uids). Errors: Config naming the file and the
// entry that is wrong (an unknown user, a file that is not safe).
Result<std::vector<uid_t>> LoadAllowedWriterUsers(const std::string& config_dir);

// One writer as `snapset writers list` shows it.
struct WriterStatus {
  std::string name;
  std::string kind;
  std::string state;       // the writer's state, or "unreachable"
  std::string failure;     // "" when none
  std::string last_error;  // "" when none
  std::string set_id;      // the set it is in or was last in
  std::string location;    // socket or declaration file
  pid_t pid = 0;           // processes
  std::optional<writer::Metadata> metadata;
};

// Every writer's status, without taking part in a set: a status (and
// identify) request to each process; express writers and hooks are
// "stable". A writer that cannot be asked is listed with the reason.
Result<std::vector<WriterStatus>> ListWriters(const WriterSetOptions& options);

// What every event of a set tells the writers.
struct WriterEventArgs {
  std::string set_id;
  std::vector<std::string> volumes;
  std::vector<std::string> components;  // selected logical paths; empty: all
};

// Tells the writers of a complete set that the backup application has
// copied it (VSS BackupComplete): backup-complete to each writer process
// (its socket by name) and the backup-complete command of each express
// writer; hooks have nothing to do. Every writer is told even when one
// fails; the first failure is returned: WriterFailed / WriterTimeout naming
// the writer, Unavailable for a writer that is no longer running.
Status SendBackupComplete(const WriterSetOptions& options, const std::string& set_id,
                          const std::vector<WriterRecord>& writers);

// Sends pre-restore or post-restore (`event`) for a revert to `set_id` to
// the set's writers, each with the backup documents it returned for the
// set; express writers run their command for it. Every writer is told; the
// first failure is returned, naming the writer (Unavailable: a writer
// process that is not running). `restore_status`, for post-restore: what
// the revert did ("reverted", "not-reverted", "partly-reverted").
Status SendRestoreEvent(const WriterSetOptions& options, writer::Event event,
                        const std::string& set_id, const std::vector<std::string>& volumes,
                        const std::vector<WriterRecord>& writers,
                        const std::string& restore_status = "");

class WriterSet {
 public:
  // Finds and identifies the writers. `timeline` (may be null) gets a span
  // per writer event on lane "writer:<name>". Errors: a bad express writer
  // or hook (InvalidArgument, Config), a writer process that fails identify
  // (WriterFailed, WriterTimeout). A socket nobody listens on (its writer
  // died) or one of a user not allowed is skipped, with an instant on the
  // timeline saying why.
  static Result<std::unique_ptr<WriterSet>> Discover(const WriterSetOptions& options,
                                                     std::shared_ptr<Timeline> timeline);
  ~WriterSet();

  bool empty() const;
  // Metadata of every writer that has some (processes and express writers).
  std::vector<std::pair<std::string, writer::Metadata>> metadata() const;

  // `components`: writer name -> its selected logical paths; a writer not
  // named gets an empty list (all of its components).
  Status PrepareBackup(const std::string& set_id, const std::vector<std::string>& volumes,
                       const std::map<std::string, std::vector<std::string>>& components);
  Status PrepareSnapshot();
  Status Freeze();
  Status Thaw();
  Status PostSnapshot();
  // Never fails: what goes wrong is on the timeline. Safe to call twice,
  // and at any point.
  void Abort();

  std::vector<WriterRecord> Records() const;

  class Participant;  // one writer (writer_set.cc)

 private:
  WriterSet() = default;
  Status Send(writer::Event e, std::chrono::steady_clock::time_point deadline);
  WriterEventArgs ArgsFor(const Participant& w) const;

  WriterSetOptions options_;
  std::shared_ptr<Timeline> timeline_;
  std::vector<std::unique_ptr<Participant>> writers_;
  WriterEventArgs args_;
  std::map<std::string, std::vector<std::string>> components_;
  std::chrono::steady_clock::time_point window_end_{};
  bool frozen_ = false;  // Freeze() started and Thaw() has not ended
  bool in_set_ = false;  // PrepareBackup() started and the set has not ended
};

}  // namespace snapset

#endif  // SNAPSET_CORE_WRITER_SET_HPP
