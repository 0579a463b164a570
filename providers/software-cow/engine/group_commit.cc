#include "providers/software-cow/engine/group_commit.hpp"

namespace snapset::cow {

Status GroupCommit::Submit(CommitRequest* r) {
  std::unique_lock lock(mu_);
  queue_.push_back(r);
  cv_.wait(lock, [&] { return r->done || queue_.front() == r; });
  if (r->done) return r->status;

  // Leader: everything queued now is one group. Requests arriving while the
  // commit runs wait for the next leader.
  std::vector<CommitRequest*> group(queue_.begin(), queue_.end());
  lock.unlock();
  Status st = fn_(group);
  lock.lock();
  ++groups_;
  for (CommitRequest* g : group) {
    queue_.pop_front();
    g->status = st;
    g->done = true;
  }
  cv_.notify_all();  // the group, and the next leader
  return st;
}

uint64_t GroupCommit::groups() const {
  std::lock_guard lock(mu_);
  return groups_;
}

}  // namespace snapset::cow
