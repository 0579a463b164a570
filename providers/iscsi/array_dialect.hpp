// The seam for storage vendors: everything the iSCSI provider asks of an
// array's control plane, in the provider's own terms. An IHV supports their
// array by writing one class that implements ArrayDialect over their API;
// the provider does the rest (matching volumes by NAA, planning groups, the
// commit window, rollback, checking exposed LUNs on the wire).
//
// Contract for every method:
//   - the ArrayCall's deadline is absolute and binding: nothing is sent and
//     nothing is waited for past it (inside the commit window it is the
//     window's deadline and policy.retry is false);
//   - an operation the array answers asynchronously (202 + task monitor) is
//     polled until done within the deadline; one still running at the
//     deadline is an Unavailable error and is remembered, so that Settle()
//     can wait for it before anything is cleaned up;
//   - deletes are idempotent: a resource already gone is OK;
//   - errors are Status values whose messages name the array, the call and
//     what the array said, never a password, token or CHAP secret.
// Not thread-safe: the provider gives each array its own dialect object and
// uses it from one thread at a time.
#ifndef SNAPSET_PROVIDERS_ISCSI_ARRAY_DIALECT_HPP
#define SNAPSET_PROVIDERS_ISCSI_ARRAY_DIALECT_HPP

#include <cstdint>
#include <memory>
#include <snapset/status.hpp>
#include <string>
#include <vector>

#include <snapset/rest.hpp>

namespace snapset::iscsi {

// The REST toolkit's names, as the provider has always used them.
using rest::Clock;
using rest::Credentials;
using rest::JsonObject;
using rest::RestEndpoint;
using rest::RestResponse;
using rest::RestSession;
using rest::StatusFromResponse;

// A volume or snapshot as the array lists it.
struct ArrayVolume {
  std::string id;  // the array's handle for it (Swordfish: its @odata.id)
  std::string name;
  std::string naa;     // lower-case hex as VPD 0x83 reports it (NAA 5: 16, NAA 6: 32 digits)
  std::string serial;  // VPD 0x80, trimmed
  uint64_t capacity_bytes = 0;
  uint32_t block_size = 0;
  std::string source_id;  // a snapshot's source volume id; "" for a volume
  bool is_snapshot() const { return !source_id.empty(); }
};

struct ArrayGroup {
  std::string id;
  std::string name;
  std::vector<std::string> member_ids;  // in the array's order
};

struct ExposeRequest {
  std::vector<std::string> volume_ids;  // mapped as LUNs in this order
  std::string initiator_iqn;
  std::string chap_user;  // empty: no CHAP
  std::string chap_password;
  bool read_only = true;
  std::string name;  // empty: the array chooses
};

struct ArrayExposure {
  std::string id;
  std::string name;
  std::string target_iqn;
  std::string portal;     // host:port
  std::vector<std::string> volume_ids;  // what it maps, one per LUN
  std::vector<int> luns;                // volume_ids[i] is LUN luns[i]
  // iscsi://portal/target_iqn/luns[i]
  std::string Url(size_t i) const;
};

class ArrayDialect {
 public:
  virtual ~ArrayDialect() = default;

  // Logs in and opens the connection, so that the next call pays neither a
  // log-in nor a TCP or TLS handshake (pre_commit does this).
  virtual Status Warm(const ArrayCall& policy) = 0;

  // Every volume and snapshot of the array.
  virtual Result<std::vector<ArrayVolume>> Inventory(const ArrayCall& policy) = 0;

  virtual Result<std::vector<ArrayGroup>> Groups(const ArrayCall& policy) = 0;
  virtual Result<ArrayGroup> CreateGroup(const std::string& name,
                                         const std::vector<std::string>& member_ids,
                                         const ArrayCall& policy) = 0;
  virtual Status DeleteGroup(const std::string& group_id, const ArrayCall& policy) = 0;

  // The commit: one request that snapshots every member of the group at one
  // instant. The snapshots come back in the group's member order. `names`
  // is empty (the array names them) or holds one name per member, in member
  // order: the array names each snapshot so, and a name already taken fails
  // the call with nothing made. Names are how the provider finds its
  // snapshots again after a lost reply or a crash, so an array that cannot
  // name a snapshot at creation should keep the name some other way (a
  // label, a description) and report it in Inventory().
  virtual Result<std::vector<ArrayVolume>> SnapshotGroup(const ArrayGroup& group,
                                                         const std::vector<std::string>& names,
                                                         const ArrayCall& policy) = 0;
  virtual Status DeleteSnapshot(const std::string& snapshot_id, const ArrayCall& policy) = 0;

  virtual Result<ArrayExposure> Expose(const ExposeRequest& request, const ArrayCall& policy) = 0;
  virtual Status Unexpose(const std::string& exposure_id, const ArrayCall& policy) = 0;
  // Every exposure of the array (the provider finds its own by name, so an
  // exposure made by one process can be undone by another).
  virtual Result<std::vector<ArrayExposure>> Exposures(const ArrayCall& policy) = 0;

  // Waits, within the policy, for every operation this dialect started that
  // was still running at a deadline. Abort calls it before cleaning up, so
  // that a snapshot finishing late is found and deleted, not leaked.
  virtual Status Settle(const ArrayCall& policy) = 0;

  // HTTP requests sent so far (log-ins and task polls included): the
  // benchmark counts the calls inside the window with it.
  virtual int requests() const = 0;
};

// SNIA Swordfish / Redfish, as docs/mock-array.md describes the subset the
// mock array serves: Storage/{id}/Volumes, ConsistencyGroups with
// ConsistencyGroup.CreateReplicaTarget, Volume.RemoveReplicaRelationship,
// Fabrics/{id}/Connections, TaskService task monitors.
std::unique_ptr<ArrayDialect> MakeSwordfishDialect(RestEndpoint endpoint);

}  // namespace snapset::iscsi

#endif  // SNAPSET_PROVIDERS_ISCSI_ARRAY_DIALECT_HPP
