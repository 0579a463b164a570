#include "providers/mock-array/store.hpp"

#include <sqlite3.h>
#include <sys/random.h>

#include <cstdio>

namespace snapset::mock {
namespace {

// An OUI for the mock ("SSM" in ASCII); NAA 6 = 4-bit NAA, 24-bit OUI,
// 36-bit vendor id, 64-bit extension.
constexpr char kOui[] = "53534d";

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

std::string RandomHex(size_t digits) {
  std::string out;
  while (out.size() < digits) {
    unsigned char bytes[16];
    if (getrandom(bytes, sizeof(bytes), 0) != static_cast<ssize_t>(sizeof(bytes))) continue;
    for (unsigned char b : bytes) {
      char two[3];
      std::snprintf(two, sizeof(two), "%02x", b);
      out += two;
    }
  }
  return out.substr(0, digits);
}

std::string Hex(uint64_t value, int digits) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%0*llx", digits, static_cast<unsigned long long>(value));
  return buffer;
}

std::string Column(sqlite3_stmt* s, int i) {
  const unsigned char* text = sqlite3_column_text(s, i);
  return text ? reinterpret_cast<const char*>(text) : "";
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::Internal("opening " + path + ": " + message);
  }
  std::unique_ptr<Store> store(new Store(db));
  SNAPSET_RETURN_IF_ERROR(store->Init());
  return store;
}

Store::~Store() { sqlite3_close(db_); }

Status Store::Exec(const std::string& sql) const {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    return Status::Internal("sqlite: " + message);
  }
  return Status::Ok();
}

Status Store::Init() {
  sqlite3_busy_timeout(db_, 5000);
  SNAPSET_RETURN_IF_ERROR(
      Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
           "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
           "CREATE TABLE IF NOT EXISTS volumes ("
           " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
           " capacity_bytes INTEGER NOT NULL, block_size INTEGER NOT NULL,"
           " naa TEXT NOT NULL DEFAULT '', serial TEXT NOT NULL DEFAULT '',"
           " state TEXT NOT NULL);"
           "CREATE TABLE IF NOT EXISTS groups ("
           " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE);"
           "CREATE TABLE IF NOT EXISTS group_members ("
           " group_id INTEGER NOT NULL, position INTEGER NOT NULL, volume_id INTEGER NOT NULL,"
           " PRIMARY KEY (group_id, position));"
           "CREATE TABLE IF NOT EXISTS exposures ("
           " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
           " initiator_iqn TEXT NOT NULL, chap_user TEXT NOT NULL, chap_password TEXT NOT NULL,"
           " state TEXT NOT NULL);"
           "CREATE TABLE IF NOT EXISTS exposure_luns ("
           " exposure_id INTEGER NOT NULL, lun INTEGER NOT NULL, volume_id INTEGER NOT NULL,"
           " read_only INTEGER NOT NULL, PRIMARY KEY (exposure_id, lun));"));
  // Step 2 added snapshots: a database from step 1 lacks the column.
  if (!Exec("SELECT source_id FROM volumes LIMIT 0").ok()) {
    SNAPSET_RETURN_IF_ERROR(
        Exec("ALTER TABLE volumes ADD COLUMN source_id INTEGER NOT NULL DEFAULT 0;"
             "ALTER TABLE volumes ADD COLUMN copy_method TEXT NOT NULL DEFAULT '';"));
  }
  SNAPSET_RETURN_IF_ERROR(
      Exec("INSERT OR IGNORE INTO meta VALUES ('array_id', '" + RandomHex(13) + "');"));
  sqlite3_stmt* raw = nullptr;
  sqlite3_prepare_v2(db_, "SELECT value FROM meta WHERE key='array_id'", -1, &raw, nullptr);
  Stmt s(raw);
  if (!s || sqlite3_step(s.get()) != SQLITE_ROW) return Status::Internal("no array_id");
  array_id_ = Column(s.get(), 0);
  return Status::Ok();
}

