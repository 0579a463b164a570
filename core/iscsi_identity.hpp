// Resolves an iscsi://host:port/target-iqn/lun URL to a Volume through the
// SDK's iSCSI LUN toolkit (include/snapset/iscsi_lun.hpp, over libiscsi), in
// user space (no kernel iSCSI needed): INQUIRY VPD 0x83 (logical-unit
// designators, NAA preferred) and 0x80 (serial, trimmed), and READ
// CAPACITY(16) for size and block size. The iSCSI provider reads exposed LUNs
// with the same toolkit, so both name a LUN by the same NAA.
//
// Thread-safety: each call owns its own libiscsi context, so concurrent calls
// are safe (libiscsi contexts are not shared between threads).
#ifndef SNAPSET_CORE_ISCSI_IDENTITY_HPP
#define SNAPSET_CORE_ISCSI_IDENTITY_HPP

#include <snapset/status.hpp>

#include <chrono>
#include <string>
#include <string_view>

#include "core/volume.hpp"

namespace snapset {

// The name snapset logs in with when there is no other.
inline constexpr char kDefaultInitiatorIqn[] = "iqn.2026-11.io.snapset:host";

// The initiator name this host reads iSCSI identities with: the environment's
// SNAPSET_INITIATOR_IQN (the CLI's --initiator-iqn sets it), else the host's
// own Open-iSCSI name (InitiatorName= in /etc/iscsi/initiatorname.iscsi), to
// which arrays already map the host's LUNs, else kDefaultInitiatorIqn.
std::string HostInitiatorIqn();

struct IscsiOptions {
  // Initiator name presented at login.
  std::string initiator_iqn = HostInitiatorIqn();
  // Bounds the whole resolution (connect, login and every command).
  std::chrono::milliseconds timeout{10000};
};

// Returns a Volume with kind kIscsi, name and device_path the URL as given
// (normalised), size_bytes, block_size and identity filled. The URL may carry
// CHAP credentials (user%password@host); they are used, never shown.
// Errors: InvalidArgument for a malformed URL (the message shows the expected
// form iscsi://host[:port]/target-iqn/lun), Unavailable when the portal cannot
// be reached or login fails (naming the initiator and how to change it),
// NotFound when the LUN does not exist, and Unavailable on timeout ("timed
// out after N ms ..."). Messages name the URL, never credentials.
Result<Volume> ResolveIscsiVolume(std::string_view url,
                                  const IscsiOptions& options = {});

}  // namespace snapset

#endif  // SNAPSET_CORE_ISCSI_IDENTITY_HPP
