// The mock array's asynchronous tasks (docs/mock-array.md, "Asynchronous
// operations"): a registry of tasks by id and a small pool of worker threads
// that runs them, plus the task service's settings.
//
// A task is one state-changing REST operation whose answer the client
// fetches later from a task monitor. Tasks live in memory only: ids carry a
// tag chosen at start, so an id from before a restart is simply unknown.
//
// Thread-safe. Drain() (also run by the destructor) waits for every queued
// and running task and joins the workers: no thread outlives the registry.
#ifndef SNAPSET_PROVIDERS_MOCK_ARRAY_TASKS_HPP
#define SNAPSET_PROVIDERS_MOCK_ARRAY_TASKS_HPP

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <snapset/status.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace snapset::mock {

// Redfish TaskState values the mock uses.
enum class TaskState { kNew, kRunning, kCompleted, kException };
const char* TaskStateName(TaskState state);

// What the operation answered, as it would have answered synchronously.
struct TaskResult {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// What a task was asked to do.
struct TaskRequest {
  std::string operation;  // "Volume.Create"
  std::string method;     // "POST"
  std::string target_uri;
  std::string body;
};

// A copy of one task's state, taken under the registry's lock.
struct TaskInfo {
  std::string id;
  TaskRequest request;
  TaskState state = TaskState::kNew;
  std::chrono::system_clock::time_point start_time;
  std::optional<std::chrono::system_clock::time_point> end_time;  // once done
  int percent_complete = 0;
  TaskResult result;  // once done

  bool done() const { return state == TaskState::kCompleted || state == TaskState::kException; }
};

class Tasks {
 public:
  using Work = std::function<TaskResult()>;

  struct Limits {
    size_t workers = 4;
    size_t kept_completed = 1000;  // the oldest completed tasks beyond go
    size_t max_unfinished = 1000;  // queued and running; more are refused
  };

  Tasks() : Tasks(Limits{}) {}
  explicit Tasks(Limits limits);
  ~Tasks() { Drain(); }
  Tasks(const Tasks&) = delete;
  Tasks& operator=(const Tasks&) = delete;

  // The task service's settings: every state-changing operation runs as a
  // task; and how long at least a task takes before its operation runs.
  bool async_operations() const { return async_operations_; }
  void set_async_operations(bool on) { async_operations_ = on; }
  int64_t delay_ms() const { return delay_ms_; }
  void set_delay_ms(int64_t ms) { delay_ms_ = ms; }
  size_t kept_completed() const { return limits_.kept_completed; }

  // Queues `work` as a new task and returns its id. Unavailable once
  // draining, or while max_unfinished tasks are not done.
  Result<std::string> Start(TaskRequest request, Work work);
  std::optional<TaskInfo> Get(const std::string& id) const;
  std::vector<TaskInfo> List() const;  // in the order they were started

  enum class Removal { kRemoved, kNotDone, kUnknown };
  // Forgets a done task; one not done cannot be cancelled.
  Removal Remove(const std::string& id);

  // Refuses new tasks, cuts every delay short, waits until every queued and
  // running task is done and joins the workers. Idempotent.
  void Drain();

 private:
  struct Task {
    TaskInfo info;
    Work work;  // released once run
    int64_t delay_ms = 0;
    std::chrono::steady_clock::time_point running_since;
  };

  // The sequence number in an id of this registry, or nullopt.
  std::optional<uint64_t> Sequence(const std::string& id) const;
  TaskInfo Snapshot(const Task& task) const;  // REQUIRES: mu_ held
  void WorkerLoop();
  void EvictCompleted();  // REQUIRES: mu_ held

  const Limits limits_;
  const std::string tag_;  // random, chosen per registry: ids are TAG-N
  std::atomic<bool> async_operations_{false};
  std::atomic<int64_t> delay_ms_{0};

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // a task queued, or the workers must stop
  std::condition_variable done_cv_;   // a task done
  std::condition_variable drain_cv_;  // draining began: delays end
  std::map<uint64_t, Task> tasks_;    // by sequence number
  std::deque<uint64_t> queue_;
  std::deque<uint64_t> completed_;  // done tasks, oldest first
  uint64_t next_ = 1;
  size_t unfinished_ = 0;
  bool draining_ = false;
  bool stop_workers_ = false;
  std::vector<std::thread> workers_;
  size_t idle_workers_ = 0;
};

}  // namespace snapset::mock

#endif  // SNAPSET_PROVIDERS_MOCK_ARRAY_TASKS_HPP
