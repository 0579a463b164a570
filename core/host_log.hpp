// HostLog: the log behind snapset_host.log. Push() never blocks and never
// fails, so a provider may log inside the commit window: lines go into a
// bounded lock-free ring (Vyukov's MPMC queue) and a drain thread writes them
// to the sink. When the ring is full the line is dropped and counted.
//
// Thread-safety: Push() from any thread; the sink runs on the drain thread.
#ifndef SNAPSET_CORE_HOST_LOG_HPP
#define SNAPSET_CORE_HOST_LOG_HPP

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace snapset {

struct LogLine {
  int32_t level = 0;  // SNAPSET_LOG_*
  std::string source;  // provider name, or "snapset"
  std::string message;
};

class HostLog {
 public:
  using Sink = std::function<void(const LogLine&)>;

  // capacity is rounded up to a power of two.
  explicit HostLog(Sink sink, size_t capacity = 4096);
  ~HostLog();  // drains what is queued, then stops
  HostLog(const HostLog&) = delete;
  HostLog& operator=(const HostLog&) = delete;

  void Push(int32_t level, std::string source, std::string message) noexcept;
  // Waits until every line pushed before the call reached the sink.
  void Flush();
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

  // A sink writing "snapset[source] level: message" to stderr for lines at
  // or below max_level.
  static Sink StderrSink(int32_t max_level);

 private:
  struct Slot {
    std::atomic<size_t> sequence;
    LogLine line;
  };
  bool TryPop(LogLine* out);
  void DrainLoop();

  Sink sink_;
  std::unique_ptr<Slot[]> slots_;
  size_t mask_;
  alignas(64) std::atomic<size_t> head_{0};  // next slot to write
  alignas(64) std::atomic<size_t> tail_{0};  // next slot to read
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> pushed_{0};
  std::atomic<uint64_t> written_{0};
  std::atomic<bool> stop_{false};
  std::mutex wake_mu_;
  std::condition_variable wake_;
  std::thread drain_;
};

}  // namespace snapset

#endif  // SNAPSET_CORE_HOST_LOG_HPP
