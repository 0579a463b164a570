// The mock array's durable state: an SQLite database in the state directory.
// Every change is written here before tgtd is touched, with a state column
// ("creating", "ready", "deleting") so that start-up can finish or roll back
// an operation a crash cut in half (see MockArray::Recover).
//
// Not thread-safe: the caller serialises every call.
#ifndef SNAPSET_PROVIDERS_MOCK_ARRAY_STORE_HPP
#define SNAPSET_PROVIDERS_MOCK_ARRAY_STORE_HPP

#include <cstdint>
#include <memory>
#include <optional>
#include <snapset/status.hpp>
#include <string>
#include <vector>

struct sqlite3;

namespace snapset::mock {

struct VolumeRecord {
  int64_t id = 0;  // also the tgtd target id; never reused
  std::string name;
  uint64_t capacity_bytes = 0;
  uint32_t block_size = 0;
  std::string naa;          // 32 lower-case hex digits, NAA 6
  std::string serial;       // VPD 0x80
  std::string state;        // creating | ready | deleting
  int64_t source_id = 0;    // a snapshot's source volume; 0 for a volume
  std::string copy_method;  // a snapshot's: "reflink" or "sparse-copy"
  bool is_snapshot() const { return source_id != 0; }
};

// A consistency group: a name over member volumes. Written in one
// transaction and touching no tgtd, so it needs no state column.
struct GroupRecord {
  int64_t id = 0;  // never reused
  std::string name;
  std::vector<int64_t> members;  // volume ids, in the order given
};

// An exposure (a Redfish Connection): volumes mapped as LUNs of one iSCSI
// target that only `initiator_iqn` may log in to, with one-way CHAP when
// chap_user is set. State column as for volumes: "creating", "ready",
// "deleting". The CHAP secret is kept in clear: tgtd needs it again after a
// restart (the state directory is 0700).
struct ExposureLun {
  int64_t volume_id = 0;
  int lun = 0;  // 1..; tgt keeps LUN 0 for its controller
  bool read_only = false;
};

struct ExposureRecord {
  int64_t id = 0;  // also the tgtd target id; never reused
  std::string name;
  std::string initiator_iqn;
  std::string chap_user;
  std::string chap_password;
  std::string state;
  std::vector<ExposureLun> luns;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // 13 random hex digits chosen when the database was created: what makes
  // this array's identifiers differ from every other array's.
  const std::string& array_id() const { return array_id_; }

  // Inserts a volume in state "creating" and gives it its id, NAA and
  // serial. AlreadyExists when the name is taken.
  // source_id != 0 makes it a snapshot of that volume.
  Result<VolumeRecord> InsertVolume(const std::string& name, uint64_t capacity_bytes,
                                    uint32_t block_size, int64_t source_id = 0);
  Status SetState(int64_t id, const std::string& state);
  // Every snapshot to "ready" with its copy_method, in one transaction: all
  // or none.
  Status MarkSnapshotsReady(const std::vector<VolumeRecord>& snapshots);

  // An explicit transaction around several calls (one commit, one WAL
  // fsync, instead of one per call). Calls inside nest as savepoints.
  Status Begin();
  Status Commit();
  void Rollback();

  // AlreadyExists when the name is taken.
  Result<GroupRecord> InsertGroup(const std::string& name, const std::vector<int64_t>& members);
  Status DeleteGroup(int64_t id);
  Result<std::vector<GroupRecord>> Groups() const;
  Status DeleteVolume(int64_t id);

  // Inserts `e` (its LUNs too) in state "creating" and gives it its id.
  // AlreadyExists when the name is taken.
  Result<ExposureRecord> InsertExposure(ExposureRecord e);
  Status SetExposureState(int64_t id, const std::string& state);
  Status DeleteExposure(int64_t id);
  Result<std::vector<ExposureRecord>> Exposures() const;
  Result<std::vector<VolumeRecord>> Volumes() const;

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status Exec(const std::string& sql) const;
  Result<VolumeRecord> InsertVolumeRow(const std::string& name, uint64_t capacity_bytes,
                                       uint32_t block_size, int64_t source_id);
  Status Init();

  sqlite3* db_;
  std::string array_id_;
};

}  // namespace snapset::mock

#endif  // SNAPSET_PROVIDERS_MOCK_ARRAY_STORE_HPP
