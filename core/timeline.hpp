// Timeline: every step of one snapshot set -- each phase, each provider
// call, each hold and release, each writer reply -- with monotonic
// timestamps (DESIGN §4). Stored with the set in the catalog; the CLI draws
// it; tests read it to prove ordering.
//
// Thread-safety: Record() may be called from any thread; it takes a mutex
// for a few instructions (an append to a reserved vector), so it is fit for
// the commit window but not for a signal handler.
#ifndef SNAPSET_CORE_TIMELINE_HPP
#define SNAPSET_CORE_TIMELINE_HPP

#include <snapset/status.hpp>
#include <snapset/timeline.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace snapset {

class Timeline {
 public:
  Timeline();
  void Begin(const std::string& lane, const std::string& step);
  void End(const std::string& lane, const std::string& step, const Status& outcome);
  void Instant(const std::string& lane, const std::string& step, const std::string& detail = "");

  // A copy of the events so far, in the order recorded.
  std::vector<TimelineEvent> events() const;
  TimelineData data() const;
  int64_t start_realtime_ns() const { return start_realtime_ns_; }
  std::string ToJson() const { return data().ToJson(); }

  static int64_t NowNs();  // CLOCK_MONOTONIC

 private:
  void Record(TimelineEvent e);
  mutable std::mutex mu_;
  std::vector<TimelineEvent> events_;
  int64_t start_realtime_ns_ = 0;
  int64_t start_monotonic_ns_ = 0;
};

}  // namespace snapset

#endif  // SNAPSET_CORE_TIMELINE_HPP
