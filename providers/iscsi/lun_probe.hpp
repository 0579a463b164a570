// A libiscsi probe of one LUN on the wire: expose_snapshot uses it to make
// sure that the LUN an array says it exposed answers, to the initiator the
// host will log in as, with the snapshot's identity (NAA of VPD page 0x83 and
// capacity), before it tells the host where to find it. Arrays are matched by
// SCSI identity, never by name (DESIGN.md §6), so the check is by identity too.
//
// Thread-safety: each call creates, uses and destroys its own libiscsi
// context on the calling thread (libiscsi is not thread-safe, so the context
// never leaves the call); concurrent calls are safe.
#ifndef SNAPSET_PROVIDERS_ISCSI_LUN_PROBE_HPP
#define SNAPSET_PROVIDERS_ISCSI_LUN_PROBE_HPP

#include <chrono>
#include <cstdint>
#include <snapset/status.hpp>
#include <string>

namespace snapset::iscsi {

struct LunLogin {
  std::string initiator_iqn;  // the name we log in as (the array's ACL allows only it)
  std::string chap_user;      // empty: no CHAP
  std::string chap_password;  // secret: never in a message
};

struct LunIdentity {
  std::string naa;              // lower-case hex of the NAA designator (logical-unit
                                // association) from VPD 0x83; "" when it has none
  std::string serial;           // VPD 0x80, trimmed of padding spaces
  uint64_t capacity_bytes = 0;  // READ CAPACITY(16)
  uint32_t block_size = 0;
};

// Logs in to `url` (iscsi://host[:port]/target-iqn/lun) with its own libiscsi
// context, reads VPD 0x83, 0x80 and READ CAPACITY(16), and logs out. Every
// step (name lookup, TCP connect, login, each command, logout) ends by
// `deadline`. Credentials come from `login` only: a URL carrying any is
// refused, so that no URL in a message can carry one.
// Errors, whose messages name the URL and never a password:
//   InvalidArgument  malformed URL, credentials in the URL, empty initiator;
//   Unavailable      the portal does not answer, login fails (ACL, CHAP), a
//                    command fails, or the deadline passes (naming the step);
//   NotFound         the target has no such LUN.
Result<LunIdentity> ProbeLun(const std::string& url, const LunLogin& login,
                             std::chrono::steady_clock::time_point deadline);

// ProbeLun, then checks the NAA (any case, with or without a "naa." prefix)
// and the capacity. Errors: those of ProbeLun; InvalidArgument when
// `expected_naa` is not 16 or 32 hex digits; BadState on a mismatch, naming
// the URL, the NAA and capacity expected and those the LUN answered.
Status VerifyLun(const std::string& url, const LunLogin& login, const std::string& expected_naa,
                 uint64_t expected_capacity_bytes, std::chrono::steady_clock::time_point deadline);

}  // namespace snapset::iscsi

#endif  // SNAPSET_PROVIDERS_ISCSI_LUN_PROBE_HPP
