// What snapset knows of a volume once a user-given name has been resolved:
// its kind, size, mount and SCSI identity (DESIGN §6). Plain values; the
// resolver (volume_resolver.hpp) builds them, providers receive them through
// the C ABI as snapset_volume (volume_abi.hpp).
#ifndef SNAPSET_CORE_VOLUME_HPP
#define SNAPSET_CORE_VOLUME_HPP

#include <snapset/iscsi_lun.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace snapset {

enum class VolumeKind : uint32_t {
  kFilesystem = 1,  // SNAPSET_VOLUME_FILESYSTEM
  kBlock = 2,       // SNAPSET_VOLUME_BLOCK
  kIscsi = 3,       // SNAPSET_VOLUME_ISCSI
  kCow = 4,         // SNAPSET_VOLUME_COW
};

const char* VolumeKindName(VolumeKind kind);

// One logical-unit designator of INQUIRY VPD page 0x83 (type, code set,
// association, value): the SDK's, so that the core and the iSCSI LUN toolkit
// rank NAAs with one function (iscsi::PreferredNaa).
using Designator = iscsi::LunDesignator;

struct ScsiIdentity {
  // Logical-unit designators only (association 0), in wire order.
  std::vector<Designator> designators;
  std::string serial;  // VPD 0x80, its padding trimmed (iscsi::TrimSerial)

  bool empty() const { return designators.empty() && serial.empty(); }
  // Lower-case hex of the preferred NAA designator, or "" if there is none:
  // iscsi::PreferredNaa. Registered extended (NAA 6) beats registered (5)
  // beats IEEE extended (2) beats locally assigned (3); among equals the
  // first in wire order. Some targets (tgt) also send an NAA-3 built from
  // target and LUN numbers that repeats across instances, so "the first NAA"
  // would be wrong.
  std::string Naa() const { return iscsi::PreferredNaa(designators); }
};

struct Volume {
  VolumeKind kind = VolumeKind::kBlock;
  std::string name;         // canonical: mount point, /dev path, URL, cow:NAME
  std::string device_path;  // /dev/..., iscsi://..., cow:NAME
  uint64_t size_bytes = 0;
  uint32_t block_size = 0;
  std::string mount_point;  // empty unless mounted
  std::string filesystem;   // empty unless mounted
  ScsiIdentity identity;
  // The stack around a software-cow volume (core/cow_stack.hpp):
  // a filesystem on a loop device over a cowd origin names that volume
  // ("cow:NAME") in `lower`; a cow volume lists the mount points of the
  // filesystems on it in `upper`. Both are held in a commit window.
  std::string lower;
  std::vector<std::string> upper;
  // A loop device's backing file (a cow volume's served origin, an image).
  std::string backing_file;
};

// What a volume is, whatever it is mounted on or named by: "naa.<hex>" for
// a SCSI or iSCSI disk with an NAA (the same LUN through any path), the
// file under a loop device ("file:<path>": a cow volume's origin in its
// daemon's mount, whichever loop device is attached to it now), else its
// device ("/dev/vdb", "cow:NAME"). Two volumes with one key are one volume.
inline std::string DeviceKey(const Volume& v) {
  if (const std::string naa = v.identity.Naa(); !naa.empty()) return "naa." + naa;
  if (!v.backing_file.empty()) return "file:" + v.backing_file;
  return v.device_path;
}

}  // namespace snapset

#endif  // SNAPSET_CORE_VOLUME_HPP