Status Store::Begin() { return Exec("BEGIN IMMEDIATE"); }
Status Store::Commit() { return Exec("COMMIT"); }
void Store::Rollback() { static_cast<void>(Exec("ROLLBACK")); }

Result<VolumeRecord> Store::InsertVolume(const std::string& name, uint64_t capacity_bytes,
                                         uint32_t block_size, int64_t source_id) {
  // The row and its identity in one commit (or inside the caller's
  // transaction): a savepoint nests either way.
  SNAPSET_RETURN_IF_ERROR(Exec("SAVEPOINT insert_volume"));
  Result<VolumeRecord> v = InsertVolumeRow(name, capacity_bytes, block_size, source_id);
  if (!v.ok()) {
    static_cast<void>(Exec("ROLLBACK TO insert_volume; RELEASE insert_volume"));
    return v;
  }
  SNAPSET_RETURN_IF_ERROR(Exec("RELEASE insert_volume"));
  return v;
}

Result<VolumeRecord> Store::InsertVolumeRow(const std::string& name, uint64_t capacity_bytes,
                                            uint32_t block_size, int64_t source_id) {
  sqlite3_stmt* raw = nullptr;
  sqlite3_prepare_v2(db_,
                     "INSERT INTO volumes (name, capacity_bytes, block_size, state, source_id)"
                     " VALUES (?, ?, ?, 'creating', ?)",
                     -1, &raw, nullptr);
  Stmt s(raw);
  if (!s) return Status::Internal(std::string("sqlite: ") + sqlite3_errmsg(db_));
  sqlite3_bind_text(s.get(), 1, name.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s.get(), 2, static_cast<sqlite3_int64>(capacity_bytes));
  sqlite3_bind_int64(s.get(), 3, block_size);
  sqlite3_bind_int64(s.get(), 4, source_id);
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_CONSTRAINT) return Status::AlreadyExists("a volume named '" + name + "' exists");
  if (rc != SQLITE_DONE) return Status::Internal(std::string("sqlite: ") + sqlite3_errmsg(db_));
  VolumeRecord v;
  v.id = sqlite3_last_insert_rowid(db_);
  v.name = name;
  v.capacity_bytes = capacity_bytes;
  v.block_size = block_size;
  v.state = "creating";
  v.source_id = source_id;
  // 6 | OUI | 9 + 4 digits of the array id | 12 digits of the volume id.
  v.naa = "6" + std::string(kOui) + array_id_ + Hex(static_cast<uint64_t>(v.id), 12);
  v.serial = "SSM" + array_id_ + Hex(static_cast<uint64_t>(v.id), 8);
  SNAPSET_RETURN_IF_ERROR(Exec("UPDATE volumes SET naa='" + v.naa + "', serial='" + v.serial +
                               "' WHERE id=" + std::to_string(v.id)));
  return v;
}

Status Store::SetState(int64_t id, const std::string& state) {
  // state is one of three literals from this program, never user input.
  return Exec("UPDATE volumes SET state='" + state + "' WHERE id=" + std::to_string(id));
}

Status Store::MarkSnapshotsReady(const std::vector<VolumeRecord>& snapshots) {
  // copy_method is one of two literals from this program, never user input.
  std::string sql = "BEGIN IMMEDIATE;";
  for (const VolumeRecord& v : snapshots) {
    sql += "UPDATE volumes SET state='ready', copy_method='" + v.copy_method +
           "' WHERE id=" + std::to_string(v.id) + ";";
  }
  sql += "COMMIT;";
  Status s = Exec(sql);
  if (!s.ok()) static_cast<void>(Exec("ROLLBACK"));
  return s;
}

