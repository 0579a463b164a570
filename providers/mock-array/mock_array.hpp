// The mock array: its volumes, their LUNs in its own tgtd, and the Redfish /
// Swordfish REST routes over them (docs/mock-array.md).
//
// Thread-safe: httplib calls handlers from a pool; one lock serialises every
// operation on state, database and tgtd together.
#ifndef SNAPSET_PROVIDERS_MOCK_ARRAY_MOCK_ARRAY_HPP
#define SNAPSET_PROVIDERS_MOCK_ARRAY_MOCK_ARRAY_HPP

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <snapset/status.hpp>
#include <string>
#include <vector>

#include "providers/mock-array/faults.hpp"
#include "providers/mock-array/redfish_json.hpp"
#include "providers/mock-array/request_log.hpp"
#include "providers/mock-array/sessions.hpp"
#include "providers/mock-array/store.hpp"
#include "providers/mock-array/tasks.hpp"
#include "providers/mock-array/tgt_daemon.hpp"
#include "providers/mock-array/write_gate.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace snapset::mock {

struct ArrayOptions {
  std::string name = "mock-array";
  std::string state_dir;
  std::string target_prefix;  // IQN prefix; an exposure's target is PREFIX:conn-ID
  std::string iscsi_portal;   // HOST:PORT, as initiators are told
  uint64_t pool_capacity_bytes = 1ull << 40;
  // Every state-changing operation runs as a task (PATCH /redfish/v1/TaskService changes it).
  bool async_operations = false;
  // The REST API served: "swordfish" (Redfish / Swordfish) or "twophase"
  // (routes_twophase.cc). /mock and its log-in are the same in both.
  std::string dialect = "swordfish";
  // A volume belongs to one consistency group at most, as on arrays that
  // nest a volume in a single group: a group of a volume already in one is
  // refused (409).
  bool exclusive_groups = false;
};

class MockArray {
 public:
  MockArray(ArrayOptions options, Store* store, TgtDaemon* tgt, Sessions* sessions)
      : options_(std::move(options)), store_(store), tgt_(tgt), sessions_(sessions) {}

  // The write gate the twophase dialect's fences hold writes with: LUNs are
  // then served from its mount. REQUIRES: before Recover(); outlives this.
  void set_write_gate(WriteGate* gate) { gate_ = gate; }

  // Finishes or rolls back what a crash cut in half, then gives tgtd a
  // target for every ready connection. REQUIRES: before Register() serves
  // anything.
  Status Recover();
  void Register(httplib::Server& server);
  // Waits for every task started to finish (refusing new ones with a 503),
  // then stops the faults' timer: afterwards nothing of the array touches
  // tgtd, which may then be stopped. REQUIRES: the server has stopped
  // serving, and tgtd still runs.
  void Quiesce();

 private:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  // Serves METHOD pattern with `handler` as the named operation (such as
  // "Volume.Create"): the one door every REST request passes through.
  void Route(httplib::Server& server, const std::string& method, const std::string& operation,
             const std::string& pattern, Handler handler);
  // The routes, by resource (routes_*.cc).
  void RegisterServiceRoutes(httplib::Server& server);  // root, sessions, storage, pools
  void RegisterVolumeRoutes(httplib::Server& server);   // volumes and their snapshots
  void RegisterGroupRoutes(httplib::Server& server);    // consistency groups

  // Exposure (routes_fabrics.cc): volumes and snapshots mapped to initiators.
  void RegisterFabricRoutes(httplib::Server& server);
  void WriteConnection(JsonWriter& w, const ExposureRecord& e) const;
  // The ready connection with the request's id (matches[2]), or nullopt
  // with a 404 (or 500) sent. REQUIRES: mu_ held.
  std::optional<ExposureRecord> FindConnection(const httplib::Request& req, httplib::Response& res);

