// The mock array: its volumes, their LUNs in its own tgtd, and the Redfish /
// Swordfish REST routes over them (docs/mock-array.md).
//
// Thread-safe: httplib calls handlers from a pool; one lock serialises every
// operation on state, database and tgtd together.
#ifndef SNAPSET_PROVIDERS_MOCK_ARRAY_MOCK_ARRAY_HPP
#define SNAPSET_PROVIDERS_MOCK_ARRAY_MOCK_ARRAY_HPP

#include <snapset/status.hpp>

#include <cstdint>
#include <mutex>
#include <string>

#include "providers/mock-array/sessions.hpp"
#include "providers/mock-array/store.hpp"
#include "providers/mock-array/tgt_daemon.hpp"

namespace httplib {
class Server;
}

namespace snapset::mock {

struct ArrayOptions {
  std::string name = "mock-array";
  std::string state_dir;
  std::string target_prefix;  // IQN prefix; a volume's target is PREFIX:vol-ID
  uint64_t pool_capacity_bytes = 1ull << 40;
};

class MockArray {
 public:
  MockArray(ArrayOptions options, Store* store, TgtDaemon* tgt, Sessions* sessions)
      : options_(std::move(options)), store_(store), tgt_(tgt), sessions_(sessions) {}

  // Finishes or rolls back what a crash cut in half, then gives tgtd a LUN
  // for every volume. REQUIRES: before Register() serves anything.
  Status Recover();
  void Register(httplib::Server& server);

 private:
  std::string VolumeFile(int64_t id) const;
  std::string TargetIqn(int64_t id) const;
  Status Expose(const VolumeRecord& v);
  // Takes a volume away: "deleting" first, then its target, file and row.
  Status RemoveVolume(const VolumeRecord& v);
  // Undoes a snapshot that was never acknowledged (target, file, row).
  void Discard(const VolumeRecord& v);
  // Inserts a snapshot record of `source` in state "creating", named `name`
  // or, when empty, SOURCE-snap-N with the first free N.
  Result<VolumeRecord> InsertSnapshot(const VolumeRecord& source, const std::string& name);
  // fdatasyncs the source file and copies it to the snapshot's file:
  // reflink when the file system can, else a sparse copy.
  Status CopyContents(const VolumeRecord& source, VolumeRecord* snapshot);

  ArrayOptions options_;
  Store* store_;
  TgtDaemon* tgt_;
  Sessions* sessions_;
  std::mutex mu_;
};

}  // namespace snapset::mock

#endif  // SNAPSET_PROVIDERS_MOCK_ARRAY_MOCK_ARRAY_HPP
