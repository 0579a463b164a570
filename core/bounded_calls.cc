#include "core/bounded_calls.hpp"

#include <thread>

namespace snapset {

BoundedCalls::BoundedCalls() : shared_(std::make_shared<Shared>()) {}

size_t BoundedCalls::Start(std::function<Status()> fn) {
  size_t index;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    index = shared_->results.size();
    shared_->results.emplace_back();
    ++shared_->pending;
  }
  std::thread([shared = shared_, index, fn = std::move(fn)] {
    Status s;
    try {
      s = fn();
    } catch (const std::exception& e) {
      s = Status::Internal(std::string("unexpected exception: ") + e.what());
    }
    std::lock_guard<std::mutex> lock(shared->mu);
    shared->results[index] = std::move(s);
    --shared->pending;
    shared->done.notify_all();
  }).detach();
  return index;
}

std::vector<Status> BoundedCalls::Wait(std::chrono::steady_clock::time_point deadline,
                                       const Status& timeout) {
  std::unique_lock<std::mutex> lock(shared_->mu);
  shared_->done.wait_until(lock, deadline, [&] { return shared_->pending == 0; });
  std::vector<Status> out;
  abandoned_.assign(shared_->results.size(), false);
  for (size_t i = 0; i < shared_->results.size(); ++i) {
    if (shared_->results[i]) {
      out.push_back(*shared_->results[i]);
    } else {
      out.push_back(timeout);
      abandoned_[i] = true;
    }
  }
  return out;
}

}  // namespace snapset
