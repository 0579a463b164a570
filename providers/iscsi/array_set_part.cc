#include "providers/iscsi/array_set_part.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <exception>
#include <set>
#include <thread>

namespace snapset::iscsi {
namespace {

bool LooksLikeUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

bool SameMembers(const ArrayGroup& group, const std::vector<PartMember>& members) {
  if (group.member_ids.size() != members.size()) return false;
  std::set<std::string> want;
  for (const PartMember& m : members) want.insert(m.source.id);
  return std::set<std::string>(group.member_ids.begin(), group.member_ids.end()) == want;
}

}  // namespace

std::string ReplicaName(std::string_view snapshot_id) {
  return std::string(kNamePrefix) + std::string(snapshot_id);
}

std::optional<std::string> SnapshotIdOfReplica(std::string_view name) {
  return IdOfName(name, kNamePrefix);
}

std::optional<std::string> IdOfName(std::string_view name, std::string_view prefix) {
  if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string_view id = name.substr(prefix.size());
  if (!LooksLikeUuid(id)) return std::nullopt;
  return std::string(id);
}

std::string GroupName(std::string_view set_id) {
  return std::string(kNamePrefix) + std::string(set_id);
}

std::string FenceName(std::string_view set_id) {
  return std::string(kFenceNamePrefix) + std::string(set_id);
}

std::string ExposureName(std::string_view snapshot_id) {
  return std::string(kNamePrefix) + std::string(snapshot_id);
}

ArraySetPart::ArraySetPart(std::string array, std::string set_id,
                           std::unique_ptr<ArrayDriver> dialect)
    : array_(std::move(array)), set_id_(std::move(set_id)), dialect_(std::move(dialect)) {}

Status ArraySetPart::Add(PartMember member) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const PartMember& m : members_) {
    if (m.snapshot_id == member.snapshot_id) {
      return Status::AlreadyExists("snapshot id " + member.snapshot_id +
                                   " is already used in set " + set_id_);
    }
    if (m.source.id == member.source.id) {
      return Status::AlreadyExists("volume " + member.volume_name + " is already in set " +
                                   set_id_ + " (as " + m.volume_name + ")");
    }
  }
  members_.push_back(std::move(member));
  return Status::Ok();
}

Status ArraySetPart::Prepare(const ArrayCall& policy) {
  std::lock_guard<std::mutex> lock(mu_);
  SNAPSET_RETURN_IF_ERROR(dialect_->Warm(policy).WithContext("array " + array_));
  Result<std::vector<ArrayGroup>> groups = dialect_->Groups(policy);
  if (!groups.ok()) return groups.status().WithContext("array " + array_);
  const std::string temporary = GroupName(set_id_);
  // Our own group from an earlier attempt of this set is ours to use.
  for (const ArrayGroup& g : *groups) {
    if (g.name == temporary && SameMembers(g, members_)) {
      group_ = g;
      group_is_temporary_ = true;
    }
  }
  // Else a group of our own, even when the user has one of exactly these
  // volumes: an abort deletes ours, so a group snapshot request still
  // running on the array then finds no group and makes nothing, whereas
  // the user's group would let it make its replicas after the abort.
  if (!group_) {
    std::vector<std::string> ids;
    for (const PartMember& m : members_) ids.push_back(m.source.id);
    Result<ArrayGroup> made = dialect_->CreateGroup(temporary, ids, policy);
    if (made.ok()) {
      group_ = *made;
      group_is_temporary_ = true;
    } else if (made.status().IsBadState()) {
      // An array that puts a volume in one group only: the user's group of
      // exactly these volumes, if there is one, is the only way. Another
      // set's temporary group is not (it goes when that set ends).
      for (const ArrayGroup& g : *groups) {
        const bool other_sets = g.name.substr(0, kNamePrefix.size()) == kNamePrefix;
        if (!other_sets && SameMembers(g, members_)) group_ = g;
      }
      if (!group_) return made.status().WithContext("array " + array_);
      group_is_temporary_ = false;
    } else {
      return made.status().WithContext("array " + array_);
    }
  }
  // The names, in the group's member order, built now: the window only
  // sends them.
  names_.clear();
  for (const std::string& id : group_->member_ids) {
    auto m = std::find_if(members_.begin(), members_.end(),
                          [&](const PartMember& p) { return p.source.id == id; });
    if (m == members_.end()) {
      return Status::Internal("array " + array_ + ": group " + group_->id + " has member " + id +
                              ", which is not in set " + set_id_);
    }
    names_.push_back(ReplicaName(m->snapshot_id));
  }
  return Status::Ok();
}

