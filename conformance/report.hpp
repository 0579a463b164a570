// SPDX-License-Identifier: Apache-2.0
//
// The suite's reports: a table for people, JUnit XML for CI systems, and
// JSON with per-call latency and counts for tools.
#ifndef SNAPSET_CONFORMANCE_REPORT_HPP
#define SNAPSET_CONFORMANCE_REPORT_HPP

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "conformance/runner.hpp"

namespace snapset::conformance {

struct ReportHeader {
  std::string provider;  // the provider's name and library
  std::string fixture;   // the fixture's description
  uint64_t seed = 0;
};

void PrintTable(std::ostream& out, const ReportHeader& h, const std::vector<CaseOutcome>& cases);
std::string JunitXml(const ReportHeader& h, const std::vector<CaseOutcome>& cases);
std::string JsonReport(const ReportHeader& h, const std::vector<CaseOutcome>& cases);

}  // namespace snapset::conformance

#endif  // SNAPSET_CONFORMANCE_REPORT_HPP
