// SPDX-License-Identifier: Apache-2.0
// The SNIA Swordfish / Redfish array driver: snapset::ArrayDriver over one
// REST session (the REST toolkit), for arrays that speak the subset
// docs/mock-array.md describes (Storage/{id}/Volumes, ConsistencyGroups with
// ConsistencyGroup.CreateReplicaTarget, Volume.RemoveReplicaRelationship,
// Fabrics/{id}/Connections, TaskService task monitors, and snapset's own
// Oem #Snapset.RevertToSnapshot on a volume). Built against the
// installed SDK only (snapset::sdk, snapset::rest), exactly as a vendor's
// driver is, into libsnapset_array_swordfish.so; the iSCSI provider loads
// it for arrays whose config says "driver": "swordfish".
//
// Config (array.h open): the REST toolkit's endpoint keys and nothing else
// (rest.hpp ParseEndpoint): rest_url, credentials_file, ca_file, insecure,
// timeouts_ms.
//
// Handles: a volume's, a group's and an exposure's id is its @odata.id (a
// path such as /redfish/v1/Storage/array/Volumes/3), so no call needs a
// lookup to find a resource it was given.
//
// Asynchronous answers (202 Accepted + Location of a task monitor) are
// handled in one place for every call, state-changing or not: the monitor is
// polled (rest::PollJob) until it gives the operation's own answer, which is
// then read as the synchronous answer would have been. Polling rule: the
// monitor's Retry-After (1 s when absent) is honoured while the deadline is
// further away than that; when the deadline is nearer, the monitor is polled
// every 100 ms, the last poll sent no later than 20 ms before the deadline,
// so that a task finishing just in time is seen and none is waited for past
// the deadline. A task still running then is remembered for Settle().
//
// Not thread-safe (array.h: one thread per instance).
#ifndef SNAPSET_PROVIDERS_ISCSI_SWORDFISH_SWORDFISH_DRIVER_HPP
#define SNAPSET_PROVIDERS_ISCSI_SWORDFISH_SWORDFISH_DRIVER_HPP

#include <chrono>
#include <memory>
#include <snapset/array.hpp>
#include <snapset/rest.hpp>
#include <string>
#include <vector>

namespace snapset::swordfish {

using rest::RestEndpoint;
using rest::RestResponse;
using rest::RestSession;

class SwordfishDriver final : public ArrayDriver {
 public:
  // Through the ABI: configured by Open().
  explicit SwordfishDriver(const ArrayHost& host) : ArrayDriver(host) {}
  // Ready to use, without Open().
  explicit SwordfishDriver(RestEndpoint endpoint);

  Status Open(std::string_view config_json) override;

  Status Warm(const ArrayCall& policy) override;
  Result<std::vector<ArrayVolume>> Inventory(const ArrayCall& policy) override;
  Result<std::vector<ArrayGroup>> Groups(const ArrayCall& policy) override;
  Result<ArrayGroup> CreateGroup(const std::string& name,
                                 const std::vector<std::string>& member_ids,
                                 const ArrayCall& policy) override;
  Status DeleteGroup(const std::string& group_id, const ArrayCall& policy) override;
  Result<std::vector<ArrayVolume>> SnapshotGroup(const SnapshotRequest& request,
                                                 const ArrayCall& policy) override;
  Status DeleteSnapshot(const std::string& snapshot_id, const ArrayCall& policy) override;
  // Swordfish has no revert: the volume's Actions.Oem advertises snapset's
  // #Snapset.RevertToSnapshot (docs/mock-array.md), found by one GET; an
  // array that advertises none answers NotImplemented.
  Status Revert(const std::string& volume_id, const std::string& snapshot_id,
                const ArrayCall& policy) override;
  Result<ArrayExposure> Expose(const ExposeRequest& request, const ArrayCall& policy) override;
  Status Unexpose(const std::string& exposure_id, const ArrayCall& policy) override;
  Result<std::vector<ArrayExposure>> Exposures(const ArrayCall& policy) override;
  Status Settle(const ArrayCall& policy) override;
  ArrayCounters counters() const override {
    if (!session_) return {};
    return {uint64_t(session_->requests()), uint64_t(session_->logins())};
  }

  // Operations still running at a deadline, not yet seen done by Settle().
  size_t pending_tasks() const { return pending_.size(); }

  // How a task monitor is polled (see the file comment).
  static constexpr std::chrono::milliseconds kNearDeadlinePoll{100};
  static constexpr std::chrono::milliseconds kPollMargin{20};

 private:
  // An operation the array accepted (202) and that was still running at a
  // deadline.
  struct Pending {
    std::string call;     // "POST https://array/redfish/v1/...", for messages
    std::string monitor;  // path of its task monitor
  };

  // Finds the storage and the iSCSI fabric once.
  Status Discover(const ArrayCall& policy);
  // Sends the request; a 202 is followed to the operation's own answer.
  Result<RestResponse> Exec(const std::string& method, const std::string& path,
                            const std::string& body, const ArrayCall& policy);
  // Polls `monitor` until it answers anything but 202 (returned), or until
  // the deadline (Unavailable). `wait`: the Retry-After last given.
  Result<RestResponse> PollMonitor(const std::string& call, const std::string& monitor,
                                   std::chrono::milliseconds wait, const ArrayCall& policy);
  // A GET that must answer 200 with a JSON object.
  Result<rapidjson::Document> GetObject(const std::string& path, const ArrayCall& policy);
  // Paths of a collection's Members.
  Result<std::vector<std::string>> GetMembers(const std::string& path, const ArrayCall& policy);
  // The array's answer to an idempotent delete: 2xx or 404 is OK.
  Status Deleted(const std::string& method, const std::string& path, const std::string& body,
                 const ArrayCall& policy);
  std::string Url(const std::string& path) const { return session_->base_url() + path; }
  // A Location header (absolute or not) as a path on this array.
  std::string PathOf(const std::string& location) const;

  std::unique_ptr<RestSession> session_;  // made by the constructor or Open()
  std::string storage_;                   // @odata.id of the storage, "" until discovered
  std::string connections_;               // Connections collection of the iSCSI fabric
  std::vector<Pending> pending_;
};

// A driver for one array, for tests that drive it without the ABI.
std::unique_ptr<ArrayDriver> MakeSwordfishDriver(RestEndpoint endpoint);

}  // namespace snapset::swordfish

#endif  // SNAPSET_PROVIDERS_ISCSI_SWORDFISH_SWORDFISH_DRIVER_HPP
