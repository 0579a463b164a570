// SPDX-License-Identifier: Apache-2.0
#include "conformance/report.hpp"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

namespace snapset::conformance {

namespace {

struct Totals {
  int pass = 0, warn = 0, skip = 0, fail = 0;
  double seconds = 0;
};

Totals Count(const std::vector<CaseOutcome>& cases) {
  Totals t;
  for (const auto& c : cases) {
    t.seconds += c.seconds;
    switch (c.verdict) {
      case Verdict::kPass:
        ++t.pass;
        break;
      case Verdict::kWarn:
        ++t.warn;
        break;
      case Verdict::kSkip:
        ++t.skip;
        break;
      case Verdict::kFail:
        ++t.fail;
        break;
    }
  }
  return t;
}

std::string Label(const CaseOutcome& c) {
  return c.round ? c.name + " #" + std::to_string(c.round + 1) : c.name;
}

struct Latency {
  std::vector<double> ms;
  int errors = 0;
  double Percentile(double p) const {
    if (ms.empty()) return 0;
    std::vector<double> sorted = ms;
    std::sort(sorted.begin(), sorted.end());
    size_t at = size_t(p * double(sorted.size() - 1) + 0.5);
    return sorted[std::min(at, sorted.size() - 1)];
  }
};

std::map<std::string, Latency> ByOperation(const std::vector<CallRecord>& calls) {
  std::map<std::string, Latency> out;
  for (const auto& c : calls) {
    out[c.op].ms.push_back(c.ms);
    if (c.code != 0) ++out[c.op].errors;
  }
  return out;
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (unsigned char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        // XML 1.0 has no place for other control characters.
        if (ch < 0x20 && ch != '\n' && ch != '\t')
          out += ' ';
        else
          out += char(ch);
    }
  }
  return out;
}

using Pretty = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

void Str(Pretty& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.c_str(), rapidjson::SizeType(value.size()));
}

void WriteCalls(Pretty& w, const std::vector<CallRecord>& calls) {
  w.StartObject();
  for (const auto& [op, lat] : ByOperation(calls)) {
    w.Key(op.c_str());
    w.StartObject();
    w.Key("count");
    w.Uint(unsigned(lat.ms.size()));
    w.Key("errors");
    w.Int(lat.errors);
    w.Key("p50_ms");
    w.Double(lat.Percentile(0.5));
    w.Key("p99_ms");
    w.Double(lat.Percentile(0.99));
    w.Key("max_ms");
    w.Double(lat.Percentile(1.0));
    w.EndObject();
  }
  w.EndObject();
}

}  // namespace

void PrintTable(std::ostream& out, const ReportHeader& h, const std::vector<CaseOutcome>& cases) {
  out << "snapset-conformance: " << h.provider << "\n"
      << "fixture: " << h.fixture << "; seed " << h.seed << "\n\n";
  size_t width = 4;
  for (const auto& c : cases) width = std::max(width, Label(c).size());
  for (const auto& c : cases) {
    char time[32];
    std::snprintf(time, sizeof time, "%6.1fs", c.seconds);
    std::string name = Label(c);
    name.resize(width, ' ');
    out << VerdictName(c.verdict) << "  " << name << " " << time;
    if (!c.reason.empty()) out << "  " << c.reason;
    out << "\n";
  }
  const Totals t = Count(cases);
  out << "\n"
      << t.pass << " passed, " << t.warn << " warned, " << t.skip << " skipped, " << t.fail
      << " failed, in " << int(t.seconds + 0.5) << " s\n";
}

std::string JunitXml(const ReportHeader& h, const std::vector<CaseOutcome>& cases) {
  const Totals t = Count(cases);
  std::ostringstream x;
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<testsuites name=\"snapset-conformance\" tests=\"" << cases.size() << "\" failures=\""
    << t.fail << "\" skipped=\"" << t.skip << "\" time=\"" << t.seconds << "\">\n"
    << "  <testsuite name=\"" << XmlEscape(h.provider) << "\" tests=\"" << cases.size()
    << "\" failures=\"" << t.fail << "\" skipped=\"" << t.skip << "\" time=\"" << t.seconds
    << "\">\n"
    << "    <properties>\n"
    << "      <property name=\"fixture\" value=\"" << XmlEscape(h.fixture) << "\"/>\n"
    << "      <property name=\"seed\" value=\"" << h.seed << "\"/>\n"
    << "    </properties>\n";
  for (const auto& c : cases) {
    const std::string group = c.name.substr(0, c.name.find('.'));
    x << "    <testcase classname=\"" << XmlEscape(group) << "\" name=\"" << XmlEscape(Label(c))
      << "\" time=\"" << c.seconds << "\">";
    if (c.verdict == Verdict::kFail)
      x << "<failure message=\"" << XmlEscape(c.reason) << "\">" << XmlEscape(c.relies)
        << "</failure>";
    else if (c.verdict == Verdict::kSkip)
      x << "<skipped message=\"" << XmlEscape(c.reason) << "\"/>";
    else if (c.verdict == Verdict::kWarn)
      x << "<system-out>warning: " << XmlEscape(c.reason) << "</system-out>";
    x << "</testcase>\n";
  }
  x << "  </testsuite>\n</testsuites>\n";
  return x.str();
}

std::string JsonReport(const ReportHeader& h, const std::vector<CaseOutcome>& cases) {
  rapidjson::StringBuffer buf;
  Pretty w(buf);
  w.StartObject();
  Str(w, "suite", "snapset-conformance");
  Str(w, "provider", h.provider);
  Str(w, "fixture", h.fixture);
  w.Key("seed");
  w.Uint64(h.seed);
  w.Key("cases");
  w.StartArray();
  std::vector<CallRecord> all;
  for (const auto& c : cases) {
    w.StartObject();
    Str(w, "name", c.name);
    w.Key("round");
    w.Int(c.round);
    Str(w, "verdict", VerdictName(c.verdict));
    Str(w, "reason", c.reason);
    Str(w, "relies", c.relies);
    w.Key("seconds");
    w.Double(c.seconds);
    w.Key("calls");
    WriteCalls(w, c.calls);
    w.EndObject();
    all.insert(all.end(), c.calls.begin(), c.calls.end());
  }
  w.EndArray();
  const Totals t = Count(cases);
  w.Key("totals");
  w.StartObject();
  w.Key("pass");
  w.Int(t.pass);
  w.Key("warn");
  w.Int(t.warn);
  w.Key("skip");
  w.Int(t.skip);
  w.Key("fail");
  w.Int(t.fail);
  w.EndObject();
  w.Key("calls");
  WriteCalls(w, all);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

}  // namespace snapset::conformance
