#include "core/host_log.hpp"

#include <snapset/provider.h>

#include <chrono>
#include <cstdio>

namespace snapset {

namespace {
size_t RoundUpPow2(size_t n) {
  size_t p = 2;
  while (p < n) p <<= 1;
  return p;
}
const char* LevelName(int32_t level) {
  switch (level) {
    case SNAPSET_LOG_ERROR: return "error";
    case SNAPSET_LOG_WARNING: return "warning";
    case SNAPSET_LOG_INFO: return "info";
    default: return "debug";
  }
}
}  // namespace

HostLog::HostLog(Sink sink, size_t capacity)
    : sink_(std::move(sink)), mask_(RoundUpPow2(capacity) - 1) {
  slots_ = std::make_unique<Slot[]>(mask_ + 1);
  for (size_t i = 0; i <= mask_; ++i) slots_[i].sequence.store(i, std::memory_order_relaxed);
  drain_ = std::thread([this] { DrainLoop(); });
}

HostLog::~HostLog() {
  stop_.store(true, std::memory_order_release);
  wake_.notify_one();
  drain_.join();
}

void HostLog::Push(int32_t level, std::string source, std::string message) noexcept {
  size_t pos = head_.load(std::memory_order_relaxed);
  for (;;) {
    Slot& slot = slots_[pos & mask_];
    size_t seq = slot.sequence.load(std::memory_order_acquire);
    intptr_t diff = intptr_t(seq) - intptr_t(pos);
    if (diff == 0) {
      if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        slot.line.level = level;
        slot.line.source = std::move(source);
        slot.line.message = std::move(message);
        slot.sequence.store(pos + 1, std::memory_order_release);
        pushed_.fetch_add(1, std::memory_order_relaxed);
        // notify without the mutex: never blocks; a missed wake-up costs at
        // most one polling period of the drain thread.
        wake_.notify_one();
        return;
      }
    } else if (diff < 0) {
      dropped_.fetch_add(1, std::memory_order_relaxed);  // full
      return;
    } else {
      pos = head_.load(std::memory_order_relaxed);
    }
  }
}

bool HostLog::TryPop(LogLine* out) {
  size_t pos = tail_.load(std::memory_order_relaxed);
  for (;;) {
    Slot& slot = slots_[pos & mask_];
    size_t seq = slot.sequence.load(std::memory_order_acquire);
    intptr_t diff = intptr_t(seq) - intptr_t(pos + 1);
    if (diff == 0) {
      if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        *out = std::move(slot.line);
        slot.sequence.store(pos + mask_ + 1, std::memory_order_release);
        return true;
      }
    } else if (diff < 0) {
      return false;  // empty
    } else {
      pos = tail_.load(std::memory_order_relaxed);
    }
  }
}

void HostLog::DrainLoop() {
  LogLine line;
  for (;;) {
    while (TryPop(&line)) {
      if (sink_) sink_(line);
      written_.fetch_add(1, std::memory_order_release);
    }
    if (stop_.load(std::memory_order_acquire)) {
      while (TryPop(&line)) {
        if (sink_) sink_(line);
        written_.fetch_add(1, std::memory_order_release);
      }
      return;
    }
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

void HostLog::Flush() {
  uint64_t target = pushed_.load(std::memory_order_acquire);
  while (written_.load(std::memory_order_acquire) < target) {
    wake_.notify_one();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

HostLog::Sink HostLog::StderrSink(int32_t max_level) {
  return [max_level](const LogLine& l) {
    if (l.level > max_level) return;
    std::fprintf(stderr, "snapset[%s] %s: %s\n", l.source.c_str(), LevelName(l.level),
                 l.message.c_str());
  };
}

}  // namespace snapset