  // Under exclusive_groups: the name of a group that already holds one of
  // `members` (volume ids), or "" when none does or groups may overlap.
  // REQUIRES: mu_ held.
  std::string GroupHolding(const std::vector<int64_t>& members);
  // The twophase dialect (routes_twophase.cc).
  struct Fence {
    std::string label;
    std::vector<int64_t> luns;
    uint64_t hold = 0;  // the gate's
    WriteGate::Clock::time_point until;
  };
  void RegisterTwoPhaseRoutes(httplib::Server& server);
  // The commit of a group snapshot, under `fence` when not empty: runs as a
  // job. Takes mu_.
  void CommitTwoPhase(const std::string& group, const std::vector<std::string>& labels,
                      const std::string& fence, httplib::Response& res);
  void ExpireFences();  // REQUIRES: mu_ held
  // The 500 of an injected Partial fault on the commit (a job's failure):
  // names the members that got no snapshot and the snapshots left.
  void SendTpPartialFailure(const GroupRecord& g, const std::vector<VolumeRecord>& made,
                            const std::vector<VolumeRecord>& failed, httplib::Response& res) const;
  void WriteTpObject(JsonWriter& w, const VolumeRecord& v) const;
  void WriteTpGroup(JsonWriter& w, const GroupRecord& g) const;
  void WriteTpFence(JsonWriter& w, const std::string& id, const Fence& f) const;
  void WriteTpExport(JsonWriter& w, const ExposureRecord& e,
                     const std::vector<VolumeRecord>& volumes) const;
  // The file tgtd serves a LUN from: in the gate when there is one.
  std::string LunFile(int64_t id) const;
  WriteGate* gate_ = nullptr;
  std::map<std::string, Fence> fences_;  // by id; guarded by mu_

  // Asynchronous tasks (routes_tasks.cc).
  void RegisterTaskRoutes(httplib::Server& server);
  // True when the request asks "Prefer: respond-async" (RFC 7240).
  static bool PrefersAsync(const httplib::Request& req);
  // True when this request runs as a task: a state-changing operation with
  // "Prefer: respond-async", or any when the array is set to.
  bool RunsAsTask(const std::string& operation, const httplib::Request& req);
  // Answers 202 with the Location of a task monitor and runs `handler` on
  // a copy of the request (re-matched against `pattern`) in the background.
  void StartTask(const std::string& operation, const std::string& pattern, const Handler& handler,
                 const httplib::Request& req, httplib::Response& res);

  // Fault injection and the mock's own routes (routes_mock.cc):
  // /mock/faults, /mock/requests, /mock/state, /mock/reset.
  void RegisterMockRoutes(httplib::Server& server);
  // Applies a fault armed for `operation`, if any: true when it has
  // answered (or dropped) the request, false to go on. *drop_reply is set
  // when the operation is to run but its reply be lost (DropConnection):
  // the door then calls DropReply on the answer.
  bool InjectFault(const std::string& operation, const httplib::Request& req,
                   httplib::Response& res, bool* drop_reply);
  // Sends the headers of `res` and half its body, then closes.
  static void DropReply(httplib::Response& res);
  // Answers as an Error fault says (Retry-After with 429 / 503) or, for a
  // Hang, drops the connection. `twophase`: in that dialect's error body
  // (reason INJECTED) instead of a Redfish one.
  static void AnswerFault(const Fault& fault, const std::string& what, httplib::Response& res,
                          bool twophase = false);
  // A refusal a client should retry: `status` with Retry-After.
  static void SendRetryLater(httplib::Response& res, int status, int retry_after_s,
                             const std::string& message_id, const std::string& message);
  // The fault point before each member's copy of a consistency-group
  // snapshot ("ConsistencyGroup.CopyMember"): runs a Delay, waits out a
  // Hang; returns the fault when the snapshot is to fail (Error, Hang).
  // REQUIRES: mu_ held (the array is busy with the snapshot meanwhile).
  std::optional<Fault> CopyMemberFault(const VolumeRecord& member);
  // Puts every target offline or back, as TargetOffline faults say.
  // REQUIRES: mu_ held.
  Status SetTargetsOffline(bool offline);
  // Every volume, snapshot, group and target away (POST /mock/reset).
  // REQUIRES: mu_ held.
  Status RemoveEverything();
  void WriteState(JsonWriter& w);  // GET /mock/state. REQUIRES: mu_ held.
  // The operation names given to Route(), for checking fault bodies.
  // Written while registering only.
  std::set<std::string> operations_;
  // State-changing requests in the door, for the 429 (see Route()).
  std::atomic<int> waiting_{0};
  // Every request the door saw (GET /mock/requests).
  RequestLog requests_;
  bool targets_offline_ = false;  // guarded by mu_

