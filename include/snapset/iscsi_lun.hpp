// SPDX-License-Identifier: Apache-2.0
// snapset's iSCSI LUN toolkit (CMake component `iscsi`, target snapset::iscsi,
// pkg-config snapset-iscsi): a static, position-independent library over
// libiscsi that reads a LUN's identity on the wire, in user space (no kernel
// initiator, no root). The core resolves `iscsi://` volumes with it, the
// bundled iSCSI provider checks every snapshot it exposes with it, and a
// vendor writing a whole provider for an iSCSI array can do the same: name
// the LUN by the same NAA the host names it by (DESIGN.md §6), so the two
// always agree.
//
// What it gives:
//   - ParseLunUrl: iscsi://host[:port]/target-iqn/lun parsed and normalised
//     (host lower case, port explicit), CHAP credentials in the URL refused
//     or taken, as the caller chooses;
//   - ProbeLun: log in (CHAP, mutual CHAP, login redirects), absorb the
//     unit attentions of a fresh session, read INQUIRY VPD 0x83
//     (logical-unit designators) and 0x80 (serial) and READ CAPACITY(16),
//     log out. Every step, the host-name lookup and the TCP connect
//     included, ends by one deadline, however the target behaves;
//   - PreferredNaa / NaaRank / TrimSerial: how snapset derives a LUN's NAA
//     and serial from those pages, so that a provider and the host agree.
//
// Errors (every message names the LUN by its canonical URL and never
// carries a password: credentials are cut out of a quoted URL, CHAP secrets
// out of libiscsi's texts):
//   InvalidArgument  a malformed URL (the message ends with the expected
//                    form), credentials in a URL where they are refused, an
//                    empty initiator name;
//   Unavailable      the name does not resolve, the portal does not answer
//                    or refuses, the log-in fails (ACL, CHAP: the message
//                    names the initiator used), a command fails (its sense
//                    key and code decoded), or the deadline passes ("timed
//                    out after N ms STEP", naming the step);
//   NotFound         the target has no such LUN;
//   Internal         libiscsi cannot create a context.
//
// Thread-safety: every function may be called from any thread, concurrently.
// ProbeLun creates, uses and destroys its own libiscsi context on the
// calling thread (libiscsi is not thread-safe, so no context leaves a call).
// A host name is looked up on a helper thread, which a call whose deadline
// passes leaves to finish alone; it touches nothing of the caller's.
#ifndef SNAPSET_ISCSI_LUN_HPP
#define SNAPSET_ISCSI_LUN_HPP

#include <chrono>
#include <cstdint>
#include <snapset/status.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace snapset::iscsi {

// Whether a URL may carry CHAP credentials, "user%password@host" (libiscsi
// also takes them from LIBISCSI_CHAP_USERNAME / LIBISCSI_CHAP_PASSWORD).
enum class UrlCredentials {
  kRefused,  // InvalidArgument: a URL is logged freely, so it carries no secret
  kAllowed,  // parsed into LunUrl's CHAP members
};

// A parsed iscsi://host[:port]/target-iqn/lun.
struct LunUrl {
  std::string host;  // lower case; an IPv6 literal keeps its brackets
  int port = 3260;   // 1 to 65535
  std::string target_iqn;
  int lun = 0;  // 0 to 16383 (libiscsi's flat addressing)
  // With UrlCredentials::kAllowed only; empty otherwise. Secrets.
  std::string chap_user, chap_password;
  std::string target_user, target_password;  // mutual CHAP
  // iscsi://host:port/target-iqn/lun, never with credentials: what every
  // message names, and a stable name for the LUN.
  std::string canonical;
};

// Errors: InvalidArgument, for a URL that libiscsi cannot parse, has no host
// or target IQN, a port or LUN out of range, or credentials refused; the
// message quotes the URL without its credentials and ends with the expected
// form.
Result<LunUrl> ParseLunUrl(std::string_view url,
                           UrlCredentials credentials = UrlCredentials::kRefused);

// Who logs in.
struct LunLogin {
  std::string initiator_iqn;    // presented at log-in; an array's ACL maps LUNs to it. Required.
  std::string chap_user;        // empty: no CHAP
  std::string chap_password;    // secret: never in a message
  std::string target_user;      // mutual CHAP (the target's name); empty: none
  std::string target_password;  // secret: never in a message
  // A refused log-in's message names the initiator and says that an array
  // refuses an initiator it does not map the LUN to; this is appended there,
  // e.g. how the user gives another name. Empty: nothing more.
  std::string refused_hint;
};

// One INQUIRY VPD 0x83 designator (SPC-4 7.7.6).
struct LunDesignator {
  uint8_t type = 0;         // designator type: SNAPSET_DESIGNATOR_TYPE_* (3 = NAA)
  uint8_t code_set = 0;     // 1 binary, 2 ASCII, 3 UTF-8
  uint8_t association = 0;  // 0, the logical unit: the only ones kept
  std::vector<uint8_t> value;
};

struct LunIdentity {
  // VPD 0x83, logical-unit association only, in wire order. Empty when the
  // target has no page 0x83.
  std::vector<LunDesignator> designators;
  std::string naa;              // PreferredNaa(designators): lower-case hex, "" for none
  std::string serial;           // VPD 0x80 through TrimSerial; "" when there is no page 0x80
  uint64_t capacity_bytes = 0;  // READ CAPACITY(16)
  uint32_t block_size = 0;
};

// Logs in to `url` as `login` says, reads the LUN's identity and capacity,
// and logs out (best effort: the identity is read by then). A target without
// page 0x83 or 0x80 just has no such identity; any other failure of a step
// is an error. Every step ends by `deadline` (one already passed fails at
// once); N in "timed out after N ms" is the time from the call to the
// deadline. Errors: as in the file comment.
Result<LunIdentity> ProbeLun(const LunUrl& url, const LunLogin& login,
                             std::chrono::steady_clock::time_point deadline);

// ParseLunUrl(url, UrlCredentials::kRefused), then ProbeLun: credentials come
// from `login` alone. An empty initiator name is refused before the URL is
// read.
Result<LunIdentity> ProbeLun(std::string_view url, const LunLogin& login,
                             std::chrono::steady_clock::time_point deadline);

// How much an NAA designator's value is worth as a LUN's identity, by its
// NAA field (the top four bits, SPC-4 7.7.6.6): IEEE Registered Extended (6)
// 4, Registered (5) 3, IEEE Extended (2) 2, Locally Assigned (3) 1, any other
// 0, an empty value -1. Locally Assigned is unique within one target only:
// tgt, for one, builds it from the target and LUN numbers, the same on every
// array, and sends it before the NAA-6 that is the LUN's real name.
int NaaRank(std::span<const uint8_t> naa);

// The LUN's NAA: of the non-empty NAA designators (type 3) among
// `designators`, the one with the highest NaaRank, the first in the list
// among equals, as lower-case hex without a "naa." prefix; "" when there is
// none. snapset_volume.naa is this, so a provider compares against it.
std::string PreferredNaa(std::span<const LunDesignator> designators);

// A VPD 0x80 serial without the padding around it: spaces, tabs and NULs
// (targets pad it; tgt right-aligns it in 36 bytes).
std::string TrimSerial(std::string_view serial);

}  // namespace snapset::iscsi

#endif  // SNAPSET_ISCSI_LUN_HPP