Status ArraySetPart::Warm(const ArrayCall& policy) {
  std::lock_guard<std::mutex> lock(mu_);
  return dialect_->Warm(policy).WithContext("array " + array_);
}

Status ArraySetPart::Fence(const ArrayCall& policy) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!fence_id_.empty()) return Status::Ok();
  if (!dialect_->offers_fences())
    return Status::VolumeNotSupported("array " + array_ + ": its driver has no write fences");
  if (policy.deadline == std::chrono::steady_clock::time_point::max())
    return Status::InvalidArgument("array " + array_ + ": a fence needs a deadline");
  FenceRequest request;
  for (const PartMember& m : members_) request.volume_ids.push_back(m.source.id);
  request.name = FenceName(set_id_);
  // The array lifts it by the window's end at the latest, also when this
  // process is gone.
  request.timeout = std::max(std::chrono::milliseconds(1),
                             std::chrono::ceil<std::chrono::milliseconds>(
                                 policy.deadline - std::chrono::steady_clock::now()));
  // And as a time, which a request reaching the array late cannot stretch.
  request.expires_realtime_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          (std::chrono::system_clock::now() + request.timeout).time_since_epoch())
          .count();
  fence_requested_ = true;
  Result<ArrayFence> fence = dialect_->StartFence(request, policy);
  if (fence.ok()) {
    fence_id_ = fence->id;
    return Status::Ok();
  }
  // Our own fence, made by a request whose reply was lost: it is up, and
  // it is the set's (its name says so).
  if (fence.status().Is(Code::kAlreadyExists)) {
    if (std::optional<std::string> id = FenceUpByName(policy)) {
      fence_id_ = *id;
      return Status::Ok();
    }
  }
  return fence.status().WithContext("array " + array_);
}

std::optional<std::string> ArraySetPart::FenceUpByName(const ArrayCall& policy) {
  if (!dialect_->offers_fences()) return std::nullopt;
  Result<std::vector<ArrayFence>> fences = dialect_->Fences(policy);
  if (!fences.ok()) return std::nullopt;
  for (const ArrayFence& f : *fences) {
    if (f.name == FenceName(set_id_)) return f.id;
  }
  return std::nullopt;
}

Status ArraySetPart::LiftFence(const ArrayCall& policy) {
  std::lock_guard<std::mutex> lock(mu_);
  // A fence request whose reply was lost may have made the fence: find it
  // by name.
  if (fence_id_.empty() && fence_requested_) {
    if (std::optional<std::string> id = FenceUpByName(policy)) fence_id_ = *id;
  }
  if (fence_id_.empty()) return Status::Ok();
  SNAPSET_RETURN_IF_ERROR(dialect_->LiftFence(fence_id_, policy).WithContext("array " + array_));
  fence_id_.clear();
  return Status::Ok();
}

bool ArraySetPart::HasVolume(std::string_view volume_name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::any_of(members_.begin(), members_.end(),
                     [&](const PartMember& m) { return m.volume_name == volume_name; });
}

Status ArraySetPart::Commit(const ArrayCall& policy) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!group_) return Status::BadState("array " + array_ + ": commit before prepare");
  // Under the set's fence when it has one: a two-phase array commits the
  // snapshot it fenced.
  Result<std::vector<ArrayVolume>> made =
      dialect_->SnapshotGroup(SnapshotRequest{*group_, names_, fence_id_}, policy);
  if (!made.ok()) return made.status().WithContext("array " + array_);
  replicas_ = std::move(*made);
  return Status::Ok();
}

Status ArraySetPart::Finish(const ArrayCall& policy) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!group_ || !group_is_temporary_) return Status::Ok();
  SNAPSET_RETURN_IF_ERROR(dialect_->DeleteGroup(group_->id, policy)
                              .WithContext("array " + array_ + ": removing group " + group_->name));
  group_.reset();
  return Status::Ok();
}