  // State as the routes see it. REQUIRES: mu_ held.
  // Thick accounting: a volume consumes its full capacity from the pool; a
  // snapshot (copy-on-write on a real array) consumes nothing.
  Result<uint64_t> UsedBytes();
  // The ready volume / the group with the request's id (matches[2]), or
  // nullopt with a 404 (or 500) sent.
  std::optional<VolumeRecord> FindVolume(const httplib::Request& req, httplib::Response& res);
  std::optional<GroupRecord> FindGroup(const httplib::Request& req, httplib::Response& res);
  // What keeps a volume from being deleted: its snapshots (any state), the
  // groups it is in and the connections that map it, as "snapshot NAME",
  // "consistency group NAME", "connection NAME".
  Result<std::vector<std::string>> Holders(const VolumeRecord& v);
  // Sends a 409 naming the holders (or a 500) and returns true when `v` is
  // held; false when it may go.
  bool RefusedWhileHeld(const VolumeRecord& v, httplib::Response& res);
  void WriteVolume(JsonWriter& w, const VolumeRecord& v) const;
  void WriteGroup(JsonWriter& w, const GroupRecord& g) const;

  std::string VolumeFile(int64_t id) const;
  // An exposure's target: PREFIX:conn-ID.
  std::string TargetIqn(int64_t exposure_id) const;
  // Creates (or finds) a volume's sparse backing file at its capacity.
  Status PrepareFile(const VolumeRecord& v);
  // Gives tgtd the target of an exposure: its ACL, CHAP and LUNs.
  Status AddExposureTarget(const ExposureRecord& e);
  // Unmaps: "deleting" first, then the target (sessions or not) and rows.
  Status RemoveExposure(const ExposureRecord& e);
  // Takes a volume away: "deleting" first, then its file and row.
  Status RemoveVolume(const VolumeRecord& v);
  // Undoes a volume or snapshot never acknowledged (file, row).
  void Discard(const VolumeRecord& v);
  // Inserts a snapshot record of `source` in state "creating", named `name`
  // or, when empty, SOURCE-snap-N with the first free N.
  Result<VolumeRecord> InsertSnapshot(const VolumeRecord& source, const std::string& name);
  // Copies the source file to the snapshot's file, reflink when the file
  // system can, else a sparse copy, and sets snapshot->copy_method. Syncs
  // nothing: SnapshotAtOneInstant does, once for all.
  Status CopyContents(const VolumeRecord& source, VolumeRecord* snapshot);
  // Puts the contents of `snapshot` back on `volume` (its source), in
  // place: the volume keeps its file, NAA and connections, and a host logged
  // in to it reads the snapshot's blocks afterwards. The volume takes no
  // write meanwhile (its LUN held in the gate, else tgtd stopped); the file
  // is synced before this returns. A crash in the middle leaves the volume
  // part reverted: the revert was never acknowledged and is asked again.
  // REQUIRES: mu_ held.
  Status RevertContents(const VolumeRecord& volume, const VolumeRecord& snapshot);
  // Why `volume` cannot be reverted to snapshot `snapshot_id` now, with the
  // HTTP status to refuse with (404: no such snapshot of it; 409: a fence
  // holds its writes), or nullopt when it can. *snapshot is the snapshot.
  // REQUIRES: mu_ held.
  struct Refusal {
    int status;
    std::string message;
  };
  std::optional<Refusal> RevertRefusal(const VolumeRecord& volume, int64_t snapshot_id,
                                       VolumeRecord* snapshot);
  // Snapshots `sources` at one instant (names[i], or a default name when
  // empty or missing): the records in one transaction, tgtd frozen around
  // the copies, one syncfs, every row "ready" in one transaction. All or
  // none: on failure nothing is left. before_copy (may be empty) runs
  // inside the freeze before each copy; an error from it fails the whole.
  // AlreadyExists when a name is taken. REQUIRES: mu_ held.
  Status SnapshotAtOneInstant(const std::vector<VolumeRecord>& sources,
                              const std::vector<std::string>& names,
                              const std::function<Status(const VolumeRecord&)>& before_copy,
                              std::vector<VolumeRecord>* snapshots);
  // SnapshotAtOneInstant with the fault point before each member's copy
  // (CopyMemberFault): *injected is the fault that stopped it, if one did.
  // REQUIRES: mu_ held.
  Status SnapshotMembers(const std::vector<VolumeRecord>& sources,
                         const std::vector<std::string>& names, std::optional<Fault>* injected,
                         std::vector<VolumeRecord>* snapshots);

  ArrayOptions options_;
  Store* store_;
  TgtDaemon* tgt_;
  Sessions* sessions_;
  std::mutex mu_;
  // Fault injection: its timer thread (which takes mu_ and calls tgt_) is
  // joined while all else lives.
  Faults faults_;
  // Last: destroyed first, so that its workers are joined before anything
  // a running task's handler uses goes away (faults_ included).
  Tasks tasks_;
};

}  // namespace snapset::mock

#endif  // SNAPSET_PROVIDERS_MOCK_ARRAY_MOCK_ARRAY_HPP
