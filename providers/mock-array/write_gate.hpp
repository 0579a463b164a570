// SPDX-License-Identifier: Apache-2.0
// A write gate for the mock array's LUN files: a FUSE passthrough of the
// volumes folder that tgtd's backing store opens instead of the files
// themselves, so that the array can hold the writes of some LUNs -- a
// consistency-group fence -- while reads and every other LUN go on.
//
// A held write waits inside the gate (tgtd's backing-store thread waits, so
// the initiator's WRITE waits) until the hold is lifted or reaches its own
// deadline: a fence lifts itself, whatever its owner does. Files are opened
// with direct I/O, so no write is cached in the gate and the array's own
// copy of a volume file (a snapshot) sees every write that completed.
//
// Thread-safety: Hold, Lift, Holds and waiting may be called from any
// thread; the gate serves FUSE on threads of its own.
#ifndef SNAPSET_PROVIDERS_MOCK_ARRAY_WRITE_GATE_HPP
#define SNAPSET_PROVIDERS_MOCK_ARRAY_WRITE_GATE_HPP

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <snapset/status.hpp>
#include <string>
#include <thread>
#include <vector>

struct fuse;

namespace snapset::mock {

class WriteGate {
 public:
  using Clock = std::chrono::steady_clock;

  // Mounts a passthrough of `source_dir` on `mount_dir` (an empty folder)
  // and serves it. Errors: Unavailable when FUSE cannot be mounted (no
  // /dev/fuse, not root).
  static Result<std::unique_ptr<WriteGate>> Mount(const std::string& source_dir,
                                                  const std::string& mount_dir);
  // Lifts every hold, stops serving and unmounts. Whoever has files open in
  // the gate (tgtd) must have closed them.
  ~WriteGate();
  WriteGate(const WriteGate&) = delete;
  WriteGate& operator=(const WriteGate&) = delete;

  // Holds every write to these files (names in source_dir) from now until
  // Lift(id) or `until`, whichever comes first. Returns the hold's id.
  uint64_t Hold(const std::vector<std::string>& files, Clock::time_point until);
  // Hold(), then waits (at most until `until`) for the writes to these files
  // already past the gate to finish: afterwards the files change no more
  // until the hold ends. The array cuts a snapshot at one instant so,
  // without stopping tgtd (a tgtd thread waiting in the gate would keep it
  // from stopping).
  uint64_t HoldAndDrain(const std::vector<std::string>& files, Clock::time_point until);
  // Releases a hold; unknown or expired ids are fine.
  void Lift(uint64_t id);

  struct HoldInfo {
    uint64_t id;
    std::vector<std::string> files;
    Clock::time_point until;
  };
  // The holds still up.
  std::vector<HoldInfo> Holds();
  // Writes waiting at a hold now.
  int waiting();

  const std::string& mount_dir() const { return mount_dir_; }

 private:
  WriteGate(std::string source_dir, std::string mount_dir)
      : source_dir_(std::move(source_dir)), mount_dir_(std::move(mount_dir)) {}
  friend struct GateOps;

  // Blocks while a hold covers `file`, then counts the write in flight
  // until WriteDone(file). REQUIRES: mu_ not held.
  void WaitForWrite(const std::string& file);
  void WriteDone(const std::string& file);
  // Drops expired holds. REQUIRES: mu_ held.
  void Expire(Clock::time_point now);

  const std::string source_dir_;
  const std::string mount_dir_;
  struct fuse* fuse_ = nullptr;
  std::thread loop_;

  std::mutex mu_;
  std::condition_variable changed_;
  std::map<uint64_t, HoldInfo> holds_;    // guarded by mu_
  uint64_t next_id_ = 1;                  // guarded by mu_
  int waiting_ = 0;                       // guarded by mu_
  std::map<std::string, int> in_flight_;  // writes past the gate, by file; guarded by mu_
};

}  // namespace snapset::mock

#endif  // SNAPSET_PROVIDERS_MOCK_ARRAY_WRITE_GATE_HPP
