// Group commit of slot-table entries (the leader/follower queue of
// LevelDB's DBImpl::Write).
//
// A writer that has written old chunk data to diff-area slots queues a
// request holding the entries that map those slots. The request at the
// head of the queue becomes the leader: it takes every request queued so
// far, and runs one commit for all of them (write all entries, then one
// sync for their data and the table), then wakes them. Writers that queued
// while the leader was busy form the next group, so N concurrent writers
// cost one sync per group instead of one each. Groups run one at a time,
// which is what lets each know that every earlier group is durable.
#ifndef SNAPSET_COW_GROUP_COMMIT_HPP
#define SNAPSET_COW_GROUP_COMMIT_HPP

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include <snapset/status.hpp>

#include "providers/software-cow/engine/format.hpp"

namespace snapset::cow {

struct CommitRequest {
  const std::vector<format::SlotEntry>* entries = nullptr;
  uint64_t file_mask = 0;  // diff-area files holding this request's data
  Status status;
  bool done = false;
};

class GroupCommit {
 public:
  using CommitFn = std::function<Status(const std::vector<CommitRequest*>& group)>;
  explicit GroupCommit(CommitFn fn) : fn_(std::move(fn)) {}

  // Blocks until the request's group is committed; returns its status.
  Status Submit(CommitRequest* r);
  uint64_t groups() const;

 private:
  CommitFn fn_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<CommitRequest*> queue_;
  uint64_t groups_ = 0;
};

}  // namespace snapset::cow

#endif  // SNAPSET_COW_GROUP_COMMIT_HPP
