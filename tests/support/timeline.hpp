// SPDX-License-Identifier: Apache-2.0
// Reading the timeline of a `snapset --json create` (docs/cli.md).
#ifndef SNAPSET_TESTS_SUPPORT_TIMELINE_HPP
#define SNAPSET_TESTS_SUPPORT_TIMELINE_HPP

#include <rapidjson/document.h>

#include <cstdint>
#include <string>

namespace snapset::test {

// The time (CLOCK_MONOTONIC ns) of the first event of this lane, step and
// kind ("begin", "end"), or -1 when there is none.
inline int64_t EventTime(const rapidjson::Value& timeline, const std::string& lane,
                         const std::string& step, const std::string& kind) {
  for (const auto& e : timeline["events"].GetArray())
    if (lane == e["lane"].GetString() && step == e["step"].GetString() &&
        kind == e["kind"].GetString())
      return e["t_ns"].GetInt64();
  return -1;
}

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SUPPORT_TIMELINE_HPP
