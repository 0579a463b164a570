// SPDX-License-Identifier: Apache-2.0
#include "core/set_revert.hpp"

#include <algorithm>
#include <memory>
#include <set>

#include "core/mount_table.hpp"
#include "core/provider_registry.hpp"
#include "core/timeline.hpp"
#include "core/volume_locks.hpp"
#include "core/volume_resolver.hpp"
#include "core/writer_set.hpp"

namespace snapset {

namespace {

using Clock = std::chrono::steady_clock;

// The filesystem mounted on the snapshot's volume now, if any: the volume
// itself when it names a mount point, what is stacked on it (a filesystem
// on a loop device over a cow volume), or any mount of the same device
// (DeviceKey recorded at the cut): the LUN mounted somewhere else.
std::string MountedOn(const SnapshotRecord& s, const MountTable& mounts) {
  for (const auto& m : mounts.entries())
    if (m.mount_point == s.volume) return m.mount_point + " (" + m.source + ")";
  ResolverOptions o;
  o.mounts = &mounts;
  if (s.volume.rfind("cow:", 0) == 0 || s.volume.rfind("/dev/", 0) == 0) {
    auto v = ResolveVolume(s.volume, o);
    if (v.ok() && !v->upper.empty()) return v->upper.front();
  }
  if (s.volume_device.empty()) return "";
  // By each mount's device node, never its mount point: /dev and sysfs
  // cannot hang, a filesystem over a stalled LUN or daemon can.
  std::set<std::string> seen;  // a device mounted twice (bind mounts) is resolved once
  for (const auto& m : mounts.entries()) {
    if (m.source.rfind("/dev/", 0) != 0 || !seen.insert(m.source).second) continue;
    auto v = ResolveVolume(m.source, o);
    if (v.ok() && DeviceKey(*v) == s.volume_device)
      return m.mount_point + " (" + m.source + ", " + s.volume_device + ")";
  }
  return "";
}

}  // namespace

RevertResult RevertToSet(const CreationEnv& env, const SetRecord& set,
                         const std::vector<std::string>& only, std::chrono::milliseconds timeout) {
  RevertResult result;
  result.set_id = set.set_id;
  auto timeline = std::make_shared<Timeline>();
  auto finish = [&](Status s) {
    result.status = std::move(s);
    result.timeline = timeline->data();
    return result;
  };
  if (set.state != SetState::kComplete)
    return finish(Status::BadState("set " + set.set_id + " is " + SetStateName(set.state) +
                                   "; only a complete set can be reverted to"));
  std::vector<const SnapshotRecord*> targets;
  for (const auto& s : set.snapshots)
    if (only.empty() || std::find(only.begin(), only.end(), s.snapshot_id) != only.end())
      targets.push_back(&s);
  if (targets.empty())
    return finish(Status::NotFound("nothing of set " + set.set_id + " to revert"));
  std::vector<std::string> volumes;
  for (const auto* s : targets) {
    volumes.push_back(s->volume);
    result.not_reverted.push_back(s->snapshot_id);
  }

  // Everything that can refuse, before any volume changes.
  timeline->Begin("set", "check");
  auto mounts = MountTable::Read();
  if (!mounts.ok()) return finish(mounts.status());
  std::vector<ProviderInstance*> providers;
  for (const auto* s : targets) {
    ProviderInstance* p = env.registry->FindById(s->provider_id);
    if (!p)
      return finish(Status::Config("snapshot " + s->snapshot_id + " is on provider " +
                                   s->provider_name + ", which is no longer registered"));
    const std::string mounted = MountedOn(*s, *mounts);
    if (!mounted.empty())
      return finish(Status::BadState(
          "volume " + s->volume + " carries the mounted filesystem " + mounted +
          "; a revert replaces the blocks under it: stop what uses it, unmount it (and detach "
          "a loop device over it), then revert again"));
    // All or none: a provider that cannot revert one of them refuses the
    // whole before the first volume changes.
    if (!p->offers_revert())
      return finish(Status::NotImplemented(
          "provider " + p->name() + " cannot revert (it offers no revert_to_snapshot), so " +
          s->volume + " cannot go back to snapshot " + s->snapshot_id +
          "; nothing was reverted: revert the other volumes with --snapshot, and restore this "
          "one from its snapshot another way (expose it and copy)"));
    CallOptions o;
    o.deadline = Clock::now() + timeout;
    auto props = p->GetSnapshotProperties(s->snapshot_id, o);
    if (!props.ok())
      return finish(props.status().WithContext("snapshot " + s->snapshot_id + " of " + s->volume +
                                               " on provider " + p->name()));
    if (props->attributes & SNAPSET_ATTR_NO_REVERT)
      return finish(Status::NotImplemented(
          "provider " + p->name() + " says snapshot " + s->snapshot_id + " of " + s->volume +
          " cannot be reverted to (for an array: its driver has no revert); nothing was "
          "reverted: revert the other volumes with --snapshot, and restore this one from its "
          "snapshot another way (expose it and copy)"));
    providers.push_back(p);
  }
  auto locks = VolumeLocks::Acquire(env.state_dir, volumes, set.set_id);
  if (!locks.ok()) return finish(locks.status());
  timeline->End("set", "check", Status::Ok());

  WriterSetOptions wo;
  wo.config_dir = env.config_dir;
  wo.run_dir = env.run_dir;
  wo.event_timeout = timeout;
  timeline->Begin("set", "writers pre-restore");
  Status pre = SendRestoreEvent(wo, writer::Event::kPreRestore, set.set_id, volumes, set.writers);
  timeline->End("set", "writers pre-restore", pre);
  if (!pre.ok()) return finish(Status(pre.code(), "nothing was reverted: " + pre.message()));

  for (size_t i = 0; i < targets.size(); ++i) {
    const std::string lane = "provider:" + providers[i]->name();
    timeline->Begin(lane, "revert_to_snapshot");
    CallOptions o;
    o.deadline = Clock::now() + timeout;
    Status s = providers[i]->RevertToSnapshot(targets[i]->snapshot_id, o);
    timeline->End(lane, "revert_to_snapshot", s);
    if (!s.ok()) {
      std::string done;
      for (const auto& r : result.reverted) done += (done.empty() ? "" : ", ") + r;
      const std::string what =
          result.reverted.empty()
              ? "nothing was reverted"
              : "already reverted (cannot be undone): " + done + "; revert again once fixed";
      (void)SendRestoreEvent(wo, writer::Event::kPostRestore, set.set_id, volumes, set.writers);
      return finish(s.WithContext("reverting " + targets[i]->volume + " to snapshot " +
                                  targets[i]->snapshot_id + " on provider " + providers[i]->name() +
                                  " (" + what + ")"));
    }
    result.reverted.push_back(targets[i]->snapshot_id);
    result.not_reverted.erase(
        std::find(result.not_reverted.begin(), result.not_reverted.end(), targets[i]->snapshot_id));
  }
  timeline->Begin("set", "writers post-restore");
  result.post_restore =
      SendRestoreEvent(wo, writer::Event::kPostRestore, set.set_id, volumes, set.writers);
  timeline->End("set", "writers post-restore", result.post_restore);
  return finish(Status::Ok());
}

}  // namespace snapset
