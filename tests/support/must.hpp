// SPDX-License-Identifier: Apache-2.0
// A command a Boost.Test test needs to succeed.
#ifndef SNAPSET_TESTS_SUPPORT_MUST_HPP
#define SNAPSET_TESTS_SUPPORT_MUST_HPP

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "tests/support/command.hpp"

namespace snapset::test {

// Runs a command that must succeed (else the test ends, saying which and
// what it printed); its output.
inline std::string Must(const std::vector<std::string>& argv,
                        std::chrono::seconds timeout = std::chrono::seconds(120)) {
  CommandResult r = RunCommand(argv, timeout);
  std::string shown;
  for (const auto& a : argv) shown += a + " ";
  BOOST_TEST_REQUIRE(r.exit_code == 0, shown << "failed (" << r.exit_code << "): " << r.output);
  return r.output;
}

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SUPPORT_MUST_HPP
