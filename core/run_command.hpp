// Runs a program (no shell): argv in, exit status and combined stdout and
// stderr out. For short-lived helpers such as mount and fsfreeze.
#ifndef SNAPSET_CORE_RUN_COMMAND_HPP
#define SNAPSET_CORE_RUN_COMMAND_HPP

#include <string>
#include <vector>

namespace snapset {

struct CommandResult {
  int exit_code = -1;  // -1 when it could not run or died of a signal
  std::string output;
};

CommandResult RunCommand(const std::vector<std::string>& argv);

// True when `program` is found on PATH (or is an executable path).
bool HaveProgram(const std::string& program);

}  // namespace snapset

#endif  // SNAPSET_CORE_RUN_COMMAND_HPP
