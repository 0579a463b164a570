// One snapshot set's volumes on one array, and everything the set does
// there: the consistency group, the one request inside the commit window,
// and the cleanup that keeps the set all or none.
//
// Names are the provider's memory on the array. Each replica is named
// ReplicaName(snapshot id) when it is made (the group snapshot call takes
// the names), a temporary group GroupName(set id), an exposure
// ExposureName(snapshot id). So whatever happened to a reply -- lost on the
// wire, a 500 from an array that left some replicas behind, a process that
// died -- Abort() and a later process find the set's objects by name, not
// by a handle they may never have received.
//
// Thread-safety: a part is used by one thread at a time (the provider runs
// parts in parallel, one thread each); its dialect is its own. Abort may
// come from the host's watchdog while Commit() is still waiting: the mutex
// makes it wait for that request, which ends by the window's deadline.
#ifndef SNAPSET_PROVIDERS_ISCSI_ARRAY_SET_PART_HPP
#define SNAPSET_PROVIDERS_ISCSI_ARRAY_SET_PART_HPP

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <snapset/array.hpp>
#include <snapset/status.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace snapset::iscsi {

// "snapset-<snapshot id>": a replica made for that snapshot.
std::string ReplicaName(std::string_view snapshot_id);
// The snapshot id a replica name stands for, or nullopt if it is not one of
// ours (the id must look like a UUID).
std::optional<std::string> SnapshotIdOfReplica(std::string_view name);
// "snapset-<set id>": the temporary consistency group of a set.
std::string GroupName(std::string_view set_id);
// "snapset-fence-<set id>": the fence holding the set's writes on an array.
std::string FenceName(std::string_view set_id);
// "snapset-<snapshot id>": the connection exposing that snapshot.
std::string ExposureName(std::string_view snapshot_id);
// The id in a name made above, given its prefix ("snapset-",
// "snapset-fence-"), or nullopt if the rest is not a UUID: not ours.
std::optional<std::string> IdOfName(std::string_view name, std::string_view prefix);
inline constexpr std::string_view kNamePrefix = "snapset-";
inline constexpr std::string_view kFenceNamePrefix = "snapset-fence-";

// One volume of the set on this array.
struct PartMember {
  std::string snapshot_id;
  std::string volume_name;  // the host's name for it (snapset_volume.name)
  ArrayVolume source;       // as the array's inventory lists it
};

class ArraySetPart {
 public:
  ArraySetPart(std::string array, std::string set_id, std::unique_ptr<ArrayDriver> dialect);
  ArraySetPart(const ArraySetPart&) = delete;
  ArraySetPart& operator=(const ArraySetPart&) = delete;

  const std::string& array() const { return array_; }

  // begin_prepare: one more volume. AlreadyExists when the snapshot id or
  // the volume is in the part already.
  Status Add(PartMember member);

  // end_prepare: logs in, then creates GroupName(set id) of this part's
  // volumes (or finds it, from an earlier attempt). Only an array that
  // refuses a second group for a volume (BAD_STATE) makes it use the
  // user's group of exactly these volumes instead, which an abort cannot
  // take away from a late group snapshot request.
  Status Prepare(const ArrayCall& policy);
  // pre_commit: log in and open the connection again if needed, so that the
  // window pays no handshake.
  Status Warm(const ArrayCall& policy);
  // hold_writes, for a driver with fences: one fence over every member,
  // lifting itself at policy.deadline, whatever happens to this process.
  // OK again while it is up (the host asks once per volume).
  Status Fence(const ArrayCall& policy);
  // release_writes and abort: lifts the fence if one is up. Idempotent.
  Status LiftFence(const ArrayCall& policy);
  bool HasVolume(std::string_view volume_name) const;

  // Inside the window: exactly one group snapshot request (plus task polls
  // when the array answers 202), never past policy.deadline; policy.retry
  // must be false. Does no logging and no other I/O.
  Status Commit(const ArrayCall& policy);
  // post_commit: removes the temporary group; the snapshots stay.
  Status Finish(const ArrayCall& policy);
  // Undoes everything the set made on this array, in any state, again and
  // again: waits for operations still running on the array, removes the
  // temporary group (a commit request still in flight then finds no group),
  // then deletes every replica named for one of the part's snapshots.
  Status Abort(const ArrayCall& policy);

  // The members, in the order added.
  std::vector<PartMember> members() const;
  // After Commit(): the replica made for `snapshot_id`.
  std::optional<ArrayVolume> ReplicaOf(std::string_view snapshot_id) const;
  // Requests sent so far (benchmark: calls inside the window).
  int requests() const;

 private:
  mutable std::mutex mu_;
  const std::string array_;
  const std::string set_id_;
  std::unique_ptr<ArrayDriver> dialect_;
  std::vector<PartMember> members_;
  std::optional<ArrayGroup> group_;  // set by Prepare()
  bool group_is_temporary_ = false;
  std::vector<std::string> names_;     // replica names, in the group's member order
  std::vector<ArrayVolume> replicas_;  // set by Commit(), same order
  std::string fence_id_;               // set by Fence(), cleared by LiftFence()
  bool fence_requested_ = false;       // Fence() sent a request, answered or not

  // The id of the set's fence if the array lists it up. REQUIRES: mu_ held.
  std::optional<std::string> FenceUpByName(const ArrayCall& policy);
};

// Runs fn on every part and returns the first error, with the others'
// appended. Several parts run in parallel, one thread each (a part is used
// by one thread at a time); a single part runs on the caller's thread, so a
// one-array commit starts no thread inside the window.
Status RunOnEveryPart(const std::vector<std::shared_ptr<ArraySetPart>>& parts,
                      const std::function<Status(ArraySetPart&)>& fn);

// Abort of a set this process never saw (the host's recovery after a
// crash): removes the set's temporary group if the array still has one. Its
// replicas the host deletes by snapshot id.
Status AbortUnknownSet(ArrayDriver& dialect, std::string_view set_id, const ArrayCall& policy);

}  // namespace snapset::iscsi

#endif  // SNAPSET_PROVIDERS_ISCSI_ARRAY_SET_PART_HPP
