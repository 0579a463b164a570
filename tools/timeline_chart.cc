#include "tools/timeline_chart.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace snapset::cli {

std::string HumanDuration(int64_t ns) {
  char buf[32];
  if (ns < 1000000) {
    std::snprintf(buf, sizeof buf, "%.0f us", ns / 1e3);
  } else if (ns < 1000000000) {
    std::snprintf(buf, sizeof buf, "%.1f ms", ns / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f s", ns / 1e9);
  }
  return buf;
}

namespace {

struct Span {
  std::string step;
  int64_t begin, end;  // end < 0: never ended
  std::string detail;
};

// One letter per step, so a row reads at a glance.
char Letter(const std::string& step) {
  static const std::map<std::string, char> kLetters = {
      {"plan", 'P'},
      {"prepare", 'R'},
      {"begin_prepare_snapshot", 'b'},
      {"end_prepare_snapshots", 'e'},
      {"writers freeze", 'F'},
      {"freeze", 'F'},
      {"pre_commit_snapshots", 'p'},
      {"hold", 'H'},
      {"commit_snapshots", 'C'},
      {"post_commit_snapshots", 'o'},
      {"writers thaw", 'T'},
      {"thaw", 'T'},
      {"pre_final_commit_snapshots", 'f'},
      {"post_final_commit_snapshots", 'F'},
      {"abort_snapshots", 'A'},
  };
  auto it = kLetters.find(step);
  return it == kLetters.end() ? '#' : it->second;
}

}  // namespace

void DrawTimeline(const TimelineData& t, std::ostream& out, int width) {
  if (t.events.empty()) {
    out << "(no timeline recorded)\n";
    return;
  }
  std::vector<std::string> lanes;
  std::map<std::string, std::vector<Span>> spans;
  std::map<std::string, std::vector<std::pair<int64_t, std::string>>> instants;
  int64_t t0 = t.start_monotonic_ns, t1 = t0;
  for (const auto& e : t.events) {
    if (std::find(lanes.begin(), lanes.end(), e.lane) == lanes.end()) lanes.push_back(e.lane);
    t1 = std::max(t1, e.t_ns);
    auto& ls = spans[e.lane];
    if (e.kind == TimelineKind::kBegin) {
      ls.push_back({e.step, e.t_ns, -1, ""});
    } else if (e.kind == TimelineKind::kEnd) {
      for (auto it = ls.rbegin(); it != ls.rend(); ++it) {
        if (it->step == e.step && it->end < 0) {
          it->end = e.t_ns;
          it->detail = e.detail;
          break;
        }
      }
    } else {
      instants[e.lane].push_back({e.t_ns, e.step + (e.detail.empty() ? "" : ": " + e.detail)});
    }
  }
  const int64_t total = std::max<int64_t>(t1 - t0, 1);
  size_t lane_width = 4;
  for (const auto& l : lanes) lane_width = std::max(lane_width, l.size());
  auto column = [&](int64_t ns) {
    return std::clamp<int>(int((ns - t0) * (width - 1) / total), 0, width - 1);
  };

  out << std::string(lane_width, ' ') << "  0" << std::string(width - 1 - 1, ' ')
      << HumanDuration(total) << "\n";
  for (const auto& lane : lanes) {
    std::string row(width, '.');
    for (const auto& s : spans[lane]) {
      int from = column(s.begin), to = column(s.end < 0 ? t1 : s.end);
      for (int c = from; c <= to; ++c) row[c] = Letter(s.step);
    }
    for (const auto& [ns, what] : instants[lane]) {
      if (row[column(ns)] == '.') row[column(ns)] = '|';
    }
    out << lane << std::string(lane_width - lane.size(), ' ') << "  " << row << "\n";
  }
  out << "\n";
  for (const auto& lane : lanes) {
    for (const auto& s : spans[lane]) {
      out << "  " << lane << std::string(lane_width - lane.size(), ' ') << "  " << Letter(s.step)
          << " " << s.step << "  +" << HumanDuration(s.begin - t0) << "  "
          << (s.end < 0 ? std::string("(did not end)") : HumanDuration(s.end - s.begin));
      if (!s.detail.empty() && s.detail != "ok") out << "  " << s.detail;
      out << "\n";
    }
    for (const auto& [ns, what] : instants[lane])
      out << "  " << lane << std::string(lane_width - lane.size(), ' ') << "  | " << what
          << "  +" << HumanDuration(ns - t0) << "\n";
  }
}

}  // namespace snapset::cli
