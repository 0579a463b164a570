// The check of one LUN on the wire that expose_snapshot makes before it tells
// the host where to find a snapshot: the LUN the array says it exposed
// answers, to the initiator the host will log in as, with the snapshot's
// identity (NAA of VPD page 0x83 and capacity). Arrays are matched by SCSI
// identity, never by name (DESIGN.md §6), so the check is by identity too.
//
// The wire work is the SDK's iSCSI LUN toolkit (snapset/iscsi_lun.hpp,
// component `iscsi`): ProbeLun, LunLogin and LunIdentity are its, in this
// same namespace; the provider reads LUNs exactly as the host does.
//
// Thread-safety: each call creates, uses and destroys its own libiscsi
// context on the calling thread (libiscsi is not thread-safe, so the context
// never leaves the call); concurrent calls are safe.
#ifndef SNAPSET_PROVIDERS_ISCSI_LUN_PROBE_HPP
#define SNAPSET_PROVIDERS_ISCSI_LUN_PROBE_HPP

#include <chrono>
#include <cstdint>
#include <snapset/iscsi_lun.hpp>
#include <snapset/status.hpp>
#include <string>

namespace snapset::iscsi {

// ProbeLun(url, login, deadline): credentials come from `login` only (a URL
// carrying any is refused), then checks the NAA (any case, with or without a
// "naa." prefix) and the capacity. Errors: those of ProbeLun; InvalidArgument
// when `expected_naa` is not 16 or 32 hex digits; BadState on a mismatch,
// naming the URL, the NAA and capacity expected and those the LUN answered.
Status VerifyLun(const std::string& url, const LunLogin& login, const std::string& expected_naa,
                 uint64_t expected_capacity_bytes, std::chrono::steady_clock::time_point deadline);

}  // namespace snapset::iscsi

#endif  // SNAPSET_PROVIDERS_ISCSI_LUN_PROBE_HPP
