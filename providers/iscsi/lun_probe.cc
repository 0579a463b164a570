#include "providers/iscsi/lun_probe.hpp"

#include "providers/iscsi/volume_matcher.hpp"

namespace snapset::iscsi {
namespace {

std::string Describe(const std::string& naa, uint64_t capacity_bytes) {
  return "NAA " + (naa.empty() ? std::string("(none)") : naa) + " and " +
         std::to_string(capacity_bytes) + " bytes";
}

}  // namespace

Status VerifyLun(const std::string& url, const LunLogin& login, const std::string& expected_naa,
                 uint64_t expected_capacity_bytes, std::chrono::steady_clock::time_point deadline) {
  const std::string want = NormalizeNaa(expected_naa);
  if (want.empty()) {
    return Status::InvalidArgument("expected NAA '" + expected_naa +
                                   "' is not 16 or 32 hex digits");
  }
  Result<LunIdentity> got = ProbeLun(url, login, deadline);
  if (!got.ok()) return got.status();
  if (got->naa == want && got->capacity_bytes == expected_capacity_bytes) return Status::Ok();
  // ProbeLun refused any URL with credentials, so `url` is safe to quote.
  return Status::BadState(url + " is not the expected LUN: expected " +
                          Describe(want, expected_capacity_bytes) + ", the LUN answered " +
                          Describe(got->naa, got->capacity_bytes));
}

}  // namespace snapset::iscsi
