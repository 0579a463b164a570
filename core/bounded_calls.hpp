// BoundedCalls: runs calls in parallel, each on its own thread, and waits for
// them until a deadline, never longer. A call still running at the deadline
// is abandoned: its thread keeps running on state it shares by shared_ptr,
// and its result is ignored. This is how the coordinator talks to providers:
// a provider that hangs costs a thread, never the commit window.
#ifndef SNAPSET_CORE_BOUNDED_CALLS_HPP
#define SNAPSET_CORE_BOUNDED_CALLS_HPP

#include <snapset/status.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace snapset {

class BoundedCalls {
 public:
  BoundedCalls();
  // Starts fn on a new thread now. Returns its index.
  size_t Start(std::function<Status()> fn);
  // Waits until every call returned or `deadline`. Calls not done by then
  // get `timeout` (and stay abandoned). Results in Start order.
  std::vector<Status> Wait(std::chrono::steady_clock::time_point deadline, const Status& timeout);
  // Which calls were still running when Wait gave up.
  const std::vector<bool>& abandoned() const { return abandoned_; }

 private:
  struct Shared {
    std::mutex mu;
    std::condition_variable done;
    std::vector<std::optional<Status>> results;
    size_t pending = 0;
  };
  std::shared_ptr<Shared> shared_;
  std::vector<bool> abandoned_;
};

}  // namespace snapset

#endif  // SNAPSET_CORE_BOUNDED_CALLS_HPP
