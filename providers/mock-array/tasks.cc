#include "providers/mock-array/tasks.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <exception>
#include <random>

namespace snapset::mock {
namespace {

std::string RandomTag() {
  std::random_device random;
  char tag[9];
  std::snprintf(tag, sizeof(tag), "%08x", static_cast<unsigned>(random()));
  return tag;
}

TaskResult Failure(const std::string& what) {
  // The Redfish error body SendError would write, without httplib here.
  std::string escaped;
  for (char c : what) {
    if (c == '"' || c == '\\') escaped += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) escaped += c;
  }
  TaskResult r;
  r.status = 500;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = R"({"error":{"code":"Base.1.8.GeneralError","message":")" + escaped +
           R"(","@Message.ExtendedInfo":[{"@odata.type":"#Message.v1_1_1.Message",)" +
           R"("MessageId":"Base.1.8.GeneralError","Message":")" + escaped +
           R"(","RelatedProperties":[],"Severity":"Critical"}]}})";
  return r;
}

}  // namespace

const char* TaskStateName(TaskState state) {
  switch (state) {
    case TaskState::kNew:
      return "New";
    case TaskState::kRunning:
      return "Running";
    case TaskState::kCompleted:
      return "Completed";
    case TaskState::kException:
      return "Exception";
  }
  return "Exception";
}

Tasks::Tasks(Limits limits) : limits_(limits), tag_(RandomTag()) {}

Result<std::string> Tasks::Start(TaskRequest request, Work work) {
  std::lock_guard<std::mutex> lock(mu_);
  if (draining_) return Status::Unavailable("the array is shutting down");
  if (unfinished_ >= limits_.max_unfinished) {
    return Status::Unavailable(std::to_string(unfinished_) + " tasks are not done yet");
  }
  const uint64_t seq = next_++;
  Task& task = tasks_[seq];
  task.info.id = tag_ + "-" + std::to_string(seq);
  task.info.request = std::move(request);
  task.info.start_time = std::chrono::system_clock::now();
  task.work = std::move(work);
  task.delay_ms = delay_ms_;
  queue_.push_back(seq);
  ++unfinished_;
  // A worker for each queued task that no idle one will take, up to the limit.
  if (queue_.size() > idle_workers_ && workers_.size() < limits_.workers) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
  work_cv_.notify_one();
  return task.info.id;
}

std::optional<uint64_t> Tasks::Sequence(const std::string& id) const {
  if (id.size() <= tag_.size() + 1 || id.compare(0, tag_.size(), tag_) != 0 ||
      id[tag_.size()] != '-') {
    return std::nullopt;
  }
  const std::string digits = id.substr(tag_.size() + 1);
  if (digits.size() > 19 ||
      !std::all_of(digits.begin(), digits.end(),
                   [](unsigned char c) { return std::isdigit(c) != 0; }) ||
      digits[0] == '0') {
    return std::nullopt;
  }
  return std::stoull(digits);
}

TaskInfo Tasks::Snapshot(const Task& task) const {
  TaskInfo info = task.info;
  if (info.state == TaskState::kRunning && task.delay_ms > 0) {
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - task.running_since)
                             .count();
    info.percent_complete = static_cast<int>(std::min<int64_t>(99, elapsed * 100 / task.delay_ms));
  }
  return info;
}

std::optional<TaskInfo> Tasks::Get(const std::string& id) const {
  const std::optional<uint64_t> seq = Sequence(id);
  if (!seq) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(*seq);
  if (it == tasks_.end()) return std::nullopt;
  return Snapshot(it->second);
}

std::vector<TaskInfo> Tasks::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<TaskInfo> out;
  out.reserve(tasks_.size());
  for (const auto& [seq, task] : tasks_) out.push_back(Snapshot(task));
  return out;
}

Tasks::Removal Tasks::Remove(const std::string& id) {
  const std::optional<uint64_t> seq = Sequence(id);
  if (!seq) return Removal::kUnknown;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(*seq);
  if (it == tasks_.end()) return Removal::kUnknown;
  if (!it->second.info.done()) return Removal::kNotDone;
  tasks_.erase(it);
  auto done = std::find(completed_.begin(), completed_.end(), *seq);
  if (done != completed_.end()) completed_.erase(done);
  return Removal::kRemoved;
}

void Tasks::EvictCompleted() {
  while (completed_.size() > limits_.kept_completed) {
    tasks_.erase(completed_.front());
    completed_.pop_front();
  }
}

void Tasks::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ++idle_workers_;
    work_cv_.wait(lock, [this] { return stop_workers_ || !queue_.empty(); });
    --idle_workers_;
    if (queue_.empty()) return;  // stopping
    const uint64_t seq = queue_.front();
    queue_.pop_front();
    // std::map nodes are stable; only Remove() and eviction erase, and both
    // leave tasks that are not done alone.
    Task& task = tasks_.at(seq);
    task.info.state = TaskState::kRunning;
    task.running_since = std::chrono::steady_clock::now();
    // The delay comes first, so that the operation's effects appear when
    // the task completes; shutting down cuts it short.
    if (task.delay_ms > 0) {
      drain_cv_.wait_for(lock, std::chrono::milliseconds(task.delay_ms),
                         [this] { return draining_; });
    }
    Work work = std::move(task.work);
    task.work = nullptr;
    lock.unlock();
    TaskResult result;
    try {
      result = work();
    } catch (const std::exception& e) {
      result = Failure(std::string("the operation threw: ") + e.what());
    } catch (...) {
      result = Failure("the operation threw");
    }
    work = nullptr;  // the request copy goes now, not with the next task
    lock.lock();
    task.info.result = std::move(result);
    task.info.state = task.info.result.status < 400 ? TaskState::kCompleted : TaskState::kException;
    task.info.end_time = std::chrono::system_clock::now();
    task.info.percent_complete = 100;
    --unfinished_;
    completed_.push_back(seq);
    EvictCompleted();
    done_cv_.notify_all();
  }
}

void Tasks::Drain() {
  std::vector<std::thread> workers;
  {
    std::unique_lock<std::mutex> lock(mu_);
    draining_ = true;
    drain_cv_.notify_all();
    done_cv_.wait(lock, [this] { return unfinished_ == 0; });
    stop_workers_ = true;
    work_cv_.notify_all();
    workers.swap(workers_);
  }
  for (std::thread& t : workers) t.join();
}

}  // namespace snapset::mock
