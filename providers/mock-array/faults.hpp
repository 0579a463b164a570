// The mock array's fault table (docs/mock-array.md, "Fault injection"): what
// POST /mock/faults armed, by operation, each with a mode and a count of
// firings left. The routes fire faults through the table; the table itself
// knows nothing of HTTP.
//
// Thread-safe: one lock of its own, never held while calling out, so the
// array may call in with its own lock held. Hangs wait on the table (without
// the table's lock) until their fault is deleted, the table is cleared or
// shut down.
#ifndef SNAPSET_PROVIDERS_MOCK_ARRAY_FAULTS_HPP
#define SNAPSET_PROVIDERS_MOCK_ARRAY_FAULTS_HPP

#include <rapidjson/document.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace snapset::mock {

enum class FaultMode {
  kError,           // answer with Status (Retry-After with 429 / 503)
  kDelay,           // wait DelayMs, then run the operation
  kHang,            // never answer; drop the connection once released
  kMalformedJson,   // run nothing; 200 with a body that is not JSON
  kDropConnection,  // run the operation; send half the reply and close
  kPartial,         // consistency-group snapshot: the last FailMembers fail
  kTargetOffline,   // every target of the array offline (operation "iSCSI")
};
const char* FaultModeName(FaultMode mode);

// Operations that are no REST route: a step inside the consistency-group
// snapshot, before each member's copy, and the iSCSI side of the array.
inline constexpr char kCopyMemberOperation[] = "ConsistencyGroup.CopyMember";
inline constexpr char kIscsiOperation[] = "iSCSI";
inline constexpr char kGroupSnapshotOperation[] = "ConsistencyGroup.CreateReplicaTarget";
// The twophase dialect's group snapshot (its commit, run as a job): the
// other operation Mode Partial applies to.
inline constexpr char kTwoPhaseSnapshotOperation[] = "ConsistencyGroup.Snapshot";

// How long a hang waits at most for its release.
inline constexpr std::chrono::minutes kMaxHang{10};

struct Fault {
  int64_t id = 0;
  std::string operation;
  FaultMode mode = FaultMode::kError;
  int64_t count = 1;                                // firings asked for; 0: until deleted
  int64_t remaining = 1;                            // firings left when count > 0
  int status = 500;                                 // kError
  int retry_after_s = 1;                            // kError with status 429 or 503
  int64_t delay_ms = 0;                             // kDelay
  int fail_members = 1;                             // kPartial
  int64_t duration_ms = 0;                          // kTargetOffline; 0: until deleted
  std::chrono::steady_clock::time_point expires{};  // kTargetOffline with a duration
};

// What is wrong with a fault's body: the property at fault (may be empty)
// and a Redfish Base message id and text.
struct FaultBodyError {
  std::string property;
  std::string message_id;
  std::string message;
};

// Parses a POST /mock/faults body into *out (id 0), or says what is wrong.
// `operations`: the REST operation names; the internal ones above are
// known as well.
bool ParseFault(const rapidjson::Value& body, const std::set<std::string>& operations, Fault* out,
                FaultBodyError* error);

class Faults {
 public:
  Faults() = default;
  ~Faults();  // Shutdown(), joins the timer thread
  Faults(const Faults&) = delete;
  Faults& operator=(const Faults&) = delete;

  // Called from the timer thread, without the table's lock, after a
  // TargetOffline fault with a duration has run out and been removed.
  // REQUIRES: set before any such fault is armed.
  void SetExpiryCallback(std::function<void()> callback);

  // Gives the fault its id (and expiry) and arms it; returns it as armed.
  Fault Arm(Fault fault);

  // A fault that fired, and for a hang the ticket to wait on.
  struct Fired {
    Fault fault;
    uint64_t ticket = 0;
  };
  // Fires the first armed fault for `operation` whose mode `wanted` accepts:
  // counts it down (gone when spent) and returns it as it was. TargetOffline
  // faults never fire; they act when armed.
  std::optional<Fired> Fire(const std::string& operation,
                            const std::function<bool(FaultMode)>& wanted);
  // Blocks until the hang's fault is removed or the table cleared or shut
  // down, or kMaxHang has passed.
  void WaitForRelease(uint64_t ticket);
  // Sleeps for a Delay; cut short by Shutdown() only.
  void Pause(std::chrono::milliseconds delay);

  std::vector<Fault> List() const;
  std::optional<Fault> Get(int64_t id) const;
  // True while a fault of this operation and mode is armed.
  bool Armed(const std::string& operation, FaultMode mode) const;
  // Removes one fault (false when there is none with that id) or all, and
  // releases the hangs they caused.
  bool Remove(int64_t id);
  void Clear();
  // Releases every hang, now and later: the server is going down.
  void Shutdown();
  // Shutdown(), then waits for the timer thread to end (and with it any
  // expiry callback it runs).
  void StopTimer();

 private:
  void RunTimer();

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::vector<Fault> armed_;  // in the order armed: the first match fires
  int64_t next_id_ = 1;
  uint64_t next_ticket_ = 1;
  std::map<uint64_t, int64_t> hangs_;  // ticket -> fault id, until released
  bool shutdown_ = false;
  std::function<void()> on_expiry_;
  std::thread timer_;  // started with the first fault that expires
};

}  // namespace snapset::mock

#endif  // SNAPSET_PROVIDERS_MOCK_ARRAY_FAULTS_HPP
