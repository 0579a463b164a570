// Draws a set's timeline in the terminal: one row per lane (the set, each
// provider, each held volume, each writer), its spans as letters on a time
// axis, then each span with its duration.
#ifndef SNAPSET_TOOLS_TIMELINE_CHART_HPP
#define SNAPSET_TOOLS_TIMELINE_CHART_HPP

#include <snapset/timeline.hpp>

#include <ostream>

namespace snapset::cli {

void DrawTimeline(const TimelineData& timeline, std::ostream& out, int width = 64);

// "12.3 ms", "1.20 s", "850 us"
std::string HumanDuration(int64_t ns);

}  // namespace snapset::cli

#endif  // SNAPSET_TOOLS_TIMELINE_CHART_HPP
