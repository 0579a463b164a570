// SPDX-License-Identifier: Apache-2.0
#include "core/set_revert.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>

#include "core/mount_table.hpp"
#include "core/provider_registry.hpp"
#include "core/remount.hpp"
#include "core/timeline.hpp"
#include "core/volume_locks.hpp"
#include "core/volume_resolver.hpp"
#include "core/writer_set.hpp"

namespace snapset {

namespace {

using Clock = std::chrono::steady_clock;

// Every filesystem mounted on the snapshot's volume now: the volume itself
// when it names a mount point, what is stacked on it (a filesystem on a
// loop device over a cow volume), and any mount of the same device
// (DeviceKey recorded at the cut): the LUN mounted somewhere else. Mounts
// are resolved by their device nodes, never their mount points: /dev and
// sysfs cannot hang, a filesystem over a stalled LUN or daemon can.
class MountedVolumes {
 public:
  explicit MountedVolumes(const MountTable& mounts) : mounts_(mounts) { options_.mounts = &mounts; }

  std::vector<VolumeMount> Of(const SnapshotRecord& s) {
    std::vector<std::string> stacked;
    if (s.volume.rfind("cow:", 0) == 0 || s.volume.rfind("/dev/", 0) == 0) {
      auto v = ResolveVolume(s.volume, options_);
      if (v.ok()) stacked = v->upper;
    }
    std::vector<VolumeMount> found;
    for (const auto& m : mounts_.entries()) {
      const bool named = m.mount_point == s.volume ||
                         std::find(stacked.begin(), stacked.end(), m.mount_point) != stacked.end();
      const Volume* device = Device(m.source);
      const bool same = device && !s.volume_device.empty() && DeviceKey(*device) == s.volume_device;
      if (named || same) found.push_back({m, device && !device->lower.empty()});
    }
    return found;
  }

 private:
  // What the block device a mount is from is, or null (not a /dev
  // source, or gone); resolved once for all snapshots and bind mounts.
  const Volume* Device(const std::string& source) {
    if (source.rfind("/dev/", 0) != 0) return nullptr;
    auto [it, added] = devices_.try_emplace(source);
    if (added) {
      auto v = ResolveVolume(source, options_);
      if (v.ok()) it->second = std::move(*v);
    }
    return it->second ? &*it->second : nullptr;
  }

  const MountTable& mounts_;
  ResolverOptions options_;
  std::map<std::string, std::optional<Volume>> devices_;
};

}  // namespace

RevertResult RevertToSet(const CreationEnv& env, const SetRecord& set,
                         const std::vector<std::string>& only, const RevertOptions& options,
                         std::chrono::milliseconds timeout) {
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
  std::vector<VolumeMount> take_down;  // --remount
  MountedVolumes mounted(*mounts);
  for (const auto* s : targets) {
    ProviderInstance* p = env.registry->FindById(s->provider_id);
    if (!p)
      return finish(Status::Config("snapshot " + s->snapshot_id + " is on provider " +
                                   s->provider_name + ", which is no longer registered"));
    for (const VolumeMount& on : mounted.Of(*s)) {
      const MountEntry& m = on.mount;
      if (!options.remount)
        return finish(Status::BadState(
            "volume " + s->volume + " carries the mounted filesystem " + m.mount_point + " (" +
            m.source + (s->volume_device.empty() ? "" : ", " + s->volume_device) +
            "); a revert replaces the blocks under it: stop what uses it, unmount it (and "
            "detach a loop device over it), then revert again, or pass --remount to let "
            "snapset unmount it and mount it again around the revert"));
      if (Status ok = CheckRemountable(m, *mounts); !ok.ok())
        return finish(ok.WithContext("volume " + s->volume));
      const bool listed = std::any_of(take_down.begin(), take_down.end(), [&](const auto& t) {
        return t.mount.mount_point == m.mount_point;
      });
      if (!listed) take_down.push_back(on);
    }
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
  // In mount order: TakeDown unmounts the last mounted first.
  auto position = [&](const VolumeMount& v) {
    const auto& all = mounts->entries();
    return std::find_if(all.begin(), all.end(),
                        [&](const MountEntry& e) { return e.mount_point == v.mount.mount_point; }) -
           all.begin();
  };
  std::stable_sort(take_down.begin(), take_down.end(),
                   [&](const auto& a, const auto& b) { return position(a) < position(b); });
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
  if (!pre.ok()) {
    // The writers that accepted may have stopped their applications: they
    // hear that nothing changed, and resume.
    (void)SendRestoreEvent(wo, writer::Event::kPostRestore, set.set_id, volumes, set.writers,
                           "not-reverted");
    return finish(Status(pre.code(), "nothing was reverted: " + pre.message()));
  }

  // --remount: the filesystems go down now that the writers let go of them.
  std::vector<TakenDown> down;
  if (!take_down.empty()) {
    timeline->Begin("set", "unmount");
    auto taken = TakeDown(take_down);
    timeline->End("set", "unmount", taken.ok() ? Status::Ok() : taken.status());
    if (!taken.ok()) {
      (void)SendRestoreEvent(wo, writer::Event::kPostRestore, set.set_id, volumes, set.writers,
                             "not-reverted");
      return finish(
          Status(taken.status().code(), "nothing was reverted: " + taken.status().message()));
    }
    down = std::move(*taken);
  }
  // Mounted again before the writers hear post-restore, whatever happened.
  auto put_back = [&]() -> Status {
    if (down.empty()) return Status::Ok();
    timeline->Begin("set", "mount again");
    Status s = PutBack(down);
    timeline->End("set", "mount again", s);
    return s;
  };

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
      const Status back = put_back();
      (void)SendRestoreEvent(wo, writer::Event::kPostRestore, set.set_id, volumes, set.writers,
                             result.reverted.empty() ? "not-reverted" : "partly-reverted");
      return finish(s.WithContext("reverting " + targets[i]->volume + " to snapshot " +
                                  targets[i]->snapshot_id + " on provider " + providers[i]->name() +
                                  " (" + what + ")" +
                                  (back.ok() ? "" : "; and " + back.message())));
    }
    result.reverted.push_back(targets[i]->snapshot_id);
    result.not_reverted.erase(
        std::find(result.not_reverted.begin(), result.not_reverted.end(), targets[i]->snapshot_id));
  }
  const Status back = put_back();
  timeline->Begin("set", "writers post-restore");
  result.post_restore = SendRestoreEvent(wo, writer::Event::kPostRestore, set.set_id, volumes,
                                         set.writers, "reverted");
  timeline->End("set", "writers post-restore", result.post_restore);
  if (!back.ok())
    return finish(Status(back.code(), "every volume was reverted, but " + back.message()));
  return finish(Status::Ok());
}

}  // namespace snapset
