// Runs a program (no shell): argv in, exit status and combined stdout and
// stderr out. For short-lived helpers such as mount and fsfreeze.
#ifndef SNAPSET_CORE_RUN_COMMAND_HPP
#define SNAPSET_CORE_RUN_COMMAND_HPP

#include <chrono>
#include <string>
#include <vector>

namespace snapset {

struct CommandResult {
  int exit_code = -1;  // -1 when it could not run, died of a signal or timed out
  std::string output;
  bool timed_out = false;
};

// timeout 0: wait as long as it runs. Otherwise a program still running
// after `timeout` is killed (SIGKILL) and reaped, and the result says
// timed_out, so that a hung helper cannot hang its caller.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

// True when `program` is found on PATH (or is an executable path).
bool HaveProgram(const std::string& program);

}  // namespace snapset

#endif  // SNAPSET_CORE_RUN_COMMAND_HPP
