// SPDX-License-Identifier: Apache-2.0
// The mock array's record of the REST requests that came through its door
// (Route()), for tests that prove *when* a client talked to the array: "one
// consistency-group request per array inside the commit window" is checked
// by comparing these arrival times with the set's timeline, both on
// CLOCK_MONOTONIC (the array and the client run on one host).
//
// Thread-safe: one lock, held only to copy an entry in or out. Bounded: the
// oldest entries go first once kCapacity are kept.
#ifndef SNAPSET_PROVIDERS_MOCK_ARRAY_REQUEST_LOG_HPP
#define SNAPSET_PROVIDERS_MOCK_ARRAY_REQUEST_LOG_HPP

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace snapset::mock {

struct LoggedRequest {
  std::string operation;  // the Route() name, e.g. "ConsistencyGroup.CreateReplicaTarget"
  std::string method;
  std::string path;
  int64_t received_ns = 0;  // CLOCK_MONOTONIC when the door saw it
  int64_t answered_ns = 0;  // CLOCK_MONOTONIC when the door let it go
  int status = 0;           // what the door answered (202: started as a task)
};

class RequestLog {
 public:
  static constexpr size_t kCapacity = 10000;
  static int64_t NowNs();

  void Add(LoggedRequest request);
  std::vector<LoggedRequest> Entries() const;
  void Clear();

 private:
  mutable std::mutex mu_;
  std::deque<LoggedRequest> entries_;  // guarded by mu_
};

}  // namespace snapset::mock

#endif  // SNAPSET_PROVIDERS_MOCK_ARRAY_REQUEST_LOG_HPP
