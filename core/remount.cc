// SPDX-License-Identifier: Apache-2.0
#include "core/remount.hpp"

#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/run_command.hpp"

namespace snapset {

namespace {

constexpr std::chrono::seconds kCommandTimeout(60);

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string ReadSysfs(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return Trimmed(text.str());
}

// "loop3" for /dev/loop3; "" for any other device.
std::string LoopName(const std::string& device) {
  const std::string prefix = "/dev/loop";
  if (device.rfind(prefix, 0) != 0 || device.size() == prefix.size()) return "";
  return device.substr(5);
}

// mount(8)'s -o for mounting `m` again: its per-mount options, then the
// filesystem's own, without repeating rw/ro.
std::string MountOptions(const MountEntry& m) {
  std::string out = m.options;
  std::istringstream super(m.super_options);
  for (std::string o; std::getline(super, o, ',');)
    if (!o.empty() && o != "rw" && o != "ro") out += (out.empty() ? "" : ",") + o;
  return out;
}

std::string ByHand(const TakenDown& d, const std::string& device) {
  std::string s;
  if (!d.loop_backing.empty())
    s = "losetup --find --show" + std::string(d.loop_direct_io ? " --direct-io=on " : " ") +
        d.loop_backing + "; ";
  return s + "mount -t " + d.mount.fstype + " -o " + MountOptions(d.mount) + " " + device + " " +
         d.mount.mount_point;
}

// Unmounts, never lazily. EBUSY is retried for about a second: a process
// that just exited (a database server stopped at pre-restore, udev probing
// the device) may still hold it for a moment.
Status Unmount(const std::string& mount_point) {
  for (int i = 0;; ++i) {
    if (::umount2(mount_point.c_str(), UMOUNT_NOFOLLOW) == 0) return Status::Ok();
    const int err = errno;
    if (err != EBUSY || i == 10)
      return Status::BadState("cannot unmount " + mount_point + ": " + std::strerror(err) +
                              (err == EBUSY
                                   ? " (a process still uses it: fuser -vm " + mount_point +
                                         " shows which; stop it and revert again)"
                                   : ""));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Result<std::string> AttachLoop(const TakenDown& d) {
  std::vector<std::string> argv = {"losetup", "--find", "--show"};
  if (d.loop_direct_io) argv.push_back("--direct-io=on");
  argv.push_back(d.loop_backing);
  CommandResult r = RunCommand(argv, kCommandTimeout);
  if (r.exit_code != 0)
    return Status::Internal("losetup " + d.loop_backing + " failed: " + Trimmed(r.output));
  return Trimmed(r.output);
}

}  // namespace

Status CheckRemountable(const MountEntry& mount, const MountTable& mounts) {
  if (mount.root != "/")
    return Status::BadState(mount.mount_point + " mounts the subtree " + mount.root + " of " +
                            mount.source +
                            ", which --remount cannot put back: unmount it by "
                            "hand, revert, and mount it again");
  for (const auto& other : mounts.entries())
    if (other.device == mount.device && other.mount_point != mount.mount_point)
      return Status::BadState(mount.source + " is mounted on both " + mount.mount_point + " and " +
                              other.mount_point +
                              ", which --remount cannot put back: unmount them by hand, "
                              "revert, and mount them again");
  return Status::Ok();
}

Result<std::vector<TakenDown>> TakeDown(const std::vector<VolumeMount>& mounts,
                                        const std::string& sysfs_root) {
  std::vector<TakenDown> down;
  auto undo = [&](Status why) -> Status {
    Status back = PutBack(down);
    return back.ok() ? why
                     : Status(why.code(), why.message() +
                                              "; and putting back what was "
                                              "unmounted failed: " +
                                              back.message());
  };
  for (size_t i = mounts.size(); i-- > 0;) {
    TakenDown d;
    d.mount = mounts[i].mount;
    const std::string loop = mounts[i].over_cow ? LoopName(d.mount.source) : "";
    if (!loop.empty()) {
      d.loop_backing = ReadSysfs(sysfs_root + "/block/" + loop + "/loop/backing_file");
      d.loop_direct_io = ReadSysfs(sysfs_root + "/block/" + loop + "/loop/dio") == "1";
      if (d.loop_backing.empty())
        return undo(Status::Internal("cannot read the backing file of " + d.mount.source));
    }
    if (Status s = Unmount(d.mount.mount_point); !s.ok()) return undo(s);
    if (!loop.empty()) {
      CommandResult r = RunCommand({"losetup", "-d", d.mount.source}, kCommandTimeout);
      if (r.exit_code != 0) {
        d.loop_backing.clear();  // still attached: mount it again as it was
        down.push_back(d);
        return undo(Status::BadState("cannot detach " + d.mount.source + " from " +
                                     d.mount.mount_point + ": " + Trimmed(r.output)));
      }
    }
    down.push_back(std::move(d));
  }
  return down;
}

Status PutBack(const std::vector<TakenDown>& down) {
  std::string failed;
  for (auto it = down.rbegin(); it != down.rend(); ++it) {
    const TakenDown& d = *it;
    std::string device = d.mount.source;
    if (!d.loop_backing.empty()) {
      Result<std::string> attached = AttachLoop(d);
      if (!attached.ok()) {
        failed += (failed.empty() ? "" : "; ") + attached.status().message() +
                  " (by hand: " + ByHand(d, "DEVICE") + ")";
        continue;
      }
      device = *attached;
    }
    CommandResult r = RunCommand(
        {"mount", "-t", d.mount.fstype, "-o", MountOptions(d.mount), device, d.mount.mount_point},
        kCommandTimeout);
    if (r.exit_code != 0)
      failed += (failed.empty() ? "" : "; ") + std::string("mounting ") + device + " on " +
                d.mount.mount_point + " failed: " + Trimmed(r.output) +
                " (by hand: " + ByHand(d, device) + ")";
  }
  if (!failed.empty()) return Status::Internal("not mounted again: " + failed);
  return Status::Ok();
}

}  // namespace snapset
