// snapset::TimelineData: what happened during one snapshot set, step by
// step, with monotonic timestamps (DESIGN §4). Each phase, provider call,
// hold and release, and writer reply is a span (begin/end) or an instant on
// a lane: "set", "provider:NAME", "volume:NAME", "writer:NAME".
//
// A plain value; ToJson/FromJson are implemented in the snapset library.
#ifndef SNAPSET_TIMELINE_HPP
#define SNAPSET_TIMELINE_HPP

#include <snapset/status.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace snapset {

enum class TimelineKind : uint8_t {
  kBegin = 0,    // a span starts
  kEnd = 1,      // the span of the same lane and step ends (detail: outcome)
  kInstant = 2,  // a point event
};

struct TimelineEvent {
  int64_t t_ns = 0;    // CLOCK_MONOTONIC nanoseconds
  TimelineKind kind = TimelineKind::kInstant;
  std::string lane;    // "set", "provider:NAME", "volume:/mnt/x", "writer:NAME"
  std::string step;    // "commit_snapshots", "hold", "freeze", ...
  std::string detail;  // "ok", or "code: message" for a failed step
};

// A timeline's content as a plain value: what the catalog stores and the
// CLI draws.
struct TimelineData {
  int64_t start_realtime_ns = 0;   // CLOCK_REALTIME at the start, to print times
  int64_t start_monotonic_ns = 0;  // the same instant on CLOCK_MONOTONIC
  std::vector<TimelineEvent> events;

  // {"start_realtime_ns", "start_monotonic_ns", "events": [{"t_ns", "kind"
  // ("begin"|"end"|"instant"), "lane", "step", "detail"}]}
  std::string ToJson() const;
  static Result<TimelineData> FromJson(const std::string& json);
};

}  // namespace snapset

#endif  // SNAPSET_TIMELINE_HPP