Result<GroupRecord> Store::InsertGroup(const std::string& name,
                                       const std::vector<int64_t>& members) {
  SNAPSET_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  sqlite3_stmt* raw = nullptr;
  sqlite3_prepare_v2(db_, "INSERT INTO groups (name) VALUES (?)", -1, &raw, nullptr);
  Stmt s(raw);
  if (!s) {
    static_cast<void>(Exec("ROLLBACK"));
    return Status::Internal(std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  sqlite3_bind_text(s.get(), 1, name.c_str(), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(s.get());
  if (rc != SQLITE_DONE) {
    const std::string message = sqlite3_errmsg(db_);
    static_cast<void>(Exec("ROLLBACK"));
    if (rc == SQLITE_CONSTRAINT)
      return Status::AlreadyExists("a group named '" + name + "' exists");
    return Status::Internal("sqlite: " + message);
  }
  GroupRecord g;
  g.id = sqlite3_last_insert_rowid(db_);
  g.name = name;
  g.members = members;
  std::string sql;
  for (size_t i = 0; i < members.size(); ++i) {
    sql += "INSERT INTO group_members VALUES (" + std::to_string(g.id) + "," + std::to_string(i) +
           "," + std::to_string(members[i]) + ");";
  }
  Status done = Exec(sql + "COMMIT;");
  if (!done.ok()) {
    static_cast<void>(Exec("ROLLBACK"));
    return done;
  }
  return g;
}

Status Store::DeleteGroup(int64_t id) {
  const std::string g = std::to_string(id);
  Status s = Exec("BEGIN IMMEDIATE; DELETE FROM group_members WHERE group_id=" + g +
                  "; DELETE FROM groups WHERE id=" + g + "; COMMIT;");
  if (!s.ok()) static_cast<void>(Exec("ROLLBACK"));
  return s;
}

Result<std::vector<GroupRecord>> Store::Groups() const {
  sqlite3_stmt* raw = nullptr;
  sqlite3_prepare_v2(db_,
                     "SELECT g.id, g.name, m.volume_id FROM groups g"
                     " LEFT JOIN group_members m ON m.group_id = g.id"
                     " ORDER BY g.id, m.position",
                     -1, &raw, nullptr);
  Stmt s(raw);
  if (!s) return Status::Internal(std::string("sqlite: ") + sqlite3_errmsg(db_));
  std::vector<GroupRecord> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    const int64_t id = sqlite3_column_int64(s.get(), 0);
    if (out.empty() || out.back().id != id) {
      out.emplace_back();
      out.back().id = id;
      out.back().name = Column(s.get(), 1);
    }
    if (sqlite3_column_type(s.get(), 2) != SQLITE_NULL) {
      out.back().members.push_back(sqlite3_column_int64(s.get(), 2));
    }
  }
  if (rc != SQLITE_DONE) return Status::Internal(std::string("sqlite: ") + sqlite3_errmsg(db_));
  return out;
}

Status Store::DeleteVolume(int64_t id) {
  return Exec("DELETE FROM volumes WHERE id=" + std::to_string(id));
}

Result<std::vector<VolumeRecord>> Store::Volumes() const {
  sqlite3_stmt* raw = nullptr;
  sqlite3_prepare_v2(
      db_,
      "SELECT id, name, capacity_bytes, block_size, naa, serial, state, source_id, copy_method"
      " FROM volumes ORDER BY id",
      -1, &raw, nullptr);
  Stmt s(raw);
  if (!s) return Status::Internal(std::string("sqlite: ") + sqlite3_errmsg(db_));
  std::vector<VolumeRecord> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    VolumeRecord v;
    v.id = sqlite3_column_int64(s.get(), 0);
    v.name = Column(s.get(), 1);
    v.capacity_bytes = static_cast<uint64_t>(sqlite3_column_int64(s.get(), 2));
    v.block_size = static_cast<uint32_t>(sqlite3_column_int64(s.get(), 3));
    v.naa = Column(s.get(), 4);
    v.serial = Column(s.get(), 5);
    v.state = Column(s.get(), 6);
    v.source_id = sqlite3_column_int64(s.get(), 7);
    v.copy_method = Column(s.get(), 8);
    out.push_back(std::move(v));
  }
  if (rc != SQLITE_DONE) return Status::Internal(std::string("sqlite: ") + sqlite3_errmsg(db_));
  return out;
}

Result<ExposureRecord> Store::InsertExposure(ExposureRecord e) {
  SNAPSET_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  sqlite3_stmt* raw = nullptr;
  sqlite3_prepare_v2(db_,
                     "INSERT INTO exposures (name, initiator_iqn, chap_user, chap_password, state)"
                     " VALUES (?, ?, ?, ?, 'creating')",
                     -1, &raw, nullptr);
  Stmt s(raw);
  if (!s) {
    static_cast<void>(Exec("ROLLBACK"));
    return Status::Internal(std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  sqlite3_bind_text(s.get(), 1, e.name.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s.get(), 2, e.initiator_iqn.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s.get(), 3, e.chap_user.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s.get(), 4, e.chap_password.c_str(), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(s.get());
  if (rc != SQLITE_DONE) {
    const std::string message = sqlite3_errmsg(db_);
    static_cast<void>(Exec("ROLLBACK"));
    if (rc == SQLITE_CONSTRAINT) {
      return Status::AlreadyExists("a connection named '" + e.name + "' exists");
    }
    return Status::Internal("sqlite: " + message);
  }
  e.id = sqlite3_last_insert_rowid(db_);
  e.state = "creating";
  std::string sql;
  for (const ExposureLun& lun : e.luns) {
    sql += "INSERT INTO exposure_luns VALUES (" + std::to_string(e.id) + "," +
           std::to_string(lun.lun) + "," + std::to_string(lun.volume_id) + "," +
           (lun.read_only ? "1" : "0") + ");";
  }
  Status done = Exec(sql + "COMMIT;");
  if (!done.ok()) {
    static_cast<void>(Exec("ROLLBACK"));
    return done;
  }
  return e;
}

Status Store::SetExposureState(int64_t id, const std::string& state) {
  // state is one of three literals from this program, never user input.
  return Exec("UPDATE exposures SET state='" + state + "' WHERE id=" + std::to_string(id));
}

Status Store::DeleteExposure(int64_t id) {
  const std::string e = std::to_string(id);
  Status s = Exec("BEGIN IMMEDIATE; DELETE FROM exposure_luns WHERE exposure_id=" + e +
                  "; DELETE FROM exposures WHERE id=" + e + "; COMMIT;");
  if (!s.ok()) static_cast<void>(Exec("ROLLBACK"));
  return s;
}

Result<std::vector<ExposureRecord>> Store::Exposures() const {
  sqlite3_stmt* raw = nullptr;
  sqlite3_prepare_v2(db_,
                     "SELECT e.id, e.name, e.initiator_iqn, e.chap_user, e.chap_password, e.state,"
                     " l.lun, l.volume_id, l.read_only FROM exposures e"
                     " LEFT JOIN exposure_luns l ON l.exposure_id = e.id ORDER BY e.id, l.lun",
                     -1, &raw, nullptr);
  Stmt s(raw);
  if (!s) return Status::Internal(std::string("sqlite: ") + sqlite3_errmsg(db_));
  std::vector<ExposureRecord> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    const int64_t id = sqlite3_column_int64(s.get(), 0);
    if (out.empty() || out.back().id != id) {
      ExposureRecord e;
      e.id = id;
      e.name = Column(s.get(), 1);
      e.initiator_iqn = Column(s.get(), 2);
      e.chap_user = Column(s.get(), 3);
      e.chap_password = Column(s.get(), 4);
      e.state = Column(s.get(), 5);
      out.push_back(std::move(e));
    }
    if (sqlite3_column_type(s.get(), 6) != SQLITE_NULL) {
      out.back().luns.push_back({sqlite3_column_int64(s.get(), 7),
                                 static_cast<int>(sqlite3_column_int64(s.get(), 6)),
                                 sqlite3_column_int64(s.get(), 8) != 0});
    }
  }
  if (rc != SQLITE_DONE) return Status::Internal(std::string("sqlite: ") + sqlite3_errmsg(db_));
  return out;
}

}  // namespace snapset::mock
