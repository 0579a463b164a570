// SPDX-License-Identifier: Apache-2.0
#include "providers/mock-array/request_log.hpp"

#include <time.h>

namespace snapset::mock {

int64_t RequestLog::NowNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void RequestLog::Add(LoggedRequest request) {
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.size() == kCapacity) entries_.pop_front();
  entries_.push_back(std::move(request));
}

std::vector<LoggedRequest> RequestLog::Entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {entries_.begin(), entries_.end()};
}

void RequestLog::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
}

}  // namespace snapset::mock
