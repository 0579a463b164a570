#include "core/catalog.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <string_view>
#include <utility>

namespace snapset {

namespace {

namespace fs = std::filesystem;

// Schema 2. Written once, in one transaction, by the first Open of a fresh
// file; a schema-1 file is migrated in place (Migration1To2). Values are
// never spliced into SQL: every statement below binds them.
//
// `ordinal` keeps a set's snapshots in the order the coordinator gave them
// (the plan's order), which rowids would not survive a CompleteSet rewrite.
// The UNIQUE (set_id, ordinal) index also serves the foreign key, so
// ON DELETE CASCADE does not scan the table.
//
// `leftovers`: what the failed abort of an "abort-incomplete" set could not
// remove, one row per provider that failed, in the order they answered.
//
// The sets table as schema 2 has it, under `name`.
std::string SetsTable(const std::string& name) {
  return "CREATE TABLE " + name + R"sql( (
  set_id        TEXT PRIMARY KEY NOT NULL,
  state         TEXT NOT NULL
                CHECK (state IN ('creating', 'complete', 'aborted', 'abort-incomplete')),
  created_ns    INTEGER NOT NULL,
  context       INTEGER NOT NULL,
  requestor_pid INTEGER NOT NULL,
  error         TEXT NOT NULL,
  timeline_json TEXT NOT NULL
);
)sql";
}

// What schema 2 adds to schema 1 besides the sets table's new CHECK.
constexpr char kSchema2Additions[] = R"sql(
CREATE INDEX sets_by_state ON sets (state, created_ns);
CREATE TABLE leftovers (
  set_id        TEXT NOT NULL REFERENCES sets (set_id) ON DELETE CASCADE,
  ordinal       INTEGER NOT NULL,
  provider_id   TEXT NOT NULL,
  provider_name TEXT NOT NULL,
  detail        TEXT NOT NULL,
  UNIQUE (set_id, ordinal)
);
PRAGMA user_version = 2;
)sql";

// What schema 3 adds: the writers of a complete set, each with its
// metadata document and backup blob (JSON text), in the order they took
// part.
constexpr char kSchema3Additions[] = R"sql(
CREATE TABLE set_writers (
  set_id           TEXT NOT NULL REFERENCES sets (set_id) ON DELETE CASCADE,
  ordinal          INTEGER NOT NULL,
  name             TEXT NOT NULL,
  kind             TEXT NOT NULL,
  state            TEXT NOT NULL,
  metadata_json    TEXT NOT NULL,
  backup_blob_json TEXT NOT NULL,
  UNIQUE (set_id, ordinal)
);
PRAGMA user_version = 3;
)sql";

// What schema 4 adds: what each snapshot's volume was when the set was cut
// (core/volume.hpp DeviceKey), so a revert finds its filesystem wherever it
// is mounted now. '' for snapshots recorded before.
constexpr char kSchema4Additions[] = R"sql(
ALTER TABLE snapshots ADD COLUMN volume_device TEXT NOT NULL DEFAULT '';
PRAGMA user_version = 4;
)sql";

// What schema 5 adds: a snapshot its provider no longer holds, or can no
// longer read (a software provider's overflow deleted it), is kept as lost,
// with the provider's reason and when snapset learnt it. '' and 0: not lost.
constexpr char kSchema5Additions[] = R"sql(
ALTER TABLE snapshots ADD COLUMN lost_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE snapshots ADD COLUMN lost_ns INTEGER NOT NULL DEFAULT 0;
PRAGMA user_version = 5;
)sql";

std::string FreshSchema() {
  return SetsTable("sets") + R"sql(
CREATE TABLE snapshots (
  snapshot_id     TEXT PRIMARY KEY NOT NULL,
  set_id          TEXT NOT NULL REFERENCES sets (set_id) ON DELETE CASCADE,
  ordinal         INTEGER NOT NULL,
  volume          TEXT NOT NULL,
  provider_id     TEXT NOT NULL,
  provider_name   TEXT NOT NULL,
  created_ns      INTEGER NOT NULL,
  attributes      INTEGER NOT NULL,
  exposed_as      TEXT NOT NULL,
  snapshot_device TEXT NOT NULL,
  UNIQUE (set_id, ordinal)
);
CREATE INDEX snapshots_by_volume ON snapshots (volume, created_ns);
PRAGMA application_id = 1397641299;
)sql" + kSchema2Additions +
         kSchema3Additions + kSchema4Additions + kSchema5Additions;
}

// Schema 1 -> 2: the new state needs a new CHECK, which SQLite gives only by
// rebuilding the table (https://sqlite.org/lang_altertable.html, "making
// other kinds of table schema changes"). Runs in one transaction with
// foreign keys off, so dropping the old table does not cascade to the
// snapshots, whose REFERENCES sets then name the rebuilt table.
std::string Migration1To2() {
  return SetsTable("sets_v2") + R"sql(
INSERT INTO sets_v2 (set_id, state, created_ns, context, requestor_pid, error, timeline_json)
  SELECT set_id, state, created_ns, context, requestor_pid, error, timeline_json FROM sets;
DROP TABLE sets;
ALTER TABLE sets_v2 RENAME TO sets;
)sql" + kSchema2Additions;
}