Status ArraySetPart::Abort(const ArrayCall& policy) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string where = "array " + array_ + ": undoing set " + set_id_;
  // A fence still up holds the set's writes: lift it first, also one whose
  // reply was lost (found by name). It lifts itself at its timeout anyway,
  // so a failure here does not stop the undoing.
  if (fence_id_.empty() && fence_requested_) {
    if (std::optional<std::string> id = FenceUpByName(policy)) fence_id_ = *id;
  }
  if (!fence_id_.empty() && dialect_->LiftFence(fence_id_, policy).ok()) fence_id_.clear();
  // A group snapshot still running as a task at the deadline would make its
  // replicas after the inventory below: wait for it first.
  SNAPSET_RETURN_IF_ERROR(dialect_->Settle(policy).WithContext(where));
  if (group_ && group_is_temporary_) {
    SNAPSET_RETURN_IF_ERROR(dialect_->DeleteGroup(group_->id, policy)
                                .WithContext(where + ": removing group " + group_->name));
    group_.reset();
  } else if (!group_) {
    // Prepare may have created the group and lost the reply.
    SNAPSET_RETURN_IF_ERROR(AbortUnknownSet(*dialect_, set_id_, policy).WithContext(where));
  }
  std::set<std::string> ours;
  for (const PartMember& m : members_) ours.insert(ReplicaName(m.snapshot_id));
  Result<std::vector<ArrayVolume>> inventory = dialect_->Inventory(policy);
  if (!inventory.ok()) return inventory.status().WithContext(where);
  for (const ArrayVolume& v : *inventory) {
    if (!v.is_snapshot() || ours.count(v.name) == 0) continue;
    SNAPSET_RETURN_IF_ERROR(
        dialect_->DeleteSnapshot(v.id, policy).WithContext(where + ": deleting replica " + v.name));
  }
  // And those the commit answered with, by id, in case the array named them
  // its own way (deletes are idempotent).
  for (const ArrayVolume& r : replicas_) {
    SNAPSET_RETURN_IF_ERROR(
        dialect_->DeleteSnapshot(r.id, policy).WithContext(where + ": deleting replica " + r.name));
  }
  replicas_.clear();
  return Status::Ok();
}

std::vector<PartMember> ArraySetPart::members() const {
  std::lock_guard<std::mutex> lock(mu_);
  return members_;
}

std::optional<ArrayVolume> ArraySetPart::ReplicaOf(std::string_view snapshot_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string name = ReplicaName(snapshot_id);
  for (const ArrayVolume& r : replicas_) {
    if (r.name == name) return r;
  }
  // An array that named the replica its own way: by its source.
  for (const PartMember& m : members_) {
    if (m.snapshot_id != snapshot_id) continue;
    for (const ArrayVolume& r : replicas_) {
      if (r.source_id == m.source.id) return r;
    }
  }
  return std::nullopt;
}

int ArraySetPart::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return int(dialect_->counters().requests);
}

Status RunOnEveryPart(const std::vector<std::shared_ptr<ArraySetPart>>& parts,
                      const std::function<Status(ArraySetPart&)>& fn) {
  if (parts.size() == 1) return fn(*parts[0]);
  std::vector<Status> results(parts.size());
  std::vector<std::thread> threads;
  threads.reserve(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    threads.emplace_back([&, i] {
      try {
        results[i] = fn(*parts[i]);
      } catch (const std::exception& e) {
        results[i] = Status::Internal("array " + parts[i]->array() + ": " + e.what());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  Status first;
  for (const Status& s : results) {
    if (s.ok()) continue;
    first = first.ok() ? s : Status(first.code(), first.message() + "; also " + s.message());
  }
  return first;
}

Status AbortUnknownSet(ArrayDriver& dialect, std::string_view set_id, const ArrayCall& policy) {
  // A fence a dead process left up lifts itself at its timeout; lifting it
  // now gives the writes back sooner.
  if (dialect.offers_fences()) {
    Result<std::vector<ArrayFence>> fences = dialect.Fences(policy);
    if (!fences.ok()) return fences.status();
    for (const ArrayFence& f : *fences) {
      if (f.name == FenceName(set_id))
        SNAPSET_RETURN_IF_ERROR(
            dialect.LiftFence(f.id, policy).WithContext("lifting fence " + f.name));
    }
  }
  Result<std::vector<ArrayGroup>> groups = dialect.Groups(policy);
  if (!groups.ok()) return groups.status();
  const std::string name = GroupName(set_id);
  for (const ArrayGroup& g : *groups) {
    if (g.name == name)
      SNAPSET_RETURN_IF_ERROR(
          dialect.DeleteGroup(g.id, policy).WithContext("removing group " + g.name));
  }
  return Status::Ok();
}

}  // namespace snapset::iscsi
