// The mock array: its volumes, their LUNs in its own tgtd, and the Redfish /
// Swordfish REST routes over them (docs/mock-array.md).
//
// Thread-safe: httplib calls handlers from a pool; one lock serialises every
// operation on state, database and tgtd together.
#ifndef SNAPSET_PROVIDERS_MOCK_ARRAY_MOCK_ARRAY_HPP
#define SNAPSET_PROVIDERS_MOCK_ARRAY_MOCK_ARRAY_HPP

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <snapset/status.hpp>
#include <string>
#include <vector>

#include "providers/mock-array/redfish_json.hpp"
#include "providers/mock-array/sessions.hpp"
#include "providers/mock-array/store.hpp"
#include "providers/mock-array/tasks.hpp"
#include "providers/mock-array/tgt_daemon.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace snapset::mock {

struct ArrayOptions {
  std::string name = "mock-array";
  std::string state_dir;
  std::string target_prefix;  // IQN prefix; a volume's target is PREFIX:vol-ID
  uint64_t pool_capacity_bytes = 1ull << 40;
  // Every state-changing operation runs as a task (PATCH /redfish/v1/TaskService changes it).
  bool async_operations = false;
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

  // Asynchronous tasks (routes_tasks.cc).
 public:
  // Waits for every task started to finish and refuses new ones (a 503).
  // REQUIRES: the server has stopped serving, and tgtd still runs.
  void WaitForTasks();

 private:
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
  // /mock/faults, /mock/state, /mock/reset.
  void RegisterMockRoutes(httplib::Server& server);
  // Applies a fault armed for `operation`, if any: true when it has
  // answered (or dropped) the request, false to go on.
  bool InjectFault(const std::string& operation, const httplib::Request& req,
                   httplib::Response& res);

  // State as the routes see it. REQUIRES: mu_ held.
  // Thick accounting: a volume consumes its full capacity from the pool; a
  // snapshot (copy-on-write on a real array) consumes nothing.
  Result<uint64_t> UsedBytes();
  // The ready volume / the group with the request's id (matches[2]), or
  // nullopt with a 404 (or 500) sent.
  std::optional<VolumeRecord> FindVolume(const httplib::Request& req, httplib::Response& res);
  std::optional<GroupRecord> FindGroup(const httplib::Request& req, httplib::Response& res);
  // What keeps a volume from being deleted: its snapshots (any state) and
  // the groups it is in, as "snapshot NAME" / "consistency group NAME".
  Result<std::vector<std::string>> Holders(const VolumeRecord& v);
  void WriteVolume(JsonWriter& w, const VolumeRecord& v) const;
  void WriteGroup(JsonWriter& w, const GroupRecord& g) const;

  std::string VolumeFile(int64_t id) const;
  std::string TargetIqn(int64_t id) const;
  Status Expose(const VolumeRecord& v);
  // Takes a volume away: "deleting" first, then its target, file and row.
  Status RemoveVolume(const VolumeRecord& v);
  // Undoes a volume or snapshot never acknowledged (target, file, row).
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
  // Last: destroyed first, so that its workers are joined before anything
  // a running task's handler uses goes away.
  Tasks tasks_;
};

}  // namespace snapset::mock

#endif  // SNAPSET_PROVIDERS_MOCK_ARRAY_MOCK_ARRAY_HPP