// 'SNPS': marks the file as a snapset catalog, so a foreign SQLite database
// is told apart from a catalog of another schema version.
constexpr int64_t kApplicationId = 0x534E5053;
constexpr int64_t kSchemaVersion = 5;
constexpr int kBusyTimeoutMs = 5000;

constexpr char kSetColumns[] =
    "sets.set_id, sets.state, sets.created_ns, sets.context, sets.requestor_pid, sets.error, "
    "sets.timeline_json";
constexpr char kSnapshotColumns[] =
    "s.snapshot_id, s.set_id, s.volume, s.provider_id, s.provider_name, s.created_ns, "
    "s.attributes, s.exposed_as, s.snapshot_device, s.volume_device, s.lost_reason, s.lost_ns";

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string Text(sqlite3_stmt* s, int col) {
  const unsigned char* p = sqlite3_column_text(s, col);
  if (!p) return "";
  return std::string(reinterpret_cast<const char*>(p), size_t(sqlite3_column_bytes(s, col)));
}

// What one catalog call is doing, so each error names the file and the
// operation ("catalog /var/lib/snapset/catalog.db: complete set X: ...").
class Op {
 public:
  Op(sqlite3* db, const std::string& path, std::string what)
      : db_(db), path_(path), what_(std::move(what)) {}

  sqlite3* db() const { return db_; }
  const std::string& path() const { return path_; }

  std::string Prefix() const { return "catalog " + path_ + ": " + what_ + ": "; }

  // Maps a SQLite result code to a Status. Must be called before any other
  // call on the connection, which would replace sqlite3_errmsg.
  Status Fail(int rc) const {
    const std::string detail = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    const std::string msg = Prefix() + detail;
    switch (rc & 0xff) {
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return Status::Unavailable(msg + " (still locked after " +
                                   std::to_string(kBusyTimeoutMs / 1000) +
                                   " s, likely by another snapset process; retry)");
      case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
          return Status::AlreadyExists(msg);
        return Status::Internal(msg);
      case SQLITE_NOTADB:
        return Status::Internal(path_ + " is not a SQLite database, so not a snapset catalog; "
                                "move it aside (snapset then starts an empty catalog) or use "
                                "another state directory");
      case SQLITE_CORRUPT:
        return Status::Internal(msg + "; the catalog is damaged: move " + path_ +
                                " aside (with its -wal and -shm files) and restore it from a "
                                "backup, or start an empty catalog");
      // The file or its directory cannot be opened or written: the operator
      // can fix that (owner, mode, mount), and the catalog is intact.
      case SQLITE_CANTOPEN:
      case SQLITE_PERM:
      case SQLITE_READONLY:
        return Status::Unavailable(msg + " (check the owner and mode of " + path_ +
                                   " and of its directory)");
      default:
        return Status::Internal(msg);
    }
  }

  Result<Stmt> Prepare(const std::string& sql) const {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), int(sql.size() + 1), &raw, nullptr);
    Stmt stmt(raw);
    if (rc != SQLITE_OK) return Fail(rc);
    return stmt;
  }

  // Runs constant SQL without parameters (transaction control, PRAGMAs, DDL).
  Status Exec(const char* sql) const {
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status::Ok() : Fail(rc);
  }

  // true: a row is ready; false: the statement is done.
  Result<bool> Step(sqlite3_stmt* s) const {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Fail(rc);
  }

  // Prepares `sql`, binds `args` to ?1, ?2, ... and leaves it ready to step.
  template <typename... Args>
  Result<Stmt> Query(const std::string& sql, const Args&... args) const {
    Result<Stmt> stmt = Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    int index = 0;
    int rc = SQLITE_OK;
    ((rc = rc == SQLITE_OK ? BindOne(stmt->get(), ++index, args) : rc), ...);
    if (rc != SQLITE_OK) return Fail(rc);
    return stmt;
  }

  // As Query, with the parameters in a vector (for SQL built from constant
  // fragments whose number of placeholders varies).
  Result<Stmt> QueryWith(const std::string& sql, const std::vector<std::string>& args) const {
    Result<Stmt> stmt = Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    for (size_t i = 0; i < args.size(); ++i) {
      int rc = BindOne(stmt->get(), int(i + 1), args[i]);
      if (rc != SQLITE_OK) return Fail(rc);
    }
    return stmt;
  }

  // A statement that returns no rows; yields the number of rows it changed.
  template <typename... Args>
  Result<int> Run(const std::string& sql, const Args&... args) const {
    Result<Stmt> stmt = Query(sql, args...);
    if (!stmt.ok()) return stmt.status();
    Result<bool> row = Step(stmt->get());
    if (!row.ok()) return row.status();
    return sqlite3_changes(db_);
  }

  // The first column of the first row of a query returning one integer.
  template <typename... Args>
  Result<int64_t> Int(const std::string& sql, const Args&... args) const {
    Result<Stmt> stmt = Query(sql, args...);
    if (!stmt.ok()) return stmt.status();
    Result<bool> row = Step(stmt->get());
    if (!row.ok()) return row.status();
    if (!*row) return Status::Internal(Prefix() + "no row from: " + sql);
    return int64_t(sqlite3_column_int64(stmt->get(), 0));
  }

 private:
  static int BindOne(sqlite3_stmt* s, int i, const std::string& v) {
    return sqlite3_bind_text64(s, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  }
  static int BindOne(sqlite3_stmt* s, int i, int64_t v) { return sqlite3_bind_int64(s, i, v); }

  sqlite3* db_;
  const std::string& path_;
  std::string what_;
};

