// Runs a program for a test (no shell): argv in, exit status and combined
// stdout+stderr out.
#ifndef SNAPSET_TESTS_SUPPORT_COMMAND_HPP
#define SNAPSET_TESTS_SUPPORT_COMMAND_HPP

#include <string>
#include <vector>

namespace snapset::test {

struct CommandResult {
  int exit_code = -1;  // -1 when it could not run or died of a signal
  std::string output;
};

CommandResult RunCommand(const std::vector<std::string>& argv);

// True when `program` is found on PATH (or is an executable path).
bool HaveProgram(const std::string& program);

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SUPPORT_COMMAND_HPP
