// Attaching an exposed iSCSI snapshot (iscsi://host:port/target-iqn/lun) to
// this host's kernel with Open-iSCSI (iscsiadm + iscsid + the iscsi_tcp
// module), so that it becomes a block device that can be mounted, and
// detaching it again.
//
// Many hosts (containers, minimal kernels) have no iscsi_tcp. There the URL
// still works from user space through libiscsi, so nothing here is a reason
// to give up an exposure: every entry point says clearly that the kernel is
// the missing piece.
//
// Every program run here is bounded by the caller's timeout. A CHAP password
// goes to iscsiadm's argv only (iscsiadm has no other way to take it) and
// never into a message: errors show it as "***".
//
// Thread-safety: the functions hold no state; iscsiadm serialises node-record
// changes itself. Concurrent attach and detach of the same target race as
// they would from two shells.
#ifndef SNAPSET_TOOLS_ISCSI_ATTACH_HPP
#define SNAPSET_TOOLS_ISCSI_ATTACH_HPP

#include <chrono>
#include <cstdint>
#include <optional>
#include <snapset/status.hpp>
#include <string>
#include <string_view>

namespace snapset::cli {

// The parts of iscsi://host[:port]/target-iqn/lun that Open-iSCSI needs.
struct IscsiUrl {
  std::string host;  // lower case; an IPv6 literal keeps its brackets
  uint16_t port = 3260;
  std::string iqn;
  uint32_t lun = 0;

  // "host:port", as iscsiadm -p and udev's by-path names spell it.
  std::string Portal() const;
};

// True when `s` names an iSCSI exposure (starts with "iscsi://").
bool IsIscsiUrl(std::string_view s);

// Errors: InvalidArgument naming the URL (never credentials in it) and what is
// wrong: no host, a port outside 1..65535, no target name or one that is not
// an iqn./eui./naa. name, a LUN outside 0..16383, or user%password@ in the
// URL (credentials belong in a --chap-file, where they are not visible to
// every process on the host).
Result<IscsiUrl> ParseIscsiUrl(std::string_view url);

struct ChapCredentials {
  std::string username;
  std::string password;
};

// Reads a CHAP file: a JSON object {"CHAPUsername": "...", "CHAPPassword": "..."}
// (the names of the Swordfish/Redfish properties). Because it holds a
// password, the file must be a regular file owned by the caller (or root)
// that neither group nor others can read or write.
// Errors: NotFound if it does not exist; InvalidArgument naming the file if
// its mode lets group or others in (the message gives the `chmod 600` that
// fixes it), if another user owns it, or if it is not such a JSON object. No
// message quotes the file's content.
Result<ChapCredentials> LoadChapFile(const std::string& path);

// Where this host's Open-iSCSI lives. The defaults are the real system; tests
// point them at a temporary folder and a stand-in iscsiadm.
struct OpenIscsiHost {
  std::string module_dir = "/sys/module/iscsi_tcp";
  std::string modprobe = "modprobe";
  std::string iscsiadm = "iscsiadm";
  std::string by_path_dir = "/dev/disk/by-path";
  std::string by_id_dir = "/dev/disk/by-id";
  // Where the kernel says which LUN a disk is (dev/block/MAJ:MIN, block/sdX).
  std::string sysfs_root = "/sys";
  // How often the by-path link is looked for after login.
  std::chrono::milliseconds poll_interval{100};
  // How long udev gets to name the disk by its identity (wwn-0x<NAA>) once
  // the kernel has shown it to be the snapshot.
  std::chrono::milliseconds wwn_link_grace{10000};
};

// OK when this host can log in to iSCSI targets in the kernel: the iscsi_tcp
// module is loaded (or `modprobe -q iscsi_tcp` loads it) and iscsiadm is on
// PATH. Errors: Unavailable, naming iscsi_tcp when the kernel lacks it, or
// the package to install (open-iscsi) when iscsiadm is missing.
Status KernelIscsiAvailable(const OpenIscsiHost& host = {});

// Logs this host in to the target of `url` (SendTargets discovery on its
// portal first, then CHAP if `chap` is given) and waits for the LUN's block
// device. With the snapshot's NAA (`naa`, hex, "" when unknown) it checks
// that the disk the URL's LUN became is the snapshot, by the identity the
// kernel read from it (sysfs, VPD page 0x83), and returns udev's
// /dev/disk/by-id/wwn-0x<naa> for it once that link names the same disk (the
// by-path name if udev never makes it); without, it returns
// /dev/disk/by-path/ip-HOST:PORT-iscsi-IQN-lun-LUN.
// An existing session to the target is reused. If the device does not
// appear, a session this call created is logged out again and its node
// record deleted, so a failure leaves nothing attached.
// Errors: InvalidArgument for a malformed URL; Unavailable when the kernel
// cannot do iSCSI (see KernelIscsiAvailable; the message adds that the URL
// stays readable with libiscsi), when discovery or login fails (the message
// carries iscsiadm's words, with the password redacted), or on timeout;
// BadState when the LUN is another one than the snapshot (another NAA, or
// none), after logging out again.
Result<std::string> AttachIscsi(std::string_view url, const std::optional<ChapCredentials>& chap,
                                std::string_view naa, std::chrono::milliseconds timeout,
                                const OpenIscsiHost& host = {});

// Undoes AttachIscsi: logs out of the target if this host has a session to
// it and deletes its node record. When other LUNs of the same target are
// still attached, only this LUN's SCSI device is removed and the session is
// kept, so detaching one snapshot never pulls another from under its user.
// OK when nothing was attached, including on a host without iscsi_tcp or
// iscsiadm (nothing can be attached there).
// Errors: InvalidArgument for a malformed URL; Unavailable when iscsiadm fails
// or times out.
Status DetachIscsi(std::string_view url, std::chrono::milliseconds timeout,
                   const OpenIscsiHost& host = {});

// The by-path link AttachIscsi waits for and returns; it exists only while
// the LUN is attached. A host name in the URL is resolved to its address,
// as udev names the link after the address.
// Errors: InvalidArgument for a malformed URL, Unavailable if the host name
// does not resolve.
Result<std::string> AttachedDevicePath(std::string_view url, const OpenIscsiHost& host = {});

}  // namespace snapset::cli

#endif  // SNAPSET_TOOLS_ISCSI_ATTACH_HPP