// BEGIN ... COMMIT; rolls back unless committed, so an error on any
// statement leaves the catalog as it was.
class Transaction {
 public:
  explicit Transaction(const Op& op) : op_(op) {}
  ~Transaction() {
    // SQLite itself rolls back on some errors (SQLITE_FULL, ...); a second
    // ROLLBACK would only fail.
    if (open_ && !sqlite3_get_autocommit(op_.db()))
      sqlite3_exec(op_.db(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // IMMEDIATE takes the write lock up front (waiting up to the busy
  // timeout): a deferred read transaction that later tries to write gets
  // SQLITE_BUSY at once in WAL mode, without the busy handler.
  Status BeginWrite() { return Begin("BEGIN IMMEDIATE"); }
  // A consistent snapshot for reads made of several statements.
  Status BeginRead() { return Begin("BEGIN"); }
  Status Commit() {
    SNAPSET_RETURN_IF_ERROR(op_.Exec("COMMIT"));
    open_ = false;
    return Status::Ok();
  }

 private:
  Status Begin(const char* sql) {
    SNAPSET_RETURN_IF_ERROR(op_.Exec(sql));
    open_ = true;
    return Status::Ok();
  }

  const Op& op_;
  bool open_ = false;
};

Result<SetState> StateFromName(const Op& op, const std::string& name) {
  for (SetState s :
       {SetState::kCreating, SetState::kComplete, SetState::kAborted, SetState::kAbortIncomplete})
    if (name == SetStateName(s)) return s;
  return Status::Internal(op.Prefix() + "unknown set state '" + name + "'");
}

SnapshotRecord ReadSnapshot(sqlite3_stmt* s) {
  SnapshotRecord r;
  r.snapshot_id = Text(s, 0);
  r.set_id = Text(s, 1);
  r.volume = Text(s, 2);
  r.provider_id = Text(s, 3);
  r.provider_name = Text(s, 4);
  r.created_ns = sqlite3_column_int64(s, 5);
  r.attributes = uint32_t(sqlite3_column_int64(s, 6));
  r.exposed_as = Text(s, 7);
  r.snapshot_device = Text(s, 8);
  r.volume_device = Text(s, 9);
  r.lost_reason = Text(s, 10);
  r.lost_ns = sqlite3_column_int64(s, 11);
  return r;
}

// Sets matching `where` (constant SQL whose placeholders take `args`), each
// with its snapshots and leftovers in ordinal order. Three queries in one
// read transaction, so a concurrent writer cannot pair a set with another
// moment's snapshots.
Result<std::vector<SetRecord>> LoadSets(const Op& op, const std::string& where,
                                        const std::vector<std::string>& args,
                                        const std::string& order) {
  Transaction txn(op);
  SNAPSET_RETURN_IF_ERROR(txn.BeginRead());
  std::vector<SetRecord> sets;
  std::map<std::string, size_t> index;
  {
    Result<Stmt> stmt = op.QueryWith(
        std::string("SELECT ") + kSetColumns + " FROM sets WHERE " + where + " ORDER BY " + order,
        args);
    if (!stmt.ok()) return stmt.status();
    for (;;) {
      Result<bool> row = op.Step(stmt->get());
      if (!row.ok()) return row.status();
      if (!*row) break;
      sqlite3_stmt* s = stmt->get();
      SetRecord r;
      r.set_id = Text(s, 0);
      Result<SetState> state = StateFromName(op, Text(s, 1));
      if (!state.ok()) return state.status();
      r.state = *state;
      r.created_ns = sqlite3_column_int64(s, 2);
      r.context = uint32_t(sqlite3_column_int64(s, 3));
      r.requestor_pid = pid_t(sqlite3_column_int64(s, 4));
      r.error = Text(s, 5);
      r.timeline_json = Text(s, 6);
      index.emplace(r.set_id, sets.size());
      sets.push_back(std::move(r));
    }
  }
  if (sets.empty()) return sets;
  Result<Stmt> stmt =
      op.QueryWith(std::string("SELECT ") + kSnapshotColumns +
                       " FROM snapshots s JOIN sets ON sets.set_id = s.set_id WHERE " + where +
                       " ORDER BY s.set_id, s.ordinal",
                   args);
  if (!stmt.ok()) return stmt.status();
  for (;;) {
    Result<bool> row = op.Step(stmt->get());
    if (!row.ok()) return row.status();
    if (!*row) break;
    SnapshotRecord r = ReadSnapshot(stmt->get());
    auto it = index.find(r.set_id);
    if (it != index.end()) sets[it->second].snapshots.push_back(std::move(r));
  }
  Result<Stmt> left = op.QueryWith(
      "SELECT l.set_id, l.provider_id, l.provider_name, l.detail FROM leftovers l "
      "JOIN sets ON sets.set_id = l.set_id WHERE " +
          where + " ORDER BY l.set_id, l.ordinal",
      args);
  if (!left.ok()) return left.status();
  for (;;) {
    Result<bool> row = op.Step(left->get());
    if (!row.ok()) return row.status();
    if (!*row) break;
    auto it = index.find(Text(left->get(), 0));
    if (it == index.end()) continue;
    sets[it->second].leftovers.push_back(
        {Text(left->get(), 1), Text(left->get(), 2), Text(left->get(), 3)});
  }
  Result<Stmt> writers = op.QueryWith(
      "SELECT w.set_id, w.name, w.kind, w.state, w.metadata_json, w.backup_blob_json "
      "FROM set_writers w JOIN sets ON sets.set_id = w.set_id WHERE " +
          where + " ORDER BY w.set_id, w.ordinal",
      args);
  if (!writers.ok()) return writers.status();
  for (;;) {
    Result<bool> row = op.Step(writers->get());
    if (!row.ok()) return row.status();
    if (!*row) break;
    sqlite3_stmt* s = writers->get();
    auto it = index.find(Text(s, 0));
    if (it == index.end()) continue;
    sets[it->second].writers.push_back({Text(s, 1), Text(s, 2), Text(s, 3), Text(s, 4), Text(s, 5)});
  }
  SNAPSET_RETURN_IF_ERROR(txn.Commit());
  return sets;
}

// Rejects records the coordinator should never pass, before any write.
Status CheckSnapshots(const Op& op, const std::string& set_id,
                      const std::vector<SnapshotRecord>& snapshots) {
  for (const SnapshotRecord& s : snapshots) {
    if (s.snapshot_id.empty())
      return Status::InvalidArgument(op.Prefix() + "a snapshot has an empty id");
    if (!s.set_id.empty() && s.set_id != set_id)
      return Status::InvalidArgument(op.Prefix() + "snapshot " + s.snapshot_id +
                                     " names set " + s.set_id + ", not " + set_id);
  }
  return Status::Ok();
}

Status InsertSnapshots(const Op& op, const std::string& set_id, int64_t set_created_ns,
                       const std::vector<SnapshotRecord>& snapshots) {
  const std::string sql =
      "INSERT INTO snapshots (snapshot_id, set_id, ordinal, volume, provider_id, "
      "provider_name, created_ns, attributes, exposed_as, snapshot_device, volume_device) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
  for (size_t i = 0; i < snapshots.size(); ++i) {
    const SnapshotRecord& s = snapshots[i];
    Result<int> done = op.Run(sql, s.snapshot_id, set_id, int64_t(i), s.volume, s.provider_id,
                              s.provider_name, s.created_ns ? s.created_ns : set_created_ns,
                              int64_t(s.attributes), s.exposed_as, s.snapshot_device,
                              s.volume_device);
    if (!done.ok()) {
      if (done.status().Is(Code::kAlreadyExists))
        return Status::AlreadyExists(op.Prefix() + "snapshot id " + s.snapshot_id +
                                     " is already in the catalog");
      return done.status();
    }
  }
  return Status::Ok();
}

// The state of `set_id`, or NotFound.
Result<SetState> StateOf(const Op& op, const std::string& set_id) {
  Result<Stmt> stmt = op.Query("SELECT state FROM sets WHERE set_id = ?1", set_id);
  if (!stmt.ok()) return stmt.status();
  Result<bool> row = op.Step(stmt->get());
  if (!row.ok()) return row.status();
  if (!*row) return Status::NotFound(op.Prefix() + "no snapshot set " + set_id + " in the catalog");
  return StateFromName(op, Text(stmt->get(), 0));
}

// The set and set state of a snapshot a management call may change: NotFound
// if absent, BadState while its set is still being created (the coordinator
// owns it until then).
Result<std::pair<std::string, SetState>> ManagedSnapshot(const Op& op,
                                                         const std::string& snapshot_id) {
  Result<Stmt> stmt = op.Query(
      "SELECT s.set_id, sets.state FROM snapshots s JOIN sets ON sets.set_id = s.set_id "
      "WHERE s.snapshot_id = ?1",
      snapshot_id);
  if (!stmt.ok()) return stmt.status();
  Result<bool> row = op.Step(stmt->get());
  if (!row.ok()) return row.status();
  if (!*row)
    return Status::NotFound(op.Prefix() + "no snapshot " + snapshot_id + " in the catalog");
  std::string set_id = Text(stmt->get(), 0);
  Result<SetState> state = StateFromName(op, Text(stmt->get(), 1));
  if (!state.ok()) return state.status();
  if (*state != SetState::kComplete)
    return Status::BadState(op.Prefix() + "snapshot " + snapshot_id + " belongs to set " +
                            set_id + ", which is " + SetStateName(*state) +
                            "; complete or abort the set first");
  return std::make_pair(std::move(set_id), *state);
}

// Sets the state of an aborting set. Aborting again is allowed (abort is
// idempotent everywhere): the first non-empty reason is the cause and is
// kept; the later timeline has more steps and replaces it, unless empty.
Status MarkAborted(const Op& op, const std::string& set_id, SetState state,
                   const std::string& error, const std::string& timeline_json) {
  Result<int> done = op.Run(
      "UPDATE sets SET state = ?2, "
      "error = CASE WHEN error != '' THEN error ELSE ?3 END, "
      "timeline_json = CASE WHEN ?4 = '' THEN timeline_json ELSE ?4 END "
      "WHERE set_id = ?1",
      set_id, std::string(SetStateName(state)), error, timeline_json);
  return done.ok() ? Status::Ok() : done.status();
}

struct Identity {
  int64_t application_id = 0;
  int64_t user_version = 0;
  int64_t objects = 0;  // rows of sqlite_master: tables, indexes, ...
};

Result<Identity> ReadIdentity(const Op& op) {
  Identity id;
  Result<int64_t> v = op.Int("PRAGMA application_id");
  if (!v.ok()) return v.status();
  id.application_id = *v;
  v = op.Int("PRAGMA user_version");
  if (!v.ok()) return v.status();
  id.user_version = *v;
  v = op.Int("SELECT count(*) FROM sqlite_master");
  if (!v.ok()) return v.status();
  id.objects = *v;
  return id;
}

bool IsFresh(const Identity& id) {
  return id.application_id == 0 && id.user_version == 0 && id.objects == 0;
}

Status CheckIdentity(const Op& op, const Identity& id) {
  if (IsFresh(id)) return Status::Ok();
  if (id.application_id == kApplicationId) {
    // Schemas 1 and 2 are migrated by Initialize.
    if (id.user_version >= 1 && id.user_version <= kSchemaVersion) return Status::Ok();
    return Status::Internal(op.path() + " is a snapset catalog of schema version " +
                            std::to_string(id.user_version) + ", but this snapset reads " +
                            "version " + std::to_string(kSchemaVersion) +
                            " only; run the snapset release that wrote it, or move the file "
                            "aside to start an empty catalog");
  }
  return Status::Internal(op.path() + " is a SQLite database of another program, not a " +
                          "snapset catalog (application_id " + std::to_string(id.application_id) +
                          ", user_version " + std::to_string(id.user_version) +
                          "); move it aside or use another state directory");
}

// Creates `dir` with mode 0700 if it is missing. Parents are created with
// the default mode; a directory that already exists keeps its mode, which
// is the administrator's choice.
Status MakeStateDir(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // "a/b/" -> "a/b"
  std::error_code ec;
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  if (ec)
    return Status::Unavailable("cannot create the parent of state directory " + dir + ": " +
                               ec.message());
  // mkdir at 0700 rather than create-then-chmod: the directory is never
  // open to others, not even for an instant.
  if (::mkdir(p.c_str(), 0700) == 0) {
    if (::chmod(p.c_str(), 0700) != 0)  // the umask may have taken bits away
      return Status::Unavailable("cannot set mode 0700 on state directory " + dir + ": " +
                                 std::strerror(errno));
  } else if (errno != EEXIST) {
    return Status::Unavailable("cannot create state directory " + dir + ": " +
                               std::strerror(errno));
  }
  if (!fs::is_directory(p, ec))
    return Status::Unavailable("state directory " + dir + " is not a directory");
  return Status::Ok();
}

// Settings and schema of a freshly opened connection.
Status Initialize(const Op& op) {
  // Refuse a foreign file before anything below writes to it (switching to
  // WAL rewrites the database header).
  Result<Identity> before = ReadIdentity(op);
  if (!before.ok()) return before.status();
  SNAPSET_RETURN_IF_ERROR(CheckIdentity(op, *before));

  std::string mode;
  {
    // Scoped: a statement left unfinished would keep COMMIT below from
    // succeeding.
    Result<Stmt> wal = op.Prepare("PRAGMA journal_mode = WAL");
    if (!wal.ok()) return wal.status();
    Result<bool> row = op.Step(wal->get());
    if (!row.ok()) return row.status();
    if (*row) mode = Text(wal->get(), 0);
  }
  if (mode != "wal")
    return Status::Internal(op.Prefix() + "the journal mode stayed '" + mode +
                            "' instead of 'wal'; put the state directory on a local filesystem");
  // Per connection, not stored in the file: every Open sets them again.
  SNAPSET_RETURN_IF_ERROR(op.Exec("PRAGMA synchronous = FULL"));
  SNAPSET_RETURN_IF_ERROR(op.Exec("PRAGMA foreign_keys = OFF"));  // until migrated

  // Decide again under the write lock: another process may have created or
  // migrated the schema since the check above. Foreign keys are off (a
  // no-op to change inside a transaction): the migration drops and rebuilds
  // the sets table.
  {
    Transaction txn(op);
    SNAPSET_RETURN_IF_ERROR(txn.BeginWrite());
    Result<Identity> now = ReadIdentity(op);
    if (!now.ok()) return now.status();
    SNAPSET_RETURN_IF_ERROR(CheckIdentity(op, *now));
    if (IsFresh(*now)) SNAPSET_RETURN_IF_ERROR(op.Exec(FreshSchema().c_str()));
    if (now->user_version == 1) SNAPSET_RETURN_IF_ERROR(op.Exec(Migration1To2().c_str()));
    if (now->user_version == 1 || now->user_version == 2)
      SNAPSET_RETURN_IF_ERROR(op.Exec(kSchema3Additions));
    if (now->user_version >= 1 && now->user_version <= 3)
      SNAPSET_RETURN_IF_ERROR(op.Exec(kSchema4Additions));
    if (now->user_version >= 1 && now->user_version <= 4)
      SNAPSET_RETURN_IF_ERROR(op.Exec(kSchema5Additions));
    SNAPSET_RETURN_IF_ERROR(txn.Commit());
  }

  SNAPSET_RETURN_IF_ERROR(op.Exec("PRAGMA foreign_keys = ON"));
  Result<int64_t> fk = op.Int("PRAGMA foreign_keys");
  if (!fk.ok()) return fk.status();
  if (*fk != 1)  // SQLite built without foreign keys: deletes would leave orphans
    return Status::Internal(op.Prefix() + "this SQLite library does not enforce foreign keys");
  return Status::Ok();
}

}  // namespace

const char* SetStateName(SetState s) {
  switch (s) {
    case SetState::kCreating: return "creating";
    case SetState::kComplete: return "complete";
    case SetState::kAborted: return "aborted";
    case SetState::kAbortIncomplete:
      return "abort-incomplete";
  }
  return "unknown";
}

Result<std::unique_ptr<Catalog>> Catalog::Open(const std::string& state_dir) {
  if (state_dir.empty()) return Status::InvalidArgument("the state directory is empty");
  SNAPSET_RETURN_IF_ERROR(MakeStateDir(state_dir));
  std::unique_ptr<Catalog> c(new Catalog());
  c->path_ = (fs::path(state_dir) / "catalog.db").lexically_normal().string();
  // NOMUTEX: mu_ already serializes every use of the connection.
  int rc = sqlite3_open_v2(c->path_.c_str(), &c->db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  Op op(c->db_, c->path_, "open");
  if (rc != SQLITE_OK) return op.Fail(rc);
  sqlite3_extended_result_codes(c->db_, 1);
  sqlite3_busy_timeout(c->db_, kBusyTimeoutMs);
  SNAPSET_RETURN_IF_ERROR(Initialize(op));
  return c;
}

Catalog::~Catalog() {
  // _v2: never fails with SQLITE_BUSY; every statement is finalized anyway.
  sqlite3_close_v2(db_);
}

Status Catalog::BeginSet(const SetRecord& set) {
  std::lock_guard<std::mutex> lock(mu_);
  Op op(db_, path_, "begin set " + set.set_id);
  if (set.set_id.empty()) return Status::InvalidArgument(op.Prefix() + "the set id is empty");
  if (set.state != SetState::kCreating)
    return Status::InvalidArgument(op.Prefix() + "a set begins as creating, not " +
                                   SetStateName(set.state));
  SNAPSET_RETURN_IF_ERROR(CheckSnapshots(op, set.set_id, set.snapshots));
  const int64_t created_ns = set.created_ns ? set.created_ns : RealtimeNs();

  Transaction txn(op);
  SNAPSET_RETURN_IF_ERROR(txn.BeginWrite());
  Result<SetState> existing = StateOf(op, set.set_id);
  if (existing.ok())
    return Status::AlreadyExists(op.Prefix() + "set " + set.set_id + " is already in the " +
                                 "catalog (" + SetStateName(*existing) + ")");
  if (!existing.status().IsNotFound()) return existing.status();
  Result<int> done = op.Run(
      "INSERT INTO sets (set_id, state, created_ns, context, requestor_pid, error, "
      "timeline_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
      set.set_id, std::string(SetStateName(SetState::kCreating)), created_ns,
      int64_t(set.context), int64_t(set.requestor_pid), set.error, set.timeline_json);
  if (!done.ok()) return done.status();
  SNAPSET_RETURN_IF_ERROR(InsertSnapshots(op, set.set_id, created_ns, set.snapshots));
  return txn.Commit();
}

Status Catalog::CompleteSet(const std::string& set_id,
                            const std::vector<SnapshotRecord>& snapshots,
                            const std::string& timeline_json,
                            const std::vector<WriterRecord>& writers) {
  std::lock_guard<std::mutex> lock(mu_);
  Op op(db_, path_, "complete set " + set_id);
  if (snapshots.empty())
    return Status::InvalidArgument(op.Prefix() + "a complete set needs at least one snapshot");
  SNAPSET_RETURN_IF_ERROR(CheckSnapshots(op, set_id, snapshots));

  Transaction txn(op);
  SNAPSET_RETURN_IF_ERROR(txn.BeginWrite());
  Result<SetState> state = StateOf(op, set_id);
  if (!state.ok()) return state.status();
  if (*state != SetState::kCreating)
    return Status::BadState(op.Prefix() + "set " + set_id + " is " + SetStateName(*state) +
                            ", not creating");
  Result<int64_t> created_ns = op.Int("SELECT created_ns FROM sets WHERE set_id = ?1", set_id);
  if (!created_ns.ok()) return created_ns.status();
  Result<int> done = op.Run("DELETE FROM snapshots WHERE set_id = ?1", set_id);
  if (!done.ok()) return done.status();
  SNAPSET_RETURN_IF_ERROR(InsertSnapshots(op, set_id, *created_ns, snapshots));
  done = op.Run("DELETE FROM set_writers WHERE set_id = ?1", set_id);
  if (!done.ok()) return done.status();
  for (size_t i = 0; i < writers.size(); ++i) {
    const WriterRecord& w = writers[i];
    done = op.Run(
        "INSERT INTO set_writers (set_id, ordinal, name, kind, state, metadata_json, "
        "backup_blob_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        set_id, int64_t(i), w.name, w.kind, w.state, w.metadata_json,
        w.backup_blob_json.empty() ? std::string("{}") : w.backup_blob_json);
    if (!done.ok()) return done.status();
  }
  done = op.Run("UPDATE sets SET state = ?2, timeline_json = ?3 WHERE set_id = ?1", set_id,
                std::string(SetStateName(SetState::kComplete)), timeline_json);
  if (!done.ok()) return done.status();
  return txn.Commit();
}

Status Catalog::AbortSet(const std::string& set_id, const std::string& error,
                         const std::string& timeline_json) {
  std::lock_guard<std::mutex> lock(mu_);
  Op op(db_, path_, "abort set " + set_id);
  Transaction txn(op);
  SNAPSET_RETURN_IF_ERROR(txn.BeginWrite());
  Result<SetState> state = StateOf(op, set_id);
  if (!state.ok()) return state.status();
  if (*state == SetState::kComplete)
    return Status::BadState(op.Prefix() + "set " + set_id + " is complete; delete it instead");
  Result<int> done = op.Run("DELETE FROM snapshots WHERE set_id = ?1", set_id);
  if (!done.ok()) return done.status();
  done = op.Run("DELETE FROM leftovers WHERE set_id = ?1", set_id);
  if (!done.ok()) return done.status();
  SNAPSET_RETURN_IF_ERROR(MarkAborted(op, set_id, SetState::kAborted, error, timeline_json));
  return txn.Commit();
}

Status Catalog::RecordAbortIncomplete(const std::string& set_id, const std::string& error,
                                      const std::vector<LeftoverRecord>& leftovers,
                                      const std::string& timeline_json) {
  std::lock_guard<std::mutex> lock(mu_);
  Op op(db_, path_, "record the incomplete abort of set " + set_id);
  if (leftovers.empty())
    return Status::InvalidArgument(op.Prefix() + "an incomplete abort needs a leftover");
  Transaction txn(op);
  SNAPSET_RETURN_IF_ERROR(txn.BeginWrite());
  Result<SetState> state = StateOf(op, set_id);
  if (!state.ok()) return state.status();
  if (*state != SetState::kCreating && *state != SetState::kAbortIncomplete)
    return Status::BadState(op.Prefix() + "set " + set_id + " is " + SetStateName(*state) +
                            ", not creating or abort-incomplete");
  Result<int> done = op.Run("DELETE FROM leftovers WHERE set_id = ?1", set_id);
  if (!done.ok()) return done.status();
  for (size_t i = 0; i < leftovers.size(); ++i) {
    const LeftoverRecord& l = leftovers[i];
    done = op.Run(
        "INSERT INTO leftovers (set_id, ordinal, provider_id, provider_name, detail) "
        "VALUES (?1, ?2, ?3, ?4, ?5)",
        set_id, int64_t(i), l.provider_id, l.provider_name, l.detail);
    if (!done.ok()) return done.status();
  }
  SNAPSET_RETURN_IF_ERROR(
      MarkAborted(op, set_id, SetState::kAbortIncomplete, error, timeline_json));
  return txn.Commit();
}

Result<SetRecord> Catalog::GetSet(const std::string& set_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  Op op(db_, path_, "get set " + set_id);
  Result<std::vector<SetRecord>> sets =
      LoadSets(op, "sets.set_id = ?1", {set_id}, "sets.set_id");
  if (!sets.ok()) return sets.status();
  if (sets->empty())
    return Status::NotFound(op.Prefix() + "no snapshot set " + set_id + " in the catalog");
  return std::move(sets->front());
}

Result<SnapshotRecord> Catalog::GetSnapshot(const std::string& snapshot_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  Op op(db_, path_, "get snapshot " + snapshot_id);
  Result<Stmt> stmt = op.Query(std::string("SELECT ") + kSnapshotColumns +
                                   " FROM snapshots s JOIN sets ON sets.set_id = s.set_id "
                                   "WHERE s.snapshot_id = ?1 AND sets.state = ?2",
                               snapshot_id, std::string(SetStateName(SetState::kComplete)));
  if (!stmt.ok()) return stmt.status();
  Result<bool> row = op.Step(stmt->get());
  if (!row.ok()) return row.status();
  if (!*row)
    return Status::NotFound(op.Prefix() + "no snapshot " + snapshot_id +
                            " of a complete set in the catalog");
  return ReadSnapshot(stmt->get());
}

Result<std::vector<SetRecord>> Catalog::ListSets(bool include_all) const {
  std::lock_guard<std::mutex> lock(mu_);
  Op op(db_, path_, "list sets");
  const std::string order = "sets.created_ns DESC, sets.set_id";
  if (include_all) return LoadSets(op, "1", {}, order);
  return LoadSets(op, "sets.state = ?1", {SetStateName(SetState::kComplete)}, order);
}

Result<std::vector<SetRecord>> Catalog::ListUnfinished() const {
  std::lock_guard<std::mutex> lock(mu_);
  Op op(db_, path_, "list unfinished sets");
  return LoadSets(op, "sets.state IN (?1, ?2)",
                  {SetStateName(SetState::kCreating), SetStateName(SetState::kAbortIncomplete)},
                  "sets.created_ns, sets.set_id");
}

Result<std::vector<SnapshotRecord>> Catalog::SnapshotsOfVolume(const std::string& volume) const {
  std::lock_guard<std::mutex> lock(mu_);
  Op op(db_, path_, "list snapshots of " + volume);
  Result<Stmt> stmt = op.Query(std::string("SELECT ") + kSnapshotColumns +
                                   " FROM snapshots s JOIN sets ON sets.set_id = s.set_id "
                                   "WHERE s.volume = ?1 AND sets.state = ?2 ORDER BY "
                                   "s.created_ns, sets.created_ns, s.set_id, s.ordinal",
                               volume, std::string(SetStateName(SetState::kComplete)));
  if (!stmt.ok()) return stmt.status();
  std::vector<SnapshotRecord> out;
  for (;;) {
    Result<bool> row = op.Step(stmt->get());
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(ReadSnapshot(stmt->get()));
  }
  return out;
}

Status Catalog::DeleteSnapshot(const std::string& snapshot_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Op op(db_, path_, "delete snapshot " + snapshot_id);
  Transaction txn(op);
  SNAPSET_RETURN_IF_ERROR(txn.BeginWrite());
  auto owner = ManagedSnapshot(op, snapshot_id);
  if (!owner.ok()) return owner.status();
  Result<int> done = op.Run("DELETE FROM snapshots WHERE snapshot_id = ?1", snapshot_id);
  if (!done.ok()) return done.status();
  // A complete set without snapshots means nothing to a user: drop it too.
  done = op.Run(
      "DELETE FROM sets WHERE set_id = ?1 AND NOT EXISTS "
      "(SELECT 1 FROM snapshots WHERE set_id = ?1)",
      owner->first);
  if (!done.ok()) return done.status();
  return txn.Commit();
}

Status Catalog::DeleteSet(const std::string& set_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Op op(db_, path_, "delete set " + set_id);
  // One statement is its own transaction; ON DELETE CASCADE takes the
  // snapshots with it.
  Result<int> done = op.Run("DELETE FROM sets WHERE set_id = ?1", set_id);
  if (!done.ok()) return done.status();
  if (*done == 0)
    return Status::NotFound(op.Prefix() + "no snapshot set " + set_id + " in the catalog");
  return Status::Ok();
}

Status Catalog::SetExposed(const std::string& snapshot_id, const std::string& exposed_as) {
  std::lock_guard<std::mutex> lock(mu_);
  Op op(db_, path_, "set exposure of snapshot " + snapshot_id);
  Transaction txn(op);
  SNAPSET_RETURN_IF_ERROR(txn.BeginWrite());
  auto owner = ManagedSnapshot(op, snapshot_id);
  if (!owner.ok()) return owner.status();
  Result<int> done = op.Run("UPDATE snapshots SET exposed_as = ?2 WHERE snapshot_id = ?1",
                            snapshot_id, exposed_as);
  if (!done.ok()) return done.status();
  return txn.Commit();
}

Status Catalog::MarkLost(const std::string& snapshot_id, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  Op op(db_, path_, "mark snapshot " + snapshot_id + " lost");
  Transaction txn(op);
  SNAPSET_RETURN_IF_ERROR(txn.BeginWrite());
  // The first reason stays: it is the one nearest to what happened.
  Result<int> done = op.Run(
      "UPDATE snapshots SET lost_reason = ?2, lost_ns = ?3 WHERE snapshot_id = ?1 AND lost_ns = 0",
      snapshot_id, reason, RealtimeNs());
  if (!done.ok()) return done.status();
  return txn.Commit();
}

}  // namespace snapset
